"""The named heuristics a rule may use (`heuristic = "…"` in `rules/*.toml`): tests of one line's shape that no
list of strings or single regex states well. Each takes a line and says whether the rule applies.

Each also has a screen: a condition every line it applies to meets, stated over a whole page's `LineStats`
(`pipeline.linestats`: numpy arrays, one entry a line), so that a page's lines are screened at once and the test
runs only on the few that pass. A screen may let through lines the test rejects, never the reverse
(tests/test_linestats.py checks it).
"""

from __future__ import annotations

import re
from types import MappingProxyType

import numpy as np

HEURISTICS = (
    "stray_chars",  # a line of punctuation and symbols only: `. . .. $ $ $ - - -`
    "glued_words",  # words run together by a renderer: `ShareTweetPin`, `app-storeplay-store`
    "counter_cloud",  # tag or archive clouds: `Africa (977) Asia (834)`
    "calendar",  # calendar widgets: `MTWTFSS`, `567891011`, `« Apr Jun »`
    "image_file",  # image file names and alt placeholders: `photo-1280x765.jpg`
)

_GLUE = re.compile(r"[a-z\u00e0-\u00ff][A-Z][a-z]")
# bounded label length: an unbounded run makes the search quadratic on a very long line
_COUNTER = re.compile(r"\w[\w .&'-]{0,60}\s\(\d[\d,.]*\)")
_COUNT = re.compile(r"\(\d[\d,.]*\)")
# a sentence ends after two lower-case letters ("U.S. (977)", "Dr. Jones (4)" are labels) or right after a count
# with more text to follow ("New York (1993). He has …"; a cloud may end in "."), a clause at a semicolon or colon
_SENTENCE_MARK = re.compile(r"[a-z\u00df-\u00ff\u0430-\u044f]{2}[.!?](?:\s|$)|^[.!?]\s+\S|[;:](?:\s|$)")
_HEADING = re.compile(r"^[^():;]{1,40}:\s")  # "Categories: Africa (977) …", "Archives: January 2025 (12) …"
CLOUD_LABEL_WORDS = 8  # "mHealth for Wellness, Behavior Change and Prevention (3333)" is one label
_DIGIT_RUN = re.compile(r"^[\d\s]{6,}$")
_WEEKDAYS = re.compile(r"^(?:[MTWFS]{7}|(?:(?:Mo|Tu|We|Th|Fr|Sa|Su)\s*){7})$")
_IMAGE = re.compile(r"^\S*\.(?:jpe?g|png|gif|webp|svg|avif|bmp|tiff?)(?:\?\S*)?$", re.IGNORECASE)


_ALNUM = re.compile(r"[^\W_]")


def _stray_chars(line: str) -> bool:
    return not line.isspace() and bool(line) and _ALNUM.search(line) is None


def _glued_words(line: str) -> bool:
    stripped = line.strip()
    if " " in stripped or len(stripped) < 8:
        return False
    return len(_GLUE.findall(stripped)) >= 2 or bool(re.fullmatch(r"[a-z]+-[a-z]+[a-z]+-[a-z]+", stripped))


def _counter_cloud(line: str) -> bool:
    """Three labels or more with a count each, and the line is nothing else: what stands before each count is a
    label (at most CLOUD_LABEL_WORDS words, no sentence end: `_SENTENCE_MARK`) for all but a fifth of them, and what
    follows the last count is one too; a short `Heading:` may open the line. Prose with counts or years in brackets
    ("Paris (1982); London (1990);", "three (3) to five (5) products (defined below)") is no cloud."""
    if line.count("(") < 3 or len(_COUNTER.findall(line)) < 3:
        return False
    *labels, tail = _COUNT.split(_HEADING.sub("", line, count=1))
    plain = sum(_label_like(label) for label in labels)
    return plain >= 0.8 * len(labels) and _label_like(tail)


def _label_like(text: str) -> bool:
    return len(text.split()) <= CLOUD_LABEL_WORDS and _SENTENCE_MARK.search(text) is None


def _calendar(line: str) -> bool:
    stripped = line.strip()
    # each form starts with a digit, a weekday letter or «, or ends with »
    if not stripped or not (stripped[0].isdecimal() or stripped[0] in "MTWFS«" or stripped.endswith("»")):
        return False
    return bool(_DIGIT_RUN.match(stripped) or _WEEKDAYS.match(stripped)) or bool(
        re.fullmatch(r"«\s*\w+\s+\w+\s*»|«\s*\w+|\w+\s*»", stripped)
    )


def _image_file(line: str) -> bool:
    stripped = line.strip()
    return "." in stripped and " " not in stripped and bool(_IMAGE.match(stripped))


HEURISTIC_TESTS = MappingProxyType({
    "stray_chars": _stray_chars,
    "glued_words": _glued_words,
    "counter_cloud": _counter_cloud,
    "calendar": _calendar,
    "image_file": _image_file,
})


_CALENDAR_WEEKDAY = np.array([ord(c) for c in "MTWFS"])

# For trimmed lines (`rules.trim_line`): what `strip()` leaves is the line itself.
HEURISTIC_SCREENS = MappingProxyType({
    "stray_chars": lambda s: s.alnum == 0,
    "glued_words": lambda s: (s.spaces == 0) & (s.chars >= 8),
    "counter_cloud": lambda s: s.parens >= 3,
    # a run of digits and spaces (no letter); seven weekday letters, or seven two-letter ones (14 word characters);
    # or a `« Apr` / `Jun »` / `« Apr Jun »` link
    "calendar": lambda s: (s.first_decimal & (s.firsts == 0)) | (np.isin(s.first, _CALENDAR_WEEKDAY) & (
        (s.chars == 7) | (s.alnum == 14))) | (s.first == ord("«")) | (s.last == ord("»")),
    "image_file": lambda s: (s.dots > 0) & (s.spaces == 0),
})
