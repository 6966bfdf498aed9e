"""DetectLanguage: the article's language and its score (langdetect, seeded)."""

from __future__ import annotations

from dataclasses import dataclass

from ..base import Stage
from ..clean.language import detect_language
from ..config import Config
from ..document import Document


@dataclass
class DetectLanguage(Stage):
    config: Config
    name: str = "language"

    def process(self, doc: Document) -> Document:
        lang, score = detect_language(doc.text, self.config.language_seed)
        doc.metadata["language"] = lang
        doc.metadata["language_score"] = score
        return doc
