"""Hard-wrapped dumps: lynx and w3m wrap a page at 79-80 columns, scrapers at 72 or 76, so a long headline takes two
lines or more of the dump. The headers (`header`, `header_model`) read such a run of lines as one title."""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..document import LineVerdict

# A dump is taken as wrapped at W, its longest line of two words or more none of them a long one (a wrapped line is
# broken between words, so only a long word, a URL, overruns W), when W is at most WRAP_MAX_WIDTH and WRAP_MIN_LINES
# lines reach within WRAP_NEAR columns of it and go on at the next line (it is printed, and the line ends no
# sentence): one-line paragraphs of about the same length end their sentences or stand between blank lines. A run
# of wrapped lines is at most WRAP_MAX_LINES long (docs/model.md, "Titles of hard-wrapped dumps").
WRAP_MAX_WIDTH, WRAP_NEAR, WRAP_MIN_LINES, WRAP_MAX_LINES, LONG_WORD = 132, 10, 8, 4, 30
_WRAP_ENDS = tuple(".!?")
_WORD = re.compile(r"\w")


def _breakable(line: str) -> bool:
    """A line a wrapping renderer would have broken had it been longer: two words or more, none a long one."""
    return len(words := line.split()) > 1 and max(map(len, words)) <= LONG_WORD


def wrap_width(lines: Sequence[str]) -> int | None:
    """The column the dump's `lines` were hard-wrapped at, or None when its paragraphs are one line each. Runs on
    every text dump: the longest breakable line is found from the longest line down, and on a dump of one-line
    paragraphs (the longest breakable line past WRAP_MAX_WIDTH) that is all it reads."""
    printed = [line.rstrip() for line in lines]
    width = next((len(line) for line in sorted(printed, key=len, reverse=True) if _breakable(line)), None)
    if width is None or width > WRAP_MAX_WIDTH or sum(map(_breakable, printed)) < WRAP_MIN_LINES:
        return None
    going_on = sum(len(line) >= width - WRAP_NEAR and not line.endswith(_WRAP_ENDS) and bool(after.strip())
                   for line, after in zip(printed, printed[1:], strict=False))
    return width if going_on >= WRAP_MIN_LINES else None


def wrapped_run(verdicts: list[LineVerdict], widths: Sequence[int] | None, line: int,
                width: int | None) -> tuple[int, int]:
    """The input lines `first..last` around `line` that print one line of text hard-wrapped at `width`: each but the
    last fills its line (the next line's first word would not have fitted), none ends a sentence, and the next is
    printed right below it, holds a word (not a rule of `====`) and does not repeat it; a line the cleaner kept that
    fills its own line as well (the article's prose) continues no line it did not keep. `(line, line)` when the dump
    is not wrapped."""
    if width is None or widths is None:
        return line, line

    def continues(a: int) -> bool:  # input line a goes on at line a + 1
        if a < 0 or a + 1 >= len(verdicts):
            return False
        upper, lower = verdicts[a].text, verdicts[a + 1].text
        if not upper or not _WORD.search(lower) or upper.endswith(_WRAP_ENDS) or widths[a] > width:
            return False
        if verdicts[a + 1].kept and not verdicts[a].kept and widths[a + 1] >= width - WRAP_NEAR:
            return False  # a kept line that fills its own line too is the article's prose running on, not the title's
        if widths[a] + 1 + len(lower.split()[0]) <= width:
            return False
        lower_words = set(lower.casefold().split())
        return len(lower_words & set(upper.casefold().split())) < 0.5 * len(lower_words)

    first = last = line
    while last - first + 1 < WRAP_MAX_LINES and continues(first - 1):
        first -= 1
    while last - first + 1 < WRAP_MAX_LINES and continues(last):
        last += 1
    return first, last
