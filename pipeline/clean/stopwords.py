"""Stop-word lists for ~100 languages (jusText's), and a cheap guess of which one a page uses."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import justext

_TOKEN = re.compile(r"\w+")


@dataclass(frozen=True)
class StopwordIndex:
    """word -> languages whose stop list holds it; built once per run, read-only afterwards."""

    languages: dict[str, frozenset[str]]
    by_word: dict[str, tuple[str, ...]]

    @classmethod
    def load(cls) -> StopwordIndex:
        languages = {name: frozenset(justext.get_stoplist(name)) for name in sorted(justext.get_stoplists())}
        by_word: dict[str, list[str]] = {}
        for name, words in languages.items():
            for word in words:
                by_word.setdefault(word, []).append(name)
        return cls(languages, {w: tuple(names) for w, names in by_word.items()})

    def guess(self, text: str, sample_chars: int = 12_000) -> frozenset[str]:
        """The stop list that covers most tokens of the text's first `sample_chars` (empty when none covers any)."""
        hits: Counter[str] = Counter()
        by_word = self.by_word
        for token, count in Counter(_TOKEN.findall(text[:sample_chars].lower())).items():
            for name in by_word.get(token, ()):
                hits[name] += count
        if not hits:
            return frozenset()
        best = max(sorted(hits), key=lambda name: hits[name])
        return self.languages[best]
