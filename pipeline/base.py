"""The one stage contract: a pure function of one document."""

from __future__ import annotations

from abc import ABC, abstractmethod

from .document import Document


class Stage(ABC):
    """A step that takes one document and returns it, enriched or cleaned.

    A stage that finds no article raises `Rejected(reason)`; the runner records the reason and the
    document goes to the rejects stream. Stages hold only read-only configuration, so the same input
    always gives the same output and any executor can map them.
    """

    name: str = "stage"

    @abstractmethod
    def process(self, doc: Document) -> Document: ...
