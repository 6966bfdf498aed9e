"""Reading a calendar date out of a short line of a text dump (the header's date, a dateline).

English and numeric spans are found by pattern (the vocabulary's `date_spans`); a short line in another
language with a year in it goes whole to dateparser in the page's language. dateparser is slow (0.6 ms a date
with its parser made once, 1.6 ms as `dateparser.parse` makes one a call, more the first time a language is
read), so the plainest English spans, "March 4, 2025", "4th of March 2025", "2025-03-04", are read directly:
what dateparser answers for them is fixed (one reading of day, month and year), and tests/test_header.py checks
that the direct reading equals dateparser's on every shape and month name it accepts. Anything else (numeric
`4/3/2025`, whose day and month order dateparser decides, an impossible day, a month name the user's vocabulary
added) goes to dateparser.
"""

from __future__ import annotations

import functools
import re
from datetime import date
from types import MappingProxyType

from dateparser.date import DateDataParser

from ..rules import packaged_vocabulary
from ..vocabulary import Vocabulary

YEAR = re.compile(r"\b(?:19[7-9]\d|20\d\d)\b")
# A date written year first with slashes or dots, `2025/4/29`, `2025.04.29` (East Asian sites and some CMSs print
# them so): year, month, day, as dateparser reads them too; not inside a URL's path (`/2025/04/29/story`)
_YEAR_FIRST = re.compile(r"(?<![\w/.])(?P<year>(?:19|20)\d\d)(?P<sep>[/.])(?P<month>\d{1,2})(?P=sep)(?P<day>\d{1,2})"
                         r"(?![\w/]|\.\d)")
_DATEPARSER_SETTINGS = MappingProxyType({  # dateparser wants a dict (and REQUIRE_PARTS a list): copied a call
    "REQUIRE_PARTS": ("day", "month", "year"),
    "PREFER_DAY_OF_MONTH": "first",
    "RETURN_AS_TIMEZONE_AWARE": False,
    "PREFER_DATES_FROM": "past",
})
_MONTHS = MappingProxyType({name: number for number, names in enumerate((
    ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",), ("june", "jun"),
    ("july", "jul"), ("august", "aug"), ("september", "sept", "sep"), ("october", "oct"), ("november", "nov"),
    ("december", "dec")), start=1) for name in names})
_ORDINAL = r"(?:st|nd|rd|th)?"
_PLAIN = (  # the vocabulary's `date_spans` shapes with a month name, and ISO
    re.compile(rf"(?P<month>[a-z]+)\.? (?P<day>\d{{1,2}}){_ORDINAL},? (?P<year>\d{{4}})", re.IGNORECASE),
    re.compile(rf"(?P<day>\d{{1,2}}){_ORDINAL}\.? (?:of )?(?P<month>[a-z]+)\.?,? (?P<year>\d{{4}})", re.IGNORECASE),
    re.compile(r"(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})"),
)


def _plain_english(span: str) -> date | None:
    """The date of a plain English span, or None when the span is not one of the plain shapes (dateparser's)."""
    for pattern in _PLAIN:
        found = pattern.fullmatch(span)
        if found is None:
            continue
        month = found["month"]
        number = int(month) if month.isdigit() else _MONTHS.get(month.lower())
        if number is None:
            return None
        try:
            return date(int(found["year"]), number, int(found["day"]))
        except ValueError:  # no such day: dateparser's reading
            return None
    return None


@functools.cache
def _date_parser(language: str) -> DateDataParser | None:
    """dateparser's parser for one language, made once per process (None: a language dateparser does not know).

    `dateparser.parse` makes a parser a call: two thirds of the 1.6 ms a date took. A parser made with
    `try_previous_locales` off (the default) reads every text alike, so reusing it changes no result."""
    settings = {**_DATEPARSER_SETTINGS, "REQUIRE_PARTS": list(_DATEPARSER_SETTINGS["REQUIRE_PARTS"])}
    try:
        return DateDataParser(languages=[language], settings=settings)
    except ValueError:
        return None


def dateparser_date(text: str, language: str) -> date | None:
    """What dateparser reads in `text` in `language` with pagewash's settings (any year)."""
    parser = _date_parser(language)
    if parser is None:
        return None
    try:
        parsed = parser.get_date_data(text)["date_obj"]
    except ValueError:
        return None
    return parsed.date() if parsed is not None else None


def _year_first(text: str) -> date | None:
    found = _YEAR_FIRST.search(text)
    if found is None:
        return None
    try:
        return date(int(found["year"]), int(found["month"]), int(found["day"]))
    except ValueError:
        return None


def parse_date(text: str, language: str | None = None, vocab: Vocabulary | None = None) -> date | None:
    """The first full calendar date in a short text, between 1990 and 2100, or None."""
    match = (vocab or packaged_vocabulary()).date_spans.search(text)
    if match:
        span = " ".join(match.group().split())
        parsed = _plain_english(span) or dateparser_date(match.group(), "en")
    else:
        parsed = _year_first(text)
        if parsed is None and language and language != "en" and YEAR.search(text) and len(text.split()) <= 8:
            parsed = dateparser_date(text, language.split("-")[0])
    return parsed if parsed is not None and 1990 <= parsed.year <= 2100 else None
