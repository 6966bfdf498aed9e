"""The WCXB metric (shared/bench/README.md): word F1, snippet rates, metadata matches."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

_TOKEN = re.compile(r"\w+")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Score:
    precision: float
    recall: float
    f1: float


def tokens(text: str) -> list[str]:
    """The words the metric counts: runs of word characters, lower-cased."""
    return _TOKEN.findall(text.lower())


def word_f1(prediction: str, gold: str) -> Score:
    pred = Counter(tokens(prediction))
    ref = Counter(tokens(gold))
    if not pred or not ref:
        return Score(0.0, 0.0, 0.0)
    overlap = sum((pred & ref).values())
    p = overlap / sum(pred.values())
    r = overlap / sum(ref.values())
    return Score(p, r, 2 * p * r / (p + r) if p + r else 0.0)


def fold(text: str | None) -> str:
    """Case- and whitespace-folded form used for snippet and title comparison."""
    if text is None:
        return ""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


def snippet_found(snippet: str, text: str) -> bool:
    return fold(snippet) in fold(text)


def same_title(pred: str | None, gold: str | None) -> bool:
    return fold(pred) == fold(gold)


def same_date(pred: str | None, gold: str | None) -> bool:
    if not pred or not gold:
        return not pred and not gold
    return pred[:10] == gold[:10]


def _names(value: str | None) -> set[str]:
    if not value:
        return set()
    return {fold(n) for n in re.split(r"\s*(?:;|,|\band\b|&)\s*", value) if n.strip()}


def same_authors(pred: str | None, gold: str | None) -> bool:
    return _names(pred) == _names(gold)
