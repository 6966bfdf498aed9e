"""The named heuristics a rule may use (`heuristic = "…"` in `rules/*.toml`): tests of one line's shape that no
list of strings or single regex states well. Each takes a line and says whether the rule applies."""

from __future__ import annotations

import re
from types import MappingProxyType

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
    return line.count("(") >= 3 and len(_COUNTER.findall(line)) >= 3


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
