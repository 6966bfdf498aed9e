"""ExtractText: strip the boilerplate of a text dump, a verdict for every line (the heuristic cleaner or the
learned one, `[clean] method`)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from ..base import Stage
from ..clean.linemodel import LineModel
from ..clean.linkrefs import SIG_LINK_LIST, link_references
from ..clean.modelclean import clean_with_model
from ..clean.stopwords import StopwordIndex
from ..clean.textclean import clean_lines
from ..clean.wrapping import wrap_width
from ..config import Config
from ..document import Document, LineReport, LineVerdict
from ..rules import RuleSet, site_keys


@dataclass
class ExtractText(Stage):
    """Strip boilerplate from a text dump: a verdict for every line, the kept ones become the text."""

    config: Config
    rules: RuleSet
    stopwords: StopwordIndex
    model: LineModel | None = None  # None: the heuristic cleaner ([clean] method = "heuristic")
    name: str = "extract"

    def process(self, doc: Document) -> Document:
        # the site rules of the page's site, as known before cleaning: its URL's host, a sidecar's site name
        sites = site_keys(doc.metadata.get("hostname"), doc.metadata.get("sitename"))
        lines = doc.text.split("\n")
        wrap = wrap_width(lines)  # a hard-wrapped dump: its lines' printed lengths, for a title over several lines
        widths = [len(line.rstrip()) for line in lines] if wrap is not None else None
        references = link_references(lines)  # a lynx-style dump: its link list blanked, its [n] markers out
        text = doc.text if references is None else "\n".join(references.lines)
        if self.model is not None:
            stop = self.stopwords.guess(text)
            result = clean_with_model(text, self.rules, stop, self.config.clean, self.model, sites)
            verdicts, evidence = result.verdicts, result
        else:
            evidence = clean_lines(text, self.rules, self.stopwords, self.config.clean, sites)
            verdicts = evidence.verdicts
        if references is not None:  # the list's lines and the lines of markers alone, as printed, dropped (the
            for i in itertools.chain(references.emptied, references.listed):  # cleaners saw them blank)
                if lines[i].strip():
                    verdicts[i] = LineVerdict(i, lines[i].strip(), False, SIG_LINK_LIST, verdicts[i].label)
        doc.lines = LineReport(verdicts, evidence, widths, wrap)
        doc.text = doc.lines.kept_text()
        return doc
