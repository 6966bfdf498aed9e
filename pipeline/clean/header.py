"""Metadata from a text dump: title, byline, date from the header above the article; site from anywhere.

The header is the few lines just above the article region. The byline anchors it: the title is the
nearest title-like line above the byline (or above the article), the publication date is the date
next to the byline or in the article's dateline, never a page-top "today" date far above it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from ..config import CleanConfig
from ..document import LineVerdict
from ..rules import RuleSet, line_key
from ..vocabulary import Vocabulary
from .dates import YEAR as _YEAR
from .dates import parse_date
from .textclean import BAD, BLANK, GOOD, SIG_BEFORE_TITLE, SIG_TITLE, LineFeatures
from .wrapping import wrapped_run

_DATELINE = re.compile(r"^[A-Z][\w .'’-]{1,40},\s+(?P<date>[^—–]{6,40}?)\s*[—–-]{1,2}\s")
MAX_TITLE_WORDS = 40
PUBLISHED_LINE_WORDS = 8  # a `Published June 4, 2025` line, where no date stands beside the headline or byline

META_TITLE = "meta.title"
META_AUTHOR = "meta.byline"
META_DATE = "meta.date"
SIG_ABOUT_SITE = "signal.about_site"


@dataclass
class Header:
    title: str | None = None
    author: str | None = None
    date: str | None = None
    sitename: str | None = None
    title_line: int | None = None
    provenance: dict[str, str] = field(default_factory=dict)


def joined_title(verdicts: list[LineVerdict], widths: Sequence[int] | None, width: int | None,
                 line: int) -> tuple[range, str]:
    """The input lines of the title printed at `line` (more than one where a hard-wrapped dump broke it) and their
    text, joined; one line when the joined text would be longer than a title."""
    first, last = wrapped_run(verdicts, widths, line, width)
    text = " ".join(verdicts[k].text for k in range(first, last + 1))
    if last > first and len(text.split()) <= MAX_TITLE_WORDS:
        return range(first, last + 1), text
    return range(line, line + 1), verdicts[line].text


# A list item's marker as renderers print it ("* ", "o ", "+ ", "• ", "2. "): a headline rendered inside a list
# (a breadcrumb's last item, a table of contents) keeps it in the dump, but it is not part of the title
# a renderer's list markers ("* ", "o ", "3. "), nested ("*   * "), or a Markdown heading's ("## ")
_LIST_MARKER = re.compile(r"^(?:(?:[*+•◦▪‣∙●○■□►▶➤\-–—o]|\d{1,2}[.)]|#{1,6})\s+)+(?=\w)")
_NUMERIC_DATE = re.compile(r"\d{1,2}\D{1,12}\d{4}|\d{4}\D{1,12}\d{1,2}")


def _is_dateish(text: str, vocab: Vocabulary) -> bool:
    """A short line that states a full date (a bare year, as in a headline, is not one)."""
    if len(text.split()) > 12:
        return False
    return bool(vocab.date_spans.search(text)) or (bool(_YEAR.search(text)) and bool(_NUMERIC_DATE.search(text))
                                              and len(text.split()) <= 6)


def strip_value(value: str) -> str:
    """A metadata value less the punctuation around it; a closing period stays on an abbreviation ("Ph.D.", "Jr.")."""
    value = value.strip(" ,;:|-–—")
    core = value.rstrip(".")
    last = core.split()[-1] if core.split() else ""
    if value != core and last and ("." in last or len(last) <= 2):
        return core.lstrip(".") + "."
    return core.strip(".")


def _match_meta(rules: RuleSet, field_name: str, text: str) -> tuple[str, str] | None:
    for pattern in rules.meta_patterns(field_name):
        match = pattern.regex.search(text)
        if match:
            value = strip_value(match.group("value"))
            if value:
                return value, pattern.id
    return None


def author_names(value: str, vocab: Vocabulary) -> list[str]:
    """The names of an author value ("Jane Doe and John Roe", "Jane Doe, John Roe")."""
    return [n.strip() for n in vocab.author_split.split(value) if n.strip()]


def _split_authors(value: str, vocab: Vocabulary) -> str:
    return "; ".join(author_names(value, vocab))


def _drop(verdict: LineVerdict, rule_id: str) -> None:
    verdict.kept = False
    verdict.rule_id = rule_id


def analyse_header(
    verdicts: list[LineVerdict],
    features: list[LineFeatures | None],
    rules: RuleSet,
    config: CleanConfig,
    language: str | None = None,
    widths: Sequence[int] | None = None,
    width: int | None = None,
) -> Header:
    """Find title, author, date and site; mark header lines in the article as dropped, with their id (`widths`:
    each input line's printed length, `width`: the column the dump was hard-wrapped at, for a title printed over
    two lines or more)."""
    header = Header()
    header.sitename = _find_sitename(verdicts, rules, header)
    if header.sitename:
        _cut_about_site(verdicts, [f.key if f is not None else "" for f in features],
                        line_key(f"About {header.sitename}"))
    kept = [v.index for v in verdicts if v.kept]
    if not kept:
        return header
    first = kept[0]
    window = [v for v in verdicts[:first] if v.label != BLANK][-config.header_lines:]
    lead = [verdicts[i] for i in kept[:3]]

    # Byline just above the article (or in its first lines) anchors the title; else the title
    # anchors the byline, which then follows it.
    byline_at = _find_byline(list(reversed(window)) + lead, rules, header)
    _find_title(verdicts, window, features, byline_at, first, header, rules.vocab, widths, width)
    if byline_at is None and header.title_line is not None:
        after = [v for v in verdicts[header.title_line + 1:header.title_line + 1 + config.header_lines]
                 if v.label != BLANK]
        byline_at = _find_byline(after, rules, header)
    anchor = byline_at if byline_at is not None else header.title_line
    _find_date(verdicts, lead, anchor if anchor is not None else first, header, language, config, rules.vocab)
    _pull_lead_heading(verdicts, features, header, rules.vocab)
    return header




def _find_byline(lines: list[LineVerdict], rules: RuleSet, header: Header) -> int | None:
    """A byline pattern from rules/, a lone `By` line followed by a name, or a name right before a date."""
    vocab = rules.vocab
    for n, v in enumerate(lines):
        found = _match_meta(rules, "author", v.text) if len(v.text.split()) <= 12 else None
        provenance = f"text:{found[1]}" if found else ""
        nxt = lines[n + 1] if n + 1 < len(lines) else None
        # the line after a lone label in the page (`lines` may run upwards: the window above the article, reversed)
        below = [w for w in ((lines[n - 1] if n else None), nxt) if w is not None and w.index > v.index]
        name_line = min(below, key=lambda w: w.index) if below else None
        if found is None and vocab.bare_by.match(v.text) and name_line is not None \
                and vocab.name.match(name_line.text):
            found, provenance = (name_line.text, ""), "text:by-line-then-name"
        elif found is None and vocab.name.match(v.text) and nxt is not None and _is_dateish(nxt.text, vocab) \
                and nxt.index > v.index:
            found, provenance = (v.text, ""), "text:name-before-date"
        if found is None:
            continue
        header.author = _split_authors(found[0], vocab)
        header.provenance["author"] = provenance
        if v.kept:
            _drop(v, META_AUTHOR)
        return v.index
    return None


def _find_date(verdicts, lead, anchor: int, header: Header, language: str | None, config: CleanConfig,
               vocab: Vocabulary) -> None:
    for v in lead[:1]:
        parsed = _dateline_date(v.text, language, vocab)
        if parsed:
            header.date, header.provenance["date"] = parsed.isoformat(), "text:dateline"
            return
    candidates = []
    low, high = max(0, anchor - config.header_lines // 3), anchor + config.header_lines
    for v in verdicts[low:high + 1]:
        if v.label in (BLANK, GOOD) or not _is_dateish(v.text, vocab):
            continue
        parsed = parse_date(v.text, language, vocab)
        if parsed is None:
            continue
        distance = abs(v.index - anchor)
        if vocab.updated.search(v.text) and not vocab.published.search(v.text):
            distance += config.header_lines  # a publication date beats a modification date
        candidates.append((distance, v.index, parsed, v))
    if not candidates:  # none beside the headline: a short line that says it states the publication date
        kept = [v.index for v in verdicts if v.kept]
        worded = [v for v in verdicts[: kept[-1] + 1 if kept else 0] if v.label != BLANK]
        found = published_line([v.text for v in worded], language, vocab)
        candidates = [(0, worded[found[0]].index, found[1], worded[found[0]])] if found else []
    if candidates:
        _, _, parsed, v = min(candidates, key=lambda c: (c[0], c[1]))
        header.date, header.provenance["date"] = parsed.isoformat(), "text:header"
        if v.kept:
            _drop(v, META_DATE)


def _opens_with_publication_word(text: str, vocab: Vocabulary) -> bool:
    """`Published …`, `Posted: …`, `Date …` (the vocabulary's publication words; not `On`, which opens sentences)."""
    first = text.split(maxsplit=1)[0].rstrip(":").casefold() if text.strip() else ""
    return first != "on" and bool(vocab.published.fullmatch(first))


def published_line(texts: Sequence[str], language: str | None, vocab: Vocabulary) -> tuple[int, date] | None:
    """Of a page's worded lines (`texts`, the article's part of the page), the first short one that states a full
    date and opens with a publication word (`Published June 4, 2025`), or stands below a short line that does
    (`Published on` / `June 4, 2025`), and holds no update word: (its place in `texts`, the date). Where no date
    stands beside the headline or byline (both headers), the dates these lines state were the gold's more often
    than not (docs/model.md, "Link references of lynx-style dumps": its paragraph on dates)."""
    for k, text in enumerate(texts):
        if len(text.split()) > PUBLISHED_LINE_WORDS or vocab.updated.search(text) or not _is_dateish(text, vocab):
            continue
        above = texts[k - 1] if k else ""
        if not (_opens_with_publication_word(text, vocab)
                or (len(above.split()) <= 3 and _opens_with_publication_word(above, vocab))):
            continue
        parsed = parse_date(text, language, vocab)
        if parsed is not None:
            return k, parsed
    return None


def _dateline_date(text: str, language: str | None, vocab: Vocabulary) -> date | None:
    """The date of a dateline opening the article: "HONG KONG, April 22, 2025 — ..."."""
    match = _DATELINE.match(text)
    return parse_date(match.group("date"), language, vocab) if match else None


def _headline_of(text: str, vocab: Vocabulary) -> str:
    """`Headline | Site` (a page's <title>) -> the longest part; a text without separators, whole."""
    parts = [p.strip() for p in vocab.title_split.split(text) if p.strip()]
    return max(parts, key=lambda p: len(p.split())) if len(parts) > 1 else text.strip()


def without_list_marker(text: str) -> str:
    """A title or byline line less the list or heading markers its renderer put before it ("* ", "o ", "3. ",
    "*   * ", "## ": html2text and other Markdown renderers print a heading that way)."""
    return _LIST_MARKER.sub("", text.strip(), count=1)


def _title_like(v: LineVerdict, feats: LineFeatures | None, vocab: Vocabulary) -> bool:
    if v.label in (BAD, BLANK) or feats is None:
        return False
    words = feats.words
    return 2 <= words <= MAX_TITLE_WORDS and not _is_dateish(v.text, vocab) and not v.text.endswith((":", ","))


def _page_title_keys(verdicts: list[LineVerdict], vocab: Vocabulary) -> set[str]:
    """The first line of a dump is often the HTML <title>: `Headline | Site`; its parts are evidence."""
    first = next((v for v in verdicts if v.label != BLANK), None)
    if first is None or first.label == BAD:
        return set()
    parts = [p for p in vocab.title_split.split(first.text) if p.strip()]
    headline = max(parts, key=lambda p: len(p.split())) if parts else first.text
    return {line_key(p) for p in (first.text, headline) if len(p.split()) >= 2}


def _good_words_after(verdicts: list[LineVerdict], features: list[LineFeatures | None],
                      span: int = 40) -> list[int]:
    """For each line, the prose words in the `span` lines after it: a headline is followed by its story."""
    words = [f.words if f is not None and v.label == GOOD else 0 for v, f in zip(verdicts, features, strict=True)]
    after = [0] * len(words)
    running = sum(words[1:span + 1])
    for i in range(len(words)):
        after[i] = running
        running -= words[i + 1] if i + 1 < len(words) else 0
        running += words[i + span + 1] if i + span + 1 < len(words) else 0
    return after


def _find_title(verdicts, window, features, byline_at, first, header: Header, vocab: Vocabulary,
                widths: Sequence[int] | None = None, width: int | None = None) -> None:
    """The headline: a line echoing the page title, else the nearest title-like line above the article.

    Among lines that repeat a part of the page's first line (the <title>), or that the page prints
    twice, the one nearest the start of the article wins; it may sit inside the article region, in
    which case whatever little the region held above it was teaser or navigation and leaves too.
    """
    page_keys = _page_title_keys(verdicts, vocab)
    printed_twice: set[str] = set()
    previous: list[str] = []
    for v in verdicts:
        if v.label != BLANK:
            key = features[v.index].key
            if key in previous:
                printed_twice.add(key)
            previous = (previous + [key])[-3:]
    first_line = next((v.index for v in verdicts if v.label != BLANK), 0)
    anchor = byline_at if byline_at is not None and byline_at < first else first
    good_after = _good_words_after(verdicts, features)
    choice, best = None, None
    for v in verdicts:
        if v.index > first:
            break  # a headline stands above its story, not among the teasers after it
        feats = features[v.index]
        if v.index == first_line or feats is None:
            continue
        evidence = 2 * (feats.key in page_keys) + (feats.key in printed_twice)
        if evidence == 0 or not _title_like(v, feats, vocab):  # the set lookups first: most lines have none
            continue
        rank = (-evidence, -good_after[v.index], v.index)
        if best is None or rank < best:
            choice, best = v, rank
    if choice is None:
        for v in reversed([v for v in window if v.index < anchor]):
            if _title_like(v, features[v.index], vocab) and v.rule_id is not None and v.rule_id.startswith("signal."):
                choice = v
                break
    if choice is None:
        _title_from_page_title(verdicts, features, first_line, first, header, vocab, widths, width)
        return
    pieces, text = joined_title(verdicts, widths, width, choice.index)
    header.title = without_list_marker(text)
    header.title_line = choice.index
    header.provenance["title"] = "text:header"
    title_key = line_key(choice.text)
    for v in verdicts:  # the headline's repeats leave the text; so do all the lines of a wrapped one
        if (v.kept and features[v.index].key == title_key) or (len(pieces) > 1 and v.index in pieces):
            _drop(v, SIG_TITLE)
    kept_words = [(v.index, len(v.text.split())) for v in verdicts if v.kept]
    above = sum(w for i, w in kept_words if i < choice.index)
    if 0 < above <= 0.25 * sum(w for _, w in kept_words):
        for v in verdicts:
            if v.kept and v.index < choice.index:
                _drop(v, SIG_BEFORE_TITLE)


def _title_from_page_title(verdicts, features, first_line: int, first: int, header: Header,
                           vocab: Vocabulary, widths: Sequence[int] | None = None, width: int | None = None) -> None:
    """No headline in the body: the page's first line, less a `| Site` suffix, stands for it."""
    v = verdicts[first_line]
    if first_line >= first or v.label == GOOD or not _title_like(v, features[first_line], vocab):
        return
    pieces, text = joined_title(verdicts, widths, width, first_line)
    if first in pieces:  # the run reaches the article
        text = v.text
    header.title = _headline_of(text, vocab)
    header.provenance["title"] = "text:page-title"


def _pull_lead_heading(verdicts, features, header: Header, vocab: Vocabulary) -> None:
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
    if v.rule_id is None or v.rule_id == SIG_TITLE or v.label == BAD or feats is None or v.label == GOOD:
        return
    title_key = line_key(header.title) if header.title else None
    if feats.key == title_key or _is_dateish(v.text, vocab) or feats.words > MAX_TITLE_WORDS:
        return
    if not v.rule_id.startswith("signal."):
        return
    v.kept, v.rule_id = True, None


def _cut_about_site(verdicts: list[LineVerdict], keys: list[str], marker: str) -> None:
    """An `About <Site>` box is the publisher's blurb: it and what follows leave the article (`keys`: each line's
    line_key, `marker`: the key of `About <Site>`)."""
    cut = next((v.index for v in verdicts if v.kept and keys[v.index] == marker), None)
    if cut is None:
        return
    for v in verdicts[cut:]:
        if v.kept:
            _drop(v, SIG_ABOUT_SITE)


def _find_sitename(verdicts: list[LineVerdict], rules: RuleSet, header: Header) -> str | None:
    lines = [v.text for v in verdicts if v.label != BLANK]
    for pattern in rules.meta_patterns("sitename"):
        # Footers are at the bottom: read copyright and "About X" lines from the end.
        for text in reversed(lines):
            if len(text) > 200:
                continue
            match = pattern.regex.search(text)
            if match:
                value = strip_value(match.group("value"))
                if value and len(value.split()) <= 6:
                    header.provenance["sitename"] = f"text:{pattern.id}"
                    return value
    return None
