"""Character statistics of every line of a page, in a few numpy passes over the whole page.

The cleaner needs, for each line, its words, its stop words, how many of its words start with a capital, whether it
ends like a sentence or holds a URL, and the rule screens need a few character counts. Computed a line at a time,
that was a dozen regex and string calls per line, most of a text dump's time. Here the page's lines are joined once,
turned into one array of code points, classified by table lookup and summed per line (`np.add.reduceat`).

The figures are exact, not approximations: the code-point tables are built from the very predicates the per-line
code used (`re`'s `\\w`, `str.isalpha`, `str.isupper`, `str.isdecimal`), for every code point of the Basic
Multilingual Plane once per process and for any other code point on the page when it occurs; tokens are the
`\\w+` runs of the lower-cased text, as before. tests/test_linestats.py checks them against the per-line
definitions on generated pages.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

_WORD = re.compile(r"\w+")
_URL = re.compile(r"https?://|www\.\w", re.IGNORECASE)
_BMP = 0x10000
_ASCII_CASE_ODD = ("\u0130", "\u0131", "\u017f")  # İ ı ſ: match i, i, s ignoring case, lower-case otherwise
# bits of the code-point table
_WORD_BIT, _ALPHA_BIT, _UPPER_BIT, _DECIMAL_BIT, _LOWER_WORD_BIT = 1, 2, 4, 8, 16


def _bits(chars: str) -> list[int]:
    """The table's bits for each character: `\\w`, isalpha, isupper, isdecimal, and `\\w` of its lower case
    (for the one character whose lower case is two, U+0130, the page takes the slow path)."""
    return [(_WORD_BIT if _WORD.match(c) else 0) | (_ALPHA_BIT if c.isalpha() else 0)
            | (_UPPER_BIT if c.isupper() else 0) | (_DECIMAL_BIT if c.isdecimal() else 0)
            | (_LOWER_WORD_BIT if _WORD.match(c.lower()) else 0) for c in chars]


@functools.cache
def _bmp_table() -> np.ndarray:
    """uint8 bits of every code point of the Basic Multilingual Plane, computed once per process (read-only)."""
    table = np.array(_bits("".join(map(chr, range(_BMP)))), dtype=np.uint8)
    table.setflags(write=False)
    return table


def _classes(cp: np.ndarray) -> np.ndarray:
    """The table's bits for each code point (beyond the BMP: computed once per distinct code point on the page)."""
    table = _bmp_table()
    astral = cp >= _BMP
    if not astral.any():
        return table[cp]
    out = table[np.where(astral, 0, cp)]
    codes, inverse = np.unique(cp[astral], return_inverse=True)
    out[astral] = np.array(_bits("".join(map(chr, codes.tolist()))), dtype=np.uint8)[inverse]
    return out


def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _per_line(flags: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """How many of `flags` (one a character) are set in each line (lines start at `starts`, none empty)."""
    return np.add.reduceat(flags.view(np.uint8), starts, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class LineStats:
    """Per line of `lines` (each non-empty and trimmed): counts as numpy int64 arrays, flags as bool arrays."""

    lines: list[str]
    tokens: list[str]  # the `\w+` runs of each line's lower-cased text, every line's in order
    n_tokens: np.ndarray  # how many of `tokens` each line has
    firsts: np.ndarray  # letters (str.isalpha) that start a word: no word character before them
    caps: np.ndarray  # those of `firsts` that are upper case
    alnum: np.ndarray  # word characters but `_`
    cjk: np.ndarray  # kana, CJK ideographs and Hangul syllables (the per-line `_CJK` class)
    spaces: np.ndarray  # " "
    dots: np.ndarray  # "."
    parens: np.ndarray  # "("
    chars: np.ndarray  # len(line)
    first: np.ndarray  # code point of the first character
    last: np.ndarray  # code point of the last character
    first_decimal: np.ndarray  # the first character is a decimal digit (str.isdecimal)
    url: np.ndarray  # `https?://` or `www.` and a word character (case-insensitive)
    text: str = ""  # the lines joined by "\n"
    starts: np.ndarray | None = None  # where each line starts in `text`
    # `text` lower-cased, where that finds every case-insensitive match of an ASCII word at the same place: not
    # when lower() lengthens a character (U+0130) or a character matching an ASCII letter regardless of case
    # does not lower-case to it (ı, ſ); None then
    lowered: str | None = None

    def per_line(self, flags: list[bool] | np.ndarray) -> np.ndarray:
        """Sum over each line's tokens of a flag per token (same order as `tokens`)."""
        n = len(self.lines)
        if not self.tokens:
            return np.zeros(n, dtype=np.int64)
        flags = np.asarray(flags, dtype=np.int64)
        offsets = np.concatenate(([0], np.cumsum(self.n_tokens)[:-1]))
        sums = np.add.reduceat(np.concatenate((flags, [0])), np.minimum(offsets, len(flags)))
        return np.where(self.n_tokens > 0, sums, 0)

    def count_in(self, vocabulary: frozenset[str]) -> np.ndarray:
        """Tokens of each line that are in `vocabulary`."""
        if not vocabulary:
            return np.zeros(len(self.lines), dtype=np.int64)
        return self.per_line(np.fromiter(map(vocabulary.__contains__, self.tokens), dtype=bool,
                                         count=len(self.tokens)))


def line_stats(lines: list[str]) -> LineStats:
    """The statistics of `lines` (non-empty, trimmed: `rules.trim_line`), one pass over the page."""
    n = len(lines)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return LineStats(lines, [], *([empty] * 11), np.zeros(0, dtype=bool), np.zeros(0, dtype=bool))
    joined = "\n".join(lines)
    lengths = np.fromiter(map(len, lines), dtype=np.int64, count=n)
    starts = np.concatenate(([0], np.cumsum(lengths + 1)[:-1]))
    cp = _code_points(joined)
    bits = _classes(cp)
    word = (bits & _WORD_BIT).astype(bool)
    # a letter after no word character starts a word (a line's first character follows "\n", no word character)
    firsts = (bits & _ALPHA_BIT).astype(bool)
    firsts[1:] &= ~word[:-1]
    cjk = ((cp >= 0x3040) & (cp <= 0x30FF)) | ((cp >= 0x3400) & (cp <= 0x4DBF)) | (
        (cp >= 0x4E00) & (cp <= 0x9FFF)) | ((cp >= 0xAC00) & (cp <= 0xD7AF))
    # tokens are the `\w+` runs of the lower-cased page; lower() maps one character to one, so the runs start where
    # the lower-cased characters' word bits say, but for U+0130 (`İ` -> `i̇`), where the lower-cased page is read
    lowered = joined.lower()
    tokens = _WORD.findall(lowered)
    if len(lowered) == len(joined):
        low_word, low_starts = (bits & _LOWER_WORD_BIT).astype(bool), starts
    else:
        low_cp = _code_points(lowered)
        low_word = (_classes(low_cp) & _WORD_BIT).astype(bool)
        low_starts = np.concatenate(([0], np.flatnonzero(low_cp == ord("\n")) + 1))
    token_starts = low_word.copy()
    token_starts[1:] &= ~low_word[:-1]
    url = np.zeros(n, dtype=bool)
    if "://" in joined or "www." in lowered:
        positions = [m.start() for m in _URL.finditer(joined)]  # a match never spans a line break
        if positions:
            url[np.searchsorted(starts, np.asarray(positions), side="right") - 1] = True
    return LineStats(
        lines=lines, tokens=tokens, n_tokens=_per_line(token_starts, low_starts),
        firsts=_per_line(firsts, starts), caps=_per_line(firsts & (bits & _UPPER_BIT).astype(bool), starts),
        alnum=_per_line(word & (cp != ord("_")), starts), cjk=_per_line(cjk, starts),
        spaces=_per_line(cp == ord(" "), starts), dots=_per_line(cp == ord("."), starts),
        parens=_per_line(cp == ord("("), starts), chars=lengths, first=cp[starts].astype(np.int64),
        last=cp[starts + lengths - 1].astype(np.int64), first_decimal=(bits[starts] & _DECIMAL_BIT).astype(bool),
        url=url, text=joined, starts=starts,
        lowered=lowered if len(lowered) == len(joined) and not any(c in joined for c in _ASCII_CASE_ODD) else None,
    )
