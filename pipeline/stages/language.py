"""DetectLanguage: the article's language and its score (langdetect, seeded; or fastText's lid.176), and the
`language` reject of a run that keeps only some languages (`[language] keep`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..base import Stage
from ..clean.language import FastTextIdentifier, detect_language
from ..config import Config
from ..document import Document, Rejected


@dataclass
class DetectLanguage(Stage):
    config: Config
    name: str = "language"
    _fasttext: FastTextIdentifier | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.config.language.engine == "fasttext":
            self._fasttext = FastTextIdentifier()

    def process(self, doc: Document) -> Document:
        if self._fasttext is not None:
            lang, score = self._fasttext(doc.text)
        else:
            lang, score = detect_language(doc.text, self.config.language_seed)
        doc.metadata["language"] = lang
        doc.metadata["language_score"] = score
        keep = self.config.language.keep
        if keep and lang not in keep:
            raise Rejected("language", f"language {lang or 'not identified'}, not one of {', '.join(keep)}")
        return doc
