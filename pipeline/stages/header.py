"""ReadHeader: title, byline, date and site of a text dump, from its verdicts (`clean.header`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..base import Stage
from ..clean.header import analyse_header
from ..clean.header_model import header_from_model
from ..clean.linemodel import LineModel
from ..clean.modelclean import ModelCleanResult
from ..clean.textclean import CleanResult, summarise_cleaning
from ..config import Config
from ..document import Document, LineReport
from ..rules import RuleSet


@dataclass
class ReadHeader(Stage):
    """Title, byline, date and site from the dump; header lines found in the text leave it."""

    config: Config
    rules: RuleSet
    model: LineModel | None = None  # the learned cleaner's, for its title and author rankers
    name: str = "metadata"

    def process(self, doc: Document) -> Document:
        lines = doc.lines if doc.lines is not None else LineReport([])
        verdicts, evidence = lines.verdicts, lines.evidence
        language = doc.metadata.get("language")
        # the header lines found among the verdicts become metadata (their verdicts say so) and leave the text
        if isinstance(evidence, ModelCleanResult):
            rankers = self.model.rankers if self.model is not None else None
            header = header_from_model(verdicts, evidence.scores.meta, evidence.rows, self.rules, language,
                                       evidence.article_end, rankers, evidence.stopwords, lines.widths,
                                       lines.wrap, evidence.scores.body)
        else:
            features = evidence.features if isinstance(evidence, CleanResult) else []
            header = analyse_header(verdicts, features, self.rules, self.config.clean, language, lines.widths,
                                    lines.wrap)
        doc.text = lines.kept_text()
        given = doc.metadata.get("provenance", {})
        doc.metadata.update(title=header.title, author=header.author, date=header.date)
        if "sitename" not in given:
            doc.metadata["sitename"] = header.sitename
        doc.metadata["cleaning"] = summarise_cleaning(verdicts)
        doc.metadata["provenance"] = {"text": "text-dump", **header.provenance, **given}
        return doc
