"""Language identification with langdetect, seeded so the same text always gets the same answer.

The detection runs in langdetect-rs, a port of langdetect's random walk to Rust that gives the same
probabilities bit for bit (tests/test_language.py checks it against langdetect) about 30x faster;
where it is not installed, langdetect itself runs, with the same results.
"""

from __future__ import annotations

try:
    from langdetect_rs import detector_factory
    from langdetect_rs.lang_detect_exception import LangDetectException

    ENGINE = "langdetect-rs"
except ImportError:  # pragma: no cover - a platform without its wheel
    from langdetect import detector_factory
    from langdetect.lang_detect_exception import LangDetectException

    ENGINE = "langdetect"


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
