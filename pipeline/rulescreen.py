"""The regex screens of a rule set: as few searches as tell whether any rule pattern can match a line.

The rules' patterns are combined into a few alternations (anchored ones apart from the rest: an alternation of
`^...` branches is tried at the start of the line only, while one unanchored branch makes the regex engine try
every branch at every position). Searching every line of a page with them was a tenth of a text dump's time,
and nearly all of it went to the unanchored screen scanning article prose. Most unanchored patterns hold a word
any match must contain (`all rights reserved`, `we use cookies`): a screen whose every branch holds one (three
characters or more) is tried only on the lines where one of those words occurs, found with a few `str.find`
calls over the whole page (lower-cased when the patterns ignore case). The words are read from the pattern's
syntax tree (`re._parser`, the stdlib's own; anything it cannot read leaves the screen unfiltered).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .linestats import LineStats

_UNCOMBINABLE = re.compile(r"\\[1-9]|\(\?[aiLmsux]+\)|\(\?\(")
_MIN_WORD = 3


def _combinable(pattern: re.Pattern[str]) -> bool:
    """False for inline global flags, numbered back-references and conditional groups: inside an
    alternation of other patterns, their group numbers would point at another pattern's groups."""
    return _UNCOMBINABLE.search(pattern.pattern) is None


def _any_of(patterns: list[re.Pattern[str]]) -> re.Pattern[str] | None:
    """One alternation of combinable patterns of one set of flags, or None if it does not compile (two
    patterns with the same group name)."""
    try:
        return re.compile("|".join(f"(?:{p.pattern})" for p in patterns), patterns[0].flags)
    except re.error:
        return None


def _anchored(pattern: re.Pattern[str]) -> bool:
    """True when every match starts at the beginning of the line (`^...` with no top-level `|`)."""
    try:
        from re import _constants, _parser  # the stdlib's own regex parser; private, hence the fallback
        tree = _parser.parse(pattern.pattern, pattern.flags)
        return len(tree) > 0 and tree[0] == (_constants.AT, _constants.AT_BEGINNING)
    except Exception:  # noqa: BLE001 - any doubt: treat as unanchored, which is only slower
        return False


def _required(nodes) -> set[str] | None:
    """Words of which every match of the node sequence holds one (None: none found of `_MIN_WORD` characters).

    Candidates: each run of literal characters at this level (zero-width assertions do not break a run), and
    each alternation, group or repeat of at least one that must match, by its own words; the candidate whose
    shortest word is longest wins."""
    from re import _constants as c

    candidates: list[set[str]] = []
    run: list[str] = []
    for op, av in list(nodes) + [(None, None)]:
        if op is c.LITERAL:
            run.append(chr(av))
            continue
        if op is c.AT:
            continue
        if len(run) >= _MIN_WORD:
            candidates.append({"".join(run)})
        run = []
        if op is c.BRANCH:
            found = [_required(branch) for branch in av[1]]
            if all(f is not None for f in found):
                candidates.append(set().union(*found))
        elif op is c.SUBPATTERN and not av[1] and not av[2]:  # a group that sets no flags
            found = _required(av[3])
            if found is not None:
                candidates.append(found)
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT) and av[0] >= 1:
            found = _required(av[2])
            if found is not None:
                candidates.append(found)
    return max(candidates, key=lambda words: min(map(len, words)), default=None)


def _words(pattern: re.Pattern[str]) -> tuple[str, ...] | None:
    """The words of which every match of `pattern` holds one, lower-cased when it ignores case (then only ASCII
    words: their case-insensitive matches are what `str.lower` finds, on pages `LineStats.lowered` allows)."""
    try:
        from re import _parser
        found = _required(_parser.parse(pattern.pattern, pattern.flags))
    except Exception:  # noqa: BLE001 - a pattern we cannot read is tried on every line
        return None
    if found is None:
        return None
    if pattern.flags & re.IGNORECASE:
        if not all(word.isascii() for word in found):
            return None
        found = {word.lower() for word in found}
    return tuple(sorted(found))


@dataclass(frozen=True)
class RegexScreen:
    """One search that tells whether any of its patterns matches a line, and the words every match holds."""

    regex: re.Pattern[str]
    words: tuple[str, ...] | None = None

    def worth_trying(self, stats: LineStats, undecided: np.ndarray) -> list[int]:
        """The lines among `undecided` (a flag a line) on which the search could match."""
        rows = np.flatnonzero(undecided)
        if self.words is None or not len(rows):
            return rows.tolist()
        text = stats.lowered if self.regex.flags & re.IGNORECASE else stats.text
        if text is None:
            return rows.tolist()
        positions = []
        for word in self.words:
            at = text.find(word)
            while at >= 0:
                positions.append(at)
                at = text.find(word, at + 1)
        if not positions:
            return []
        holding = np.zeros(len(stats.lines), dtype=bool)
        holding[np.searchsorted(stats.starts, np.asarray(positions), side="right") - 1] = True
        return rows[holding[rows]].tolist()


def screens(patterns: list[re.Pattern[str]]) -> tuple[RegexScreen, ...]:
    """As few searches as tell whether any of the patterns matches a line (anchored patterns combined apart
    from the rest: 5x faster on the rule files shipped); patterns that cannot be combined stay alone."""
    groups: dict[tuple[bool, int], list[re.Pattern[str]]] = {}
    alone: list[re.Pattern[str]] = []
    for pattern in patterns:
        if _combinable(pattern):
            groups.setdefault((_anchored(pattern), pattern.flags), []).append(pattern)
        else:
            alone.append(pattern)
    found: list[tuple[re.Pattern[str], bool]] = []
    for (anchored, _flags), group in sorted(groups.items(), key=lambda item: (not item[0][0], item[0][1])):
        combined = _any_of(group) if len(group) > 1 else group[0]
        found.extend([(combined, anchored)] if combined is not None else [(p, anchored) for p in group])
    found += [(pattern, _anchored(pattern)) for pattern in alone]
    # an anchored screen is tried at each line's start only: cheap enough without the word filter
    return tuple(RegexScreen(pattern, None if anchored else _words(pattern)) for pattern, anchored in found)
