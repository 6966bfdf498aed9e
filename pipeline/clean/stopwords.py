"""Stop-word lists for ~100 languages (jusText's), and a cheap guess of which one a page uses."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from itertools import repeat

import justext
import numpy as np

TOKEN = re.compile(r"\w+")
SAMPLE_CHARS = 12_000


@dataclass(frozen=True)
class StopwordIndex:
    """The stop lists by language (names sorted), and which lists hold each word: a row of 0/1 per word of any
    list, a column per language; built once per run, read-only afterwards."""

    languages: dict[str, frozenset[str]]
    word_rows: dict[str, int]
    membership: np.ndarray  # (words, languages) uint8

    @classmethod
    def load(cls) -> StopwordIndex:
        languages = {name: frozenset(justext.get_stoplist(name)) for name in sorted(justext.get_stoplists())}
        words = sorted(set().union(*languages.values()))
        word_rows = {word: row for row, word in enumerate(words)}
        membership = np.zeros((len(words), len(languages)), dtype=np.uint8)
        for column, listed in enumerate(languages.values()):
            membership[[word_rows[w] for w in listed], column] = 1
        membership.setflags(write=False)
        return cls(languages, word_rows, membership)

    def guess(self, text: str, sample_chars: int = SAMPLE_CHARS) -> frozenset[str]:
        """The stop list that covers most tokens of the text's first `sample_chars` (ties: the first by name;
        empty when none covers any)."""
        return self.guess_from(TOKEN.findall(text[:sample_chars].lower()))

    def guess_from(self, tokens: list[str]) -> frozenset[str]:
        """`guess` from the sample's tokens (the `\\w+` runs of its lower-cased text)."""
        counts = Counter(tokens)
        rows = np.fromiter(map(self.word_rows.get, counts, repeat(-1)), dtype=np.int64, count=len(counts))
        listed = rows >= 0
        if not listed.any():
            return frozenset()
        times = np.fromiter(counts.values(), dtype=np.int64, count=len(counts))[listed]
        hits = times @ self.membership[rows[listed]]
        return list(self.languages.values())[int(np.argmax(hits))]
