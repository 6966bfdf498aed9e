"""Finalise: the word count, the dedup fields a record always has, and the too-short reject."""

from __future__ import annotations

from dataclasses import dataclass

from ..base import Stage
from ..config import Config
from ..dedup.minhash import count_words
from ..document import Document, Rejected


@dataclass
class Finalise(Stage):
    """Word count, the dedup fields (empty until the dedup steps decide), and the too-short check that rejects
    a page."""

    config: Config
    name: str = "finalise"

    def process(self, doc: Document) -> Document:
        words = count_words(doc.text)
        doc.metadata["word_count"] = words
        for key in ("duplicate_of", "dup_cluster", "similarity", "superseded_by"):
            doc.metadata.setdefault(key, None)
        if words < self.config.clean.min_article_words:
            raise Rejected("no_article" if words == 0 else "too_short",
                           f"{words} words of article text < min_article_words {self.config.clean.min_article_words}")
        return doc
