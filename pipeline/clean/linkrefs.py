"""The link references of a lynx-style dump. `lynx -dump` prints `[12]` before the text of every link and lists the
links' targets, numbered, under a `References` heading at the end of the page:

       One of the many [7]advantages of cloud computing is ...

    References

       1. https://cloud.google.com/
       7. https://cloud.google.com/learn/advantages-of-cloud-computing

Both are the renderer's, not the page's: the list is a third of such a dump's words, and the markers sit inside the
story's sentences and bylines (`By [12]Jane Doe`). Before cleaning, the list's lines are blanked (each is dropped
as SIG_LINK_LIST) and the markers the list numbers are taken out of the other lines; a dump without such a list is
left as it is, so a `[1]` footnote of any other page stays. On wcxb-dev pages rendered this way (docs/model.md,
"Link references of lynx-style dumps") the list and markers cost the learned cleaner .022 of word F1 and a third
of its bylines.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

SIG_LINK_LIST = "signal.link_list"
_HEADING = "references"
_SUBHEADINGS = frozenset({"visible links", "visible links:", "hidden links", "hidden links:"})
_ITEM = re.compile(r"^\s*(\d{1,6})\.\s+(\S+)\s*$")
_TARGET = re.compile(r"^(?:[a-z][a-z0-9+.-]{1,15}:|/|#)", re.IGNORECASE)  # a URL, a path, an anchor
_MARKER = re.compile(r"\[(\d{1,6})\]")


@dataclass(frozen=True)
class LinkReferences:
    """A dump's lines with the reference list blanked and the markers it numbers taken out (`lines`, as many as
    the dump's), and the input lines of the list, heading included (`listed`)."""

    lines: list[str]
    listed: range


def link_references(lines: Sequence[str]) -> LinkReferences | None:
    """The link references of a dump whose lines end with a lynx-style `References` list (the heading, then only
    numbered link targets, blank lines and lynx's `Visible links`/`Hidden links:` subheadings, to the end, the
    first item numbered 1); None for any other dump."""
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1
    numbers: list[int] = []
    start = end
    while start:
        text = lines[start - 1].strip()
        item = _ITEM.match(text)
        if item and _TARGET.match(item.group(2)):
            numbers.append(int(item.group(1)))
        elif text and text.casefold() not in _SUBHEADINGS:
            break
        start -= 1
    if not numbers or start == 0 or lines[start - 1].strip().casefold() != _HEADING or min(numbers) != 1:
        return None
    highest = max(numbers)

    def unmarked(match: re.Match) -> str:
        return "" if 1 <= int(match.group(1)) <= highest else match.group(0)

    heading = start - 1
    out = [_MARKER.sub(unmarked, line) if "[" in line else line for line in lines[:heading]]
    out += [""] * (len(lines) - heading)
    return LinkReferences(out, range(heading, len(lines)))
