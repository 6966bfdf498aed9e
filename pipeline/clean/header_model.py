"""Metadata from the learned cleaner (`[clean] method = "model"`): the lines the model labelled title, byline
and date, read into a `Header` with the same parsers as the heuristic header (`header`)."""

from __future__ import annotations

import re

import numpy as np

from ..document import LineVerdict
from ..rules import RuleSet, line_key
from ..vocabulary import Vocabulary
from .dates import parse_date
from .header import (
    MAX_TITLE_WORDS,
    META_AUTHOR,
    META_DATE,
    META_TITLE,
    Header,
    _cut_about_site,
    _dateline_date,
    _drop,
    _find_sitename,
    _headline_of,
    _is_dateish,
    _match_meta,
    _split_authors,
    without_list_marker,
)

_TOKEN = re.compile(r"\w+")
TITLE_MIN_P = 0.05  # the likeliest title line even when unsure: out-of-fold on wcxb-dev, 0.3 -> 0.05 took
# inscriptis dumps' titles from .459 to .530 and bs4's from .741 to .744 (no <title> line there, the model is shy)
TITLE_ECHO_MIN = 0.3  # a line sharing this share of words with the <title> line's headline may stand for it (below)
AUTHOR_MIN_P = 0.3
BYLINE_MIN_P = 0.1  # a line that reads as a byline (`By …`) is taken from this probability on
DATE_MIN_P = 0.1
DATE_CANDIDATES = 5
AUTHOR_CANDIDATES = 3
DATE_NEAR_LINES = 5  # worded lines between a date line and the byline or headline for it to count as theirs


def header_from_model(verdicts: list[LineVerdict], meta: np.ndarray, rows: list[int], rules: RuleSet,
                      language: str | None = None, article_end: int | None = None) -> Header:
    """Title, author and date from the lines the model found likeliest for each (`meta`: rows x (other, title,
    author, date) probabilities); the site from the rules, as in the heuristic. A metadata line the body model
    dropped is relabelled `meta.title`/`meta.byline`/`meta.date`, so that explain shows it as what it became."""
    vocab = rules.vocab
    header = Header()
    header.sitename = _find_sitename(verdicts, rules, header)
    if header.sitename:
        marker = line_key(f"About {header.sitename}")
        _cut_about_site(verdicts, [line_key(v.text) if v.kept else "" for v in verdicts], marker)
    if not rows:
        return header
    probs = np.asarray(meta)
    if article_end is not None and article_end < len(rows):
        # below a section marker that ended the article ("Related Articles", "Comments") the bylines and dates are
        # other stories': not candidates
        probs = probs.copy()
        probs[article_end:, 1:] = 0.0
    anchors: list[int] = []
    j = int(np.argmax(probs[:, 1]))
    if j == 0:
        j = _page_headline(verdicts, rows, probs[:, 1], vocab)
    title = _title_value(verdicts[rows[j]].text, j == 0, vocab) if probs[j, 1] >= TITLE_MIN_P else None
    if title is None and len(rows) > 1 and _headline_shaped(verdicts[rows[0]].text, vocab) and verdicts[rows[1]].kept:
        # no title line found: a dump opens with its title
        j, title = 0, _title_value(verdicts[rows[0]].text, True, vocab)
    if title:
        header.title, header.title_line, header.provenance["title"] = title, rows[j], "text:model"
        anchors.append(j)
        _as_metadata(verdicts[rows[j]], META_TITLE)
    # The byline: of the likeliest author lines, one that reads as a byline (`By …`, a rules/ author pattern)
    # before a likelier one that does not.
    authors = []
    for j in np.argsort(-probs[:, 2], kind="stable")[:AUTHOR_CANDIDATES].tolist():
        if probs[j, 2] < BYLINE_MIN_P:
            break
        text = verdicts[rows[j]].text
        if vocab.bare_by.match(text) and j + 1 < len(rows):  # "By" alone, the name on the next line
            j, text = j + 1, verdicts[rows[j + 1]].text
            bylineish = bool(vocab.name.match(text))
        else:
            bylineish = bool(vocab.by_prefix.match(text)) or _match_meta(rules, "author", text) is not None
        value = _author_value(text, rules)
        if value and (bylineish or probs[j, 2] >= AUTHOR_MIN_P):
            authors.append((not bylineish, -probs[j, 2], j, value))
    provenance = "text:model"
    if not authors:  # the model found none: a label alone on its line ("By", "Author:") and a name on the next
        j = next((j for j in range(len(rows) - 1) if vocab.bare_by.match(verdicts[rows[j]].text)
                  and vocab.name.match(verdicts[rows[j + 1]].text)), None)
        value = _author_value(verdicts[rows[j + 1]].text, rules) if j is not None else None
        if value:
            authors.append((False, 0.0, j + 1, value))
            provenance = "text:by-line-then-name"
    if authors:
        _, _, j, header.author = min(authors)
        header.provenance["author"] = provenance
        anchors.append(j)
        _as_metadata(verdicts[rows[j]], META_AUTHOR)
    # The publication date: of the likeliest date lines that parse, one next to the byline or headline wins over
    # a likelier one elsewhere (a sidebar's "July 12, 2025" beside every teaser); else the dateline of the story.
    order = [j for j in np.argsort(-probs[:, 3], kind="stable").tolist() if probs[j, 3] >= DATE_MIN_P]
    primary = anchors[-1] if anchors else None  # the byline when there is one, else the headline

    # beside the byline or headline: the model's date lines, and any short line stating a full date (the model
    # misses some); the one nearest the byline wins, a publication date before an update
    around = {k for a in anchors for k in range(max(a - DATE_NEAR_LINES, 0), min(a + DATE_NEAR_LINES + 1, len(rows)))}
    near = sorted({j for j in order if j in around} | {
        j for j in around if len(verdicts[rows[j]].text.split()) <= 12 and _is_dateish(verdicts[rows[j]].text, vocab)})

    def rank(j: int) -> tuple:
        text = verdicts[rows[j]].text
        updated = bool(vocab.updated.search(text)) and not vocab.published.search(text)
        return updated, abs(j - primary) if near else 0, -probs[j, 3], j

    # dateparser is slow (milliseconds a call): candidates are read in rank order, and the first date read wins
    found = None
    for j in sorted(near or order[:DATE_CANDIDATES], key=rank):
        parsed = parse_date(verdicts[rows[j]].text, language, vocab)
        if parsed is not None:
            found = j, parsed
            break
    if found is not None:
        j, parsed = found
        header.date, header.provenance["date"] = parsed.isoformat(), "text:model"
        _as_metadata(verdicts[rows[j]], META_DATE)
    else:
        first = next((v for v in verdicts if v.kept), None)
        parsed = _dateline_date(first.text, language, vocab) if first is not None else None
        if parsed is not None:
            header.date, header.provenance["date"] = parsed.isoformat(), "text:dateline"
    return header


def _page_headline(verdicts: list[LineVerdict], rows: list[int], p_title: np.ndarray, vocab: Vocabulary) -> int:
    """The <title> line (a dump's first) is the likeliest title: the likeliest line of the page that repeats enough of
    its headline stands for it instead, as the page's own heading (`The Best Cameras of 2026` where the <title> says
    `Best Cameras of 2026 | Site`). Out of sample on wcxb-dev bs4 dumps (fold models): titles .717 -> .743."""
    head = set(_TOKEN.findall(_headline_of(verdicts[rows[0]].text, vocab).casefold()))
    best = 0
    for k in np.flatnonzero(p_title[1:] >= TITLE_MIN_P).tolist():
        words = set(_TOKEN.findall(verdicts[rows[k + 1]].text.casefold()))
        if words and len(words & head) >= TITLE_ECHO_MIN * max(len(words), len(head)) \
                and (best == 0 or p_title[k + 1] > p_title[best]):
            best = k + 1
    return best


def _as_metadata(v: LineVerdict, rule_id: str) -> None:
    """A line that became metadata leaves the text (where the article convention puts it), and says so."""
    if v.kept or (v.rule_id or "").startswith("model."):
        _drop(v, rule_id)


def _headline_shaped(text: str, vocab: Vocabulary) -> bool:
    words = len(text.split())
    return 2 <= words <= 20 and not text.endswith((".", ":", ",", ";")) and not _is_dateish(text, vocab)


def _title_value(text: str, first_line: bool, vocab: Vocabulary) -> str | None:
    """The headline of a title line: on the page's first line (its <title>), without the `| Site` part."""
    if len(text.split()) > MAX_TITLE_WORDS or (text.endswith(".") and len(text.split()) > 15):
        return None  # a sentence, not a headline
    return (_headline_of(text, vocab) if first_line else without_list_marker(text)) or None


def _author_value(text: str, rules: RuleSet) -> str | None:
    unmarked = without_list_marker(text)  # a byline printed as a list item ("* by Jane Doe"); a bare item stays one
    if unmarked != text and rules.vocab.by_prefix.match(unmarked):
        text = unmarked
    found = _match_meta(rules, "author", text) if len(text.split()) <= 12 else None
    vocab = rules.vocab
    value = found[0] if found else vocab.after_name.sub("", vocab.by_prefix.sub("", text)).strip(" ,.;:|-–—")
    if not value or len(value.split()) > 8 or _is_dateish(value, vocab) or "©" in value \
            or any(c.isdigit() for c in value):
        return None
    return _split_authors(value, vocab)
