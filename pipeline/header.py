"""Metadata from a text dump: title, byline, date from the header above the article; site from anywhere.

The header is the few lines just above the article region. The byline anchors it: the title is the
nearest title-like line above the byline (or above the article), the publication date is the date
next to the byline or in the article's dateline, never a page-top "today" date far above it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

import dateparser

from .config import CleanConfig
from .document import LineVerdict
from .rules import RuleSet, line_key
from .textclean import BAD, BLANK, GOOD, SIG_TITLE, LineFeatures

_MONTHS = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_DATE_SPANS = re.compile(
    rf"\b(?:\d{{4}}-\d{{1,2}}-\d{{1,2}}"
    rf"|{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\.?\s+(?:of\s+)?{_MONTHS},?\s+\d{{4}}"
    rf"|\d{{1,2}}[./]\d{{1,2}}[./]\d{{4}})\b",
    re.IGNORECASE,
)
_YEAR = re.compile(r"\b(?:19[7-9]\d|20\d\d)\b")
_DATELINE = re.compile(r"^[A-Z][\w .'’-]{1,40},\s+(?P<date>[^—–]{6,40}?)\s*[—–-]{1,2}\s")
_PUBLISHED = re.compile(r"\b(?:published|posted|date|on)\b", re.IGNORECASE)
_UPDATED = re.compile(r"\b(?:updated|modified|last edited)\b", re.IGNORECASE)
_DATEPARSER_SETTINGS = {
    "REQUIRE_PARTS": ["day", "month", "year"],
    "PREFER_DAY_OF_MONTH": "first",
    "RETURN_AS_TIMEZONE_AWARE": False,
    "PREFER_DATES_FROM": "past",
}
MAX_TITLE_WORDS = 40

META_TITLE = "meta.title"
META_AUTHOR = "meta.byline"
META_DATE = "meta.date"


@dataclass
class Header:
    title: str | None = None
    author: str | None = None
    date: str | None = None
    sitename: str | None = None
    provenance: dict[str, str] = field(default_factory=dict)


def parse_date(text: str) -> date | None:
    """The first full calendar date in a short text, or None."""
    match = _DATE_SPANS.search(text)
    candidates = [match.group()] if match else []
    if not candidates and _YEAR.search(text) and len(text.split()) <= 8:
        candidates = [text]  # other languages, other formats: let dateparser try the whole line
    for candidate in candidates:
        parsed = dateparser.parse(candidate, settings=_DATEPARSER_SETTINGS)
        if parsed is not None and 1990 <= parsed.year <= 2100:
            return parsed.date()
    return None


def _is_dateish(text: str) -> bool:
    return len(text.split()) <= 12 and (bool(_DATE_SPANS.search(text)) or bool(_YEAR.search(text)))


def _match_meta(rules: RuleSet, field_name: str, text: str) -> tuple[str, str] | None:
    for pattern in rules.meta_patterns(field_name):
        match = pattern.regex.search(text)
        if match:
            value = match.group("value").strip(" ,.;:|-–—")
            if value:
                return value, pattern.id
    return None


def _split_authors(value: str) -> str:
    names = [n.strip() for n in re.split(r"\s*(?:,|\band\b|&)\s*", value) if n.strip()]
    return "; ".join(names)


def _drop(verdict: LineVerdict, rule_id: str) -> None:
    verdict.kept = False
    verdict.rule_id = rule_id


def analyse_header(
    verdicts: list[LineVerdict],
    features: list[LineFeatures | None],
    rules: RuleSet,
    config: CleanConfig,
) -> Header:
    """Find title, author, date and site; mark header lines in the article as dropped, with their id."""
    header = Header()
    header.sitename = _find_sitename(verdicts, rules, header)
    kept = [v.index for v in verdicts if v.kept]
    if not kept:
        return header
    first = kept[0]
    window = [v for v in verdicts[max(0, first - config.header_lines):first] if v.label != BLANK]
    lead = [verdicts[i] for i in kept[:3]]

    # Byline: in the header, nearest the article first, or in the article's first lines.
    byline_at = None
    for v in list(reversed(window)) + lead:
        found = _match_meta(rules, "author", v.text)
        if found and len(v.text.split()) <= 12:
            header.author = _split_authors(found[0])
            header.provenance["author"] = f"text:{found[1]}"
            byline_at = v.index
            if v.kept:
                _drop(v, META_AUTHOR)
            break

    _find_date(verdicts, window, lead, byline_at, header)
    _find_title(verdicts, window, features, byline_at, first, header)
    _pull_lead_heading(verdicts, features, header)
    return header


def _find_date(verdicts, window, lead, byline_at, header: Header) -> None:
    # A dateline opening the article: "HONG KONG, April 22, 2025 — ..."
    for v in lead[:1]:
        match = _DATELINE.match(v.text)
        if match:
            parsed = parse_date(match.group("date"))
            if parsed:
                header.date, header.provenance["date"] = parsed.isoformat(), "text:dateline"
                return
    candidates = []
    for v in window + lead:
        if v.label == BAD and not _is_dateish(v.text):
            continue
        if not _is_dateish(v.text):
            continue
        parsed = parse_date(v.text)
        if parsed is None:
            continue
        anchor = byline_at if byline_at is not None else (lead[0].index if lead else v.index)
        distance = abs(v.index - anchor)
        penalty = 5 if _UPDATED.search(v.text) and not _PUBLISHED.search(v.text) else 0
        candidates.append((distance + penalty, v.index, parsed, v))
    if candidates:
        _, _, parsed, v = min(candidates, key=lambda c: (c[0], c[1]))
        header.date, header.provenance["date"] = parsed.isoformat(), "text:header"
        if v.kept:
            _drop(v, META_DATE)


def _title_like(v: LineVerdict, feats: LineFeatures | None) -> bool:
    if v.label in (BAD, BLANK) or feats is None:
        return False
    words = feats.words
    return 2 <= words <= MAX_TITLE_WORDS and not _is_dateish(v.text) and not v.text.endswith((":", ","))


def _find_title(verdicts, window, features, byline_at, first, header: Header) -> None:
    page_title = next((line_key(v.text) for v in verdicts if v.label != BLANK), "")
    anchor = byline_at if byline_at is not None and byline_at < first else first
    above = [v for v in window if v.index < anchor]
    choice = None
    # A header line that the page's first line (often the HTML <title>) starts with is the title.
    for v in reversed(above):
        key = line_key(v.text)
        if _title_like(v, features[v.index]) and v.index > 0 and key and page_title.startswith(key):
            choice = v
            break
    if choice is None:
        for v in reversed(above):
            if _title_like(v, features[v.index]) and v.rule_id is None:
                choice = v
                break
    if choice is None and above and first > 0:
        v = verdicts[0] if verdicts[0].label != BLANK else None
        if v is not None and _title_like(v, features[0]):
            choice = v
    if choice is None:
        return
    header.title = choice.text
    header.provenance["title"] = "text:header"
    title_key = line_key(choice.text)
    for v in verdicts:
        if v.kept and line_key(v.text) == title_key:
            _drop(v, SIG_TITLE)


def _pull_lead_heading(verdicts, features, header: Header) -> None:
    """A heading right above the first paragraph belongs to the article (unless it is the title)."""
    kept = [v.index for v in verdicts if v.kept]
    if not kept:
        return
    i = kept[0] - 1
    while i >= 0 and verdicts[i].label == BLANK:
        i -= 1
    if i < 0:
        return
    v = verdicts[i]
    feats = features[i]
    if v.rule_id is None or v.label == BAD or feats is None or v.label == GOOD:
        return
    title_key = line_key(header.title) if header.title else None
    if line_key(v.text) == title_key or _is_dateish(v.text) or feats.words > MAX_TITLE_WORDS:
        return
    if not v.rule_id.startswith("signal."):
        return
    v.kept, v.rule_id = True, None


def _find_sitename(verdicts: list[LineVerdict], rules: RuleSet, header: Header) -> str | None:
    lines = [v.text for v in verdicts if v.label != BLANK]
    for pattern in rules.meta_patterns("sitename"):
        # Footers are at the bottom: read copyright and "About X" lines from the end.
        for text in reversed(lines):
            if len(text) > 200:
                continue
            match = pattern.regex.search(text)
            if match:
                value = match.group("value").strip(" ,.;:|-–—")
                if value and len(value.split()) <= 6:
                    header.provenance["sitename"] = f"text:{pattern.id}"
                    return value
    return None
