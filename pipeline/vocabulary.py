"""The words the metadata stage reads (month names, byline words, title separators), as data: the packaged
`rules/vocabulary.toml`, extended by the `[vocabulary]` tables of a `--rules` folder (`rules.load_rules`
reads them), compiled once into the patterns `header` and `html` use. Imports nothing of the package."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

VOCABULARY_KEYS = ("months", "byline_words", "byline_lead_words", "author_labels", "after_name_words", "author_joiners",
                   "name_particles", "published_words", "updated_words", "title_separators",
                   "html_title_separators")


def _any(words: tuple[str, ...]) -> str:
    """An alternation of the literal words, longest first (a word never loses to its own prefix)."""
    return "|".join(re.escape(w) for w in sorted(set(words), key=lambda w: (-len(w), w)))


@dataclass(frozen=True)
class Vocabulary:
    """The word lists (each a tuple of literal strings) and the patterns compiled from them."""

    months: tuple[str, ...] = ()
    byline_words: tuple[str, ...] = ()
    byline_lead_words: tuple[str, ...] = ()
    author_labels: tuple[str, ...] = ()
    after_name_words: tuple[str, ...] = ()
    author_joiners: tuple[str, ...] = ()
    name_particles: tuple[str, ...] = ()
    published_words: tuple[str, ...] = ()
    updated_words: tuple[str, ...] = ()
    title_separators: tuple[str, ...] = ()
    html_title_separators: tuple[str, ...] = ()
    patterns: dict[str, re.Pattern[str]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        missing = [key for key in VOCABULARY_KEYS if not getattr(self, key)]
        if missing:
            raise ValueError(f"vocabulary: empty list(s) {missing}")
        months = rf"(?:{_any(self.months)})\.?"
        name = r"[A-Z][\w.’'-]+"
        by = _any(self.byline_words)
        glued = _any(tuple(w.capitalize() for w in self.after_name_words if len(w) >= 5))
        name_end = rf"[|•·⋅–—]|\s-\s|\b(?:{_any(self.after_name_words)})\b"  # what ends a byline's name
        self.patterns.update(
            date_spans=re.compile(
                rf"\b(?:\d{{4}}-\d{{1,2}}-\d{{1,2}}"
                rf"|{months}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"
                rf"|\d{{1,2}}(?:st|nd|rd|th)?\.?\s+(?:of\s+)?{months},?\s+\d{{4}}"
                rf"|\d{{1,2}}[./]\d{{1,2}}[./]\d{{4}})\b", re.IGNORECASE),
            name=re.compile(rf"^{name}(?:\s+(?:{name}|{_any(self.name_particles)})){{1,4}}$"),
            bare_by=re.compile(rf"^(?:(?:(?:{_any(self.byline_lead_words)})\s+)?(?:{by})|{_any(self.author_labels)})"
                               rf"\s*:?$", re.IGNORECASE),
            # a byline word before a capitalised word anywhere in a line ("October 11, 2023 by Autumn Huerter")
            by_inside=re.compile(rf"(?<!\w)(?i:{by})[^\S\n]*:?[^\S\n]+(?=[A-Z])"),
            by_prefix=re.compile(rf"^(?:(?:{_any(self.byline_lead_words)})\s+)?(?:{by})\b[\s:]*", re.IGNORECASE),
            after_name=re.compile(rf"\s*(?:,|{name_end}).*$", re.IGNORECASE),
            # the same without the comma (a byline's list of names and their credentials goes on past one), and where
            # a renderer glued the next word on: "Jane DoePublished: May 3, 2025"
            after_names=re.compile(rf"\s*(?:{name_end}|(?-i:(?<=[a-z])(?:{glued})\b)).*$", re.IGNORECASE),
            author_split=re.compile(rf"\s*(?:,|\b(?:{_any(self.author_joiners)})\b|&)\s*"),
            joiner_start=re.compile(rf"^(?:(?:{_any(self.author_joiners)})\b|&)\s*"),
            published=re.compile(rf"\b(?:{_any(self.published_words)})\b", re.IGNORECASE),
            updated=re.compile(rf"\b(?:{_any(self.updated_words)})\b", re.IGNORECASE),
            title_split=re.compile(rf"\s+(?:{_any(self.title_separators)})\s+|\s*\|\s*"),
            html_title_split=re.compile(rf"\s+(?:{_any(self.html_title_separators)})\s+"),
        )

    def __getattr__(self, name: str) -> re.Pattern[str]:
        """A compiled pattern by name: `vocab.date_spans`, `vocab.by_prefix`, …"""
        patterns = self.__dict__.get("patterns", {})
        if name in patterns:
            return patterns[name]
        raise AttributeError(name)
