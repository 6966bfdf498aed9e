"""Language identification with langdetect, seeded so the same text always gets the same answer."""

from __future__ import annotations

from langdetect import detector_factory
from langdetect.lang_detect_exception import LangDetectException


def load_profiles() -> None:
    """Load langdetect's read-only profiles now, so no document's time limit pays for (or interrupts) it."""
    detector_factory.init_factory()


def detect_language(text: str, seed: int, sample_chars: int = 1500) -> tuple[str | None, float | None]:
    """(ISO code, probability) of the text's language, or (None, None) when it has no letters."""
    load_profiles()  # once per process; a no-op afterwards
    detector = detector_factory._factory.create()
    detector.seed = seed  # per detector: no shared random state between documents
    detector.append(text[:sample_chars])
    try:
        best = detector.get_probabilities()[0]
    except (LangDetectException, IndexError):
        return None, None
    return best.lang, round(best.prob, 4)
