"""The link references of a lynx-style dump. `lynx -dump` prints `[12]` before the text of every link and lists the
links' targets, numbered, under a `References` heading at the end of the page:

       One of the many [7]advantages of cloud computing is ...

    References

       1. https://cloud.google.com/
       7. https://cloud.google.com/learn/advantages-of-cloud-computing

Both are the renderer's, not the page's: the list is a third of such a dump's words, and the markers sit inside the
story's sentences and bylines (`By [12]Jane Doe`). Before cleaning, the list's lines are blanked (each is dropped
as SIG_LINK_LIST, and so is a line that held nothing but markers: an image's link) and the markers `[n]`, n from 1
to the list's highest number, not glued to a word (`a[1]` in code stays), are taken out of the other lines. A dump
is taken for lynx's only where at least half of the list's visible links (those above lynx's `Hidden links:`) are
marked in the text above it, so a page whose own text ends with a numbered list of URLs under `References` is left
as it is, and so is a `[1]` footnote of any other page. On wcxb-dev pages rendered this way (docs/model.md, "Link
references of lynx-style dumps") the list and markers cost the learned cleaner .014 of word F1 and a third of its
bylines.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

SIG_LINK_LIST = "signal.link_list"
_HEADING = "references"
_HIDDEN = frozenset({"hidden links", "hidden links:"})
_SUBHEADINGS = _HIDDEN | {"visible links", "visible links:"}
_ITEM = re.compile(r"^\s*(\d{1,6})\.\s+(\S+)(?:\s.*)?$")  # a link's number and target (and any text after it)
_TARGET = re.compile(r"^(?:[a-z][a-z0-9+.-]{1,15}:|/|#)", re.IGNORECASE)  # a URL, a path, an anchor
_MARKER = re.compile(r"(?<!\w)\[(\d{1,6})\]")
MARKED_MIN = 0.5  # of the list's visible links, the share marked in the text above it


@dataclass(frozen=True)
class LinkReferences:
    """A dump's lines with the reference list blanked and the markers it numbers taken out (`lines`, as many as
    the dump's), the input lines of the list, heading included (`listed`), and those above it that held nothing
    but markers (`emptied`)."""

    lines: list[str]
    listed: range
    emptied: tuple[int, ...] = ()


def link_references(lines: Sequence[str]) -> LinkReferences | None:
    """The link references of a dump whose lines end with a lynx-style `References` list (the heading, then only
    numbered link targets, blank lines and lynx's `Visible links`/`Hidden links:` subheadings, to the end, the
    lowest number 1) and whose text above marks at least MARKED_MIN of the list's visible links; None for any
    other dump."""
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1
    numbers: list[int] = []
    visible: list[int] = []  # the items above a `Hidden links:` subheading (read upwards: those seen after it)
    start = end
    while start:
        text = lines[start - 1].strip()
        item = _ITEM.match(text)
        if item and _TARGET.match(item.group(2)):
            numbers.append(int(item.group(1)))
            visible.append(numbers[-1])
        elif text.casefold() in _HIDDEN:
            visible.clear()
        elif text and text.casefold() not in _SUBHEADINGS:
            break
        start -= 1
    if not visible or start == 0 or lines[start - 1].strip().casefold() != _HEADING or min(numbers) != 1:
        return None
    heading, highest = start - 1, max(numbers)
    marked = {int(n) for line in lines[:heading] if "[" in line for n in _MARKER.findall(line)}
    if len(marked.intersection(visible)) < MARKED_MIN * len(visible):
        return None

    def unmarked(match: re.Match) -> str:
        return "" if 1 <= int(match.group(1)) <= highest else match.group(0)

    out = [_MARKER.sub(unmarked, line) if "[" in line else line for line in lines[:heading]]
    emptied = tuple(i for i, (before, after) in enumerate(zip(lines, out, strict=False))
                    if before.strip() and not after.strip())
    out += [""] * (len(lines) - heading)
    return LinkReferences(out, range(heading, len(lines)), emptied)
