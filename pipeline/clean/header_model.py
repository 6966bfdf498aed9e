"""Metadata from the learned cleaner (`[clean] method = "model"`): the lines the model labelled title, byline
and date, read into a `Header` with the same parsers as the heuristic header (`header`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..document import LineVerdict
from ..rules import RuleSet, line_key
from ..vocabulary import Vocabulary
from .dates import parse_date
from .header import (
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
    joined_title,
    published_line,
)
from .header_candidates import _TOKEN, _author_value, _title_value, author_candidates, title_candidates

TITLE_MIN_P = 0.05  # the likeliest title line even when unsure: out-of-fold on wcxb-dev, 0.3 -> 0.05 took
# inscriptis dumps' titles from .459 to .530 and bs4's from .741 to .744 (no <title> line there, the model is shy)
TITLE_ECHO_MIN = 0.3  # a line sharing this share of words with the <title> line's headline may stand for it (below)
AUTHOR_MIN_P = 0.3
BYLINE_MIN_P = 0.1  # a line that reads as a byline (`By …`) is taken from this probability on
DATE_MIN_P = 0.1
DATE_CANDIDATES = 5
AUTHOR_CANDIDATES = 3
DATE_NEAR_LINES = 5  # worded lines between a date line and the byline or headline for it to count as theirs


@dataclass(frozen=True)
class HeaderRankers:
    """The model's rankers of candidate title and author lines (LineModel.rankers): scores for the rows of
    TITLE_FEATURES / AUTHOR_FEATURES; an author needs `author_min`, chosen in training."""

    title: Callable[[np.ndarray], np.ndarray] | None = None
    author: Callable[[np.ndarray], np.ndarray] | None = None
    author_min: float = 0.5


def metadata_probabilities(meta: np.ndarray, article_end: int | None) -> np.ndarray:
    """The metadata model's probabilities as the header reads them: below a section marker that ended the article
    ("Related Articles", "Comments") the titles, bylines and dates are other stories': not candidates."""
    probs = np.asarray(meta)
    if article_end is not None and article_end < len(probs):
        probs = probs.copy()
        probs[article_end:, 1:] = 0.0
    return probs


def header_from_model(verdicts: list[LineVerdict], meta: np.ndarray, rows: list[int], rules: RuleSet,
                      language: str | None = None, article_end: int | None = None,
                      rankers: HeaderRankers | None = None, stopwords: frozenset[str] = frozenset(),
                      widths: Sequence[int] | None = None, width: int | None = None,
                      body: np.ndarray | None = None) -> Header:
    """Title, author and date from the lines the model found likeliest for each (`meta`: rows x (other, title,
    author, date) probabilities); the site from the rules, as in the heuristic. A metadata line the body model
    dropped is relabelled `meta.title`/`meta.byline`/`meta.date`, so that explain shows it as what it became.
    `rankers` (the model's, when it has them: `LineModel.rankers`) score the likeliest title and author
    lines again from what surrounds them (`stopwords`: the page's stop list, which the author ranker reads);
    without them the likeliest line is the title, and a byline-shaped line the author before a likelier one that
    is not. A title a hard-wrapped dump printed over two lines or more is read whole (`widths`: each input line's
    printed length, `width`: the column the dump was wrapped at; `header.joined_title`). `body`: the body model's
    P(body) a row, which the title ranker reads (zeros when not given)."""
    vocab = rules.vocab
    header = Header()
    probs = metadata_probabilities(meta, article_end)
    rankers = rankers or HeaderRankers()
    body = np.zeros(len(rows)) if body is None else np.asarray(body)
    ranked = title_candidates(verdicts, probs, body, rows, vocab) if rows and rankers.title is not None else None
    named = author_candidates(verdicts, probs, rows, rules, stopwords) if rows and rankers.author is not None else None
    header.sitename = _find_sitename(verdicts, rules, header)
    if header.sitename:
        marker = line_key(f"About {header.sitename}")
        _cut_about_site(verdicts, [line_key(v.text) if v.kept else "" for v in verdicts], marker)
    if not rows:
        return header
    anchors: list[int] = []
    if ranked is not None:
        order, values, features = ranked
        k = ranked_choice(values, rankers.title(features))
        j, title = (0, None) if k is None else (order[k], values[k])
    else:
        j = int(np.argmax(probs[:, 1]))
        if j == 0:
            j = _page_headline(verdicts, rows, probs[:, 1], vocab)
        title = _title_value(verdicts[rows[j]].text, j == 0, vocab) if probs[j, 1] >= TITLE_MIN_P else None
    if title is None and ranked is None and len(rows) > 1 and _headline_shaped(verdicts[rows[0]].text, vocab) \
            and verdicts[rows[1]].kept:
        # no title line found: a dump opens with its title (the ranker, where there is one, has judged that line)
        j, title = 0, _title_value(verdicts[rows[0]].text, True, vocab)
    if title:
        pieces, text = joined_title(verdicts, widths, width, rows[j])
        if len(pieces) > 1:
            title = _title_value(text, pieces.start == rows[0], vocab) or title
        header.title, header.title_line, header.provenance["title"] = title, rows[j], "text:model"
        anchors.append(j)
        for r in pieces:
            _as_metadata(verdicts[r], META_TITLE)
        _drop_title_repeats(verdicts, rows, {line_key(verdicts[r].text) for r in pieces})
    # The byline: the author ranker's best candidate, where it is sure enough
    authors = []
    if named is not None:
        lines, names, features = named
        k = author_choice(rankers.author(features) if names else np.zeros(0), rankers.author_min)
        if k is not None:
            authors.append((False, 0.0, lines[k], names[k]))
    else:  # without a ranker: of the likeliest author lines, one that reads as a byline before a likelier one
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
    if not authors and named is None:  # the model found none: a label alone on its line ("By", "Author:"), a name under
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
    # the headline when there is one, else the byline: with the author ranker's bylines (an author box at the foot
    # of the story, beside its "updated" date) the date nearest the headline was right more often (wcxb-dev, fold
    # models: .705 / .677 -> .717 / .693, bs4 / inscriptis, against the byline; the nearest of either: .710 / .686)
    primary = anchors[0] if anchors else None

    # beside the byline or headline: the model's date lines, and any short line stating a full date (the model
    # misses some); the one nearest the headline wins, a publication date before an update
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
    if found is None:  # none beside the headline or byline: a short line that says it states the publication date
        found = published_line([verdicts[r].text for r in rows[:article_end]], language, vocab)
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


def ranked_choice(values: list[str | None], scores: np.ndarray) -> int | None:
    """Of the candidates' headlines, the best-scored one (a sentence has none). The ranker orders a page's
    candidates (LightGBM lambdarank): its scores compare candidates, they are no probability to hold to a least."""
    for k in np.argsort(-np.asarray(scores), kind="stable").tolist():
        if values[k]:
            return k
    return None


def author_choice(scores: np.ndarray, least: float) -> int | None:
    """The best-scored author candidate, if it scores `least` (the model's `author_min`); else no author."""
    if not len(scores):
        return None
    k = int(np.argmax(scores))
    return k if scores[k] >= least else None


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


def _drop_title_repeats(verdicts: list[LineVerdict], rows: list[int], keys: set[str]) -> None:
    """The headline printed again at the top of the kept text (a dump's <title> line and the page's heading, the
    heading twice; `keys`: the line keys of the title's lines) is the title too: those lines leave the text, up to
    the first kept line that is not it."""
    for r in rows:
        v = verdicts[r]
        if not v.kept:
            continue
        if line_key(v.text) not in keys:
            break
        _drop(v, META_TITLE)


def _as_metadata(v: LineVerdict, rule_id: str) -> None:
    """A line that became metadata leaves the text (where the article convention puts it), and says so."""
    if v.kept or (v.rule_id or "").startswith("model."):
        _drop(v, rule_id)


def _headline_shaped(text: str, vocab: Vocabulary) -> bool:
    words = len(text.split())
    return 2 <= words <= 20 and not text.endswith((".", ":", ",", ";")) and not _is_dateish(text, vocab)
