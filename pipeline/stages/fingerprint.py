"""Fingerprint: the content hash and the MinHash signature of the article, from one tokenisation."""

from __future__ import annotations

from dataclasses import dataclass

from ..base import Stage
from ..config import Config
from ..dedup import fingerprint
from ..document import Document


@dataclass
class Fingerprint(Stage):
    """The dedup step's view of the article, from one tokenisation: the content hash (`metadata.content_hash`,
    equal for copies that differ in case or punctuation, the dedup exact key), the MinHash signature and the
    number of distinct n-grams (`Document.fingerprint`). Every kept page is signed, also with dedup off, so
    that a later run with it on can decide the documents already written."""

    config: Config
    name: str = "fingerprint"

    def process(self, doc: Document) -> Document:
        exact, sig, shingles = fingerprint(doc.text, self.config.dedup)
        doc.metadata["content_hash"] = exact
        doc.fingerprint = (exact, sig, shingles)
        return doc
