"""What the title and author rankers read (`header_model`): a page's candidate title and author lines, the values
they would give (a headline, a byline's names) and their features, computed the same way by a run and by
bench/train_cleaner.py."""

from __future__ import annotations

import bisect
import itertools
import re
from collections import Counter

import numpy as np

from ..document import LineVerdict
from ..rules import RuleSet
from ..vocabulary import Vocabulary
from .header import (
    MAX_TITLE_WORDS,
    _headline_of,
    _is_dateish,
    _match_meta,
    author_names,
    strip_value,
    without_list_marker,
)

_TOKEN = re.compile(r"\w+")
TITLE_CANDIDATES = 15  # the likeliest title lines the title ranker reorders
_SEPARATOR = re.compile(r"[»›>|/·•]| - | – | — ")  # breadcrumb and `Title | Site` separators
TITLE_FEATURES = (
    "p_title", "rank", "p_over_best", "p_other", "p_author", "p_date", "rule_dropped", "kept", "first_line",
    "position", "line", "from_first_kept", "words", "chars", "ends_period", "ends_colon", "question",
    "separators", "echo_first_line", "ends_another", "ends_with_another", "repeats", "capitalised",
    "p_title_above", "p_title_below", "kept_below", "p_author_below", "p_date_below", "p_date_above",
    "words_below", "kept_words_below", "body_overlap", "from_article_start", "list_item", "list_neighbours",
    "kept_words_below20", "article_overlap", "position_among", "candidates_to_article", "inside_lines", "p_body",
    "p_body_below", "p_body_above", "from_author", "p_author_top",
)
AUTHOR_RANKED = 10  # the likeliest author lines the author ranker reads, with the name under a lone `By` label
AUTHOR_FEATURES = (
    "p_author", "p_author_name_line", "rank", "p_over_best", "p_title", "p_date", "p_other", "after_label",
    "rule_dropped", "kept", "by_prefix", "author_pattern", "words", "name_words", "name_share", "name_capitalised",
    "several", "from_title", "from_first_kept", "position", "p_date_near", "p_title_near", "name_in_lines",
    "line_repeats", "ends_period", "chars", "lowercase_elsewhere", "stop_share", "list_item", "by_inside",
)
BY_INSIDE_MAX_WORDS = 12  # a short line with a byline word inside ("May 3, 2025 by Jane Doe") is an author candidate
ARTICLE_WORDS = 150  # the words of the story's opening that `article_overlap` compares a candidate with
CONTAINED_MIN_CHARS = 9  # a shorter candidate is inside too many lines by chance for `inside_lines` to say anything
ARTICLE_GAP = 2  # dropped lines a run of kept lines may hold and still be one article (`_article_start`)
_NEAR_LINES = 3  # the neighbours either side whose list markers count (`list_neighbours`)


def title_candidates(verdicts: list[LineVerdict], probs: np.ndarray, body: np.ndarray, rows: list[int],
                     vocab: Vocabulary) -> tuple[list[int], list[str | None], np.ndarray]:
    """The TITLE_CANDIDATES likeliest title lines (indexes into `rows`), their headlines (`_title_value`: None for
    a sentence) and their TITLE_FEATURES, for the title ranker: the model's probabilities of the line and its
    neighbours, where it sits (above the first kept line, the <title> line), its shape, a rule that dropped it,
    whether it repeats the <title> line's words and whether another candidate ends with it (a breadcrumb's last item
    repeats the headline below it); and what ties it to the story, which tells the headline where the dump has no
    <title> line: the share of its words in the story's opening, the body model's probabilities there and around
    (`body`: P(body) a row), how many candidates lie between it and the story, how many longer lines repeat it (a
    breadcrumb, a share link, the <title>), where it sits from the likeliest byline."""
    texts = [verdicts[r].text for r in rows]
    n = len(texts)
    p = probs[:, 1]
    order = np.argsort(-p, kind="stable")[:TITLE_CANDIDATES].tolist()
    kept = [verdicts[r].kept for r in rows]
    first_kept = next((j for j, k in enumerate(kept) if k), n)
    folded = [t.casefold() for t in texts]
    head = set(_TOKEN.findall(folded[0]))
    repeats = Counter(folded)
    best = max(float(p[order[0]]), 1e-6)
    start = _article_start(texts, kept)
    body_tokens = Counter(_TOKEN.findall("\n".join(low for low, k in zip(folded, kept, strict=True) if k)))
    opening: set[str] = set()
    read = 0
    for j in range(start, n):
        if kept[j]:
            line_tokens = _TOKEN.findall(folded[j])
            opening.update(line_tokens)
            read += len(line_tokens)
            if read > ARTICLE_WORDS:
                break
    by_position = sorted(order)
    folded_page, folded_starts = _joined(folded)
    byline = int(np.argmax(probs[:, 2]))
    has_byline = probs[byline, 2] > 0  # else no line is a likely byline: `from_author` says "far" (30)
    marked = {k: without_list_marker(texts[k]) != texts[k]
              for j in order for k in range(max(j - _NEAR_LINES, 0), min(j + _NEAR_LINES + 1, n))}
    out = np.zeros((len(order), len(TITLE_FEATURES)))
    for rank, j in enumerate(order):
        text, low = texts[j], folded[j]
        words = text.split()
        found = _TOKEN.findall(low)
        tokens = set(found)
        rule = verdicts[rows[j]].rule_id or ""
        others = [folded[k] for k in order if folded[k] != low]
        below = range(j + 1, min(j + 6, n))
        own = Counter(found) if kept[j] else Counter()
        out[rank] = (
            p[j], rank, p[j] / best, probs[j, 0], probs[j, 2], probs[j, 3],
            bool(rule) and not rule.startswith(("model.", "meta.")), kept[j], j == 0, j / n, min(j, 300),
            min(max(j - first_kept, -50), 50), len(words), len(text), text.endswith("."), text.endswith(":"),
            "?" in text, len(_SEPARATOR.findall(text)), len(tokens & head) / max(len(tokens), len(head), 1),
            any(o.endswith(low) for o in others), any(low.endswith(o) and len(o) > 10 for o in others),
            repeats[low] - 1, sum(w[:1].isupper() for w in words) / max(len(words), 1),
            p[j - 1] if j else 0.0, p[j + 1] if j + 1 < n else 0.0, j + 1 < n and kept[j + 1],
            probs[j + 1:j + 5, 2].max(initial=0.0), probs[j + 1:j + 5, 3].max(initial=0.0),
            probs[max(j - 4, 0):j, 3].max(initial=0.0), len(texts[j + 1].split()) if j + 1 < n else 0,
            sum(len(texts[k].split()) for k in below if kept[k]),
            sum(body_tokens[t] > own[t] for t in tokens) / max(len(tokens), 1), min(max(j - start, -50), 50),
            marked[j], sum(marked[k] for k in range(max(j - _NEAR_LINES, 0), min(j + _NEAR_LINES + 1, n)) if k != j),
            sum(len(texts[k].split()) for k in range(j + 1, min(j + 21, n)) if kept[k]),
            len(tokens & opening) / max(len(tokens), 1), by_position.index(j), sum(j < k < start for k in order),
            _lines_holding(folded_page, folded_starts, low) - repeats[low] if len(low) >= CONTAINED_MIN_CHARS else 0,
            body[j], body[j + 1:j + 6].max(initial=0.0), body[max(j - 5, 0):j].max(initial=0.0),
            min(max(byline - j, -30), 30) if has_byline else 30, probs[byline, 2],
        )
    return order, [_title_value(texts[j], j == 0, vocab) for j in order], out


def _article_start(texts: list[str], kept: list[bool]) -> int:
    """The first line of the run of kept lines with the most words (a run may hold ARTICLE_GAP dropped lines in a
    row): where the story starts, which a kept menu item above it does not move."""
    best_start, best_words = len(texts), 0
    start, words, gap = None, 0, 0
    for j, text in enumerate(texts):
        if kept[j]:
            if start is None:
                start, words = j, 0
            words, gap = words + len(text.split()), 0
            if words > best_words:
                best_start, best_words = start, words
        elif start is not None:
            gap += 1
            if gap > ARTICLE_GAP:
                start = None
    return best_start


def author_candidates(verdicts: list[LineVerdict], probs: np.ndarray, rows: list[int], rules: RuleSet,
                      stopwords: frozenset[str] = frozenset()) -> tuple[list[int], list[str], np.ndarray]:
    """The AUTHOR_RANKED likeliest author lines that give a name (`_author_value`; a lone `By`/`Author:` label gives
    the name on the line under it, and every such label on the page is a candidate too, as is every short line with
    a byline word inside: "May 3, 2025 by Jane Doe", its name read from the word on), for the author ranker:
    the line they name the author on, the names, and their AUTHOR_FEATURES (the model's probabilities there and
    around, byline shape, where the line sits from the likeliest title line and the first kept line, the name's
    shape, how often the page repeats it, whether its words are the page's ordinary words: printed in lower case
    elsewhere, or in its stop list `stopwords`, as in "Share This Post")."""
    vocab = rules.vocab
    texts = [verdicts[r].text for r in rows]
    n = len(texts)
    p = probs[:, 2]
    # a line the metadata model gave no chance (longer than it reads, or below the article's end) names no author:
    # on a short page the likeliest ten reach the story's dateline ("HONG KONG, April 22 — ...")
    top = [j for j in np.argsort(-p, kind="stable")[:AUTHOR_RANKED].tolist() if p[j] > 0]
    bare_by = vocab.bare_by
    pairs = [(j, j + 1, True) if bare_by.match(texts[j]) and j + 1 < n else (j, j, False) for j in top]
    pairs += [(j, j + 1, True) for j in range(n - 1) if bare_by.match(texts[j]) and (j, j + 1, True) not in pairs]
    # and every short line with a byline word inside it or first, however unlikely the model found it: the name
    # after the word (the model reads a dated byline as a date line, a list item as a menu)
    inside: dict[int, int] = {}  # such a line's name is read from the byline word on
    listed = {j for j, _v, _label in pairs}
    joined, starts = _joined(texts)  # one search over the page: the pattern never crosses a line
    for found in vocab.by_inside.finditer(joined):
        j = bisect.bisect_right(starts, found.start()) - 1
        if j in inside or p[j] <= 0 or len(texts[j].split()) > BY_INSIDE_MAX_WORDS:
            continue
        inside[j] = found.start() - starts[j]
    for j in sorted(inside):
        if j not in listed:
            pairs.append((j, j, False))
    kept = [verdicts[r].kept for r in rows]
    first_kept = next((j for j, k in enumerate(kept) if k), n)
    title_line = int(np.argmax(probs[:, 1]))
    folded = [t.casefold() for t in texts]
    repeats = Counter(folded)
    best = max(float(p[top[0]]), 1e-6) if top else 1e-6
    page_tokens = set(_TOKEN.findall(joined))
    folded_page, folded_starts = _joined(folded)  # casefold() may change a line's length: its own line starts
    lines, names, out = [], [], []
    for rank, (j, v, after_label) in enumerate(pairs):
        text = texts[v]
        at = inside.get(v) if v == j else None  # a label's name line is read whole
        name = _author_value(text if at is None else text[at:], rules)
        if not name:
            continue
        words, name_words = text.split(), name.replace(";", " ").split()
        printed = _TOKEN.findall(name)
        name_tokens = [t.casefold() for t in printed]
        ordinary = sum(t in page_tokens and t not in printed for t in name_tokens)
        rule = verdicts[rows[j]].rule_id or ""
        low = name.casefold()
        out.append((
            p[j], p[v], min(rank, AUTHOR_RANKED), p[j] / best, probs[j, 1], probs[j, 3], probs[j, 0], after_label,
            bool(rule) and not rule.startswith(("model.", "meta.")), kept[j], bool(vocab.by_prefix.match(text)),
            _match_meta(rules, "author", text) is not None, len(words), len(name_words),
            len(name_words) / max(len(words), 1), sum(w[:1].isupper() for w in name_words) / max(len(name_words), 1),
            "," in name or ";" in name or " and " in name, min(max(j - title_line, -30), 30),
            min(max(j - first_kept, -30), 30), j / n, probs[max(j - 3, 0):j + 4, 3].max(),
            probs[max(j - 3, 0):j + 4, 1].max(), _lines_holding(folded_page, folded_starts, low), repeats[folded[v]],
            text.endswith("."), len(text), ordinary / max(len(name_tokens), 1),
            sum(t in stopwords for t in name_tokens) / max(len(name_tokens), 1), without_list_marker(text) != text,
            at is not None,
        ))
        lines.append(v)
        names.append(name)
    return lines, names, np.array(out, dtype=np.float64).reshape(len(out), len(AUTHOR_FEATURES))


def _joined(lines: list[str]) -> tuple[str, list[int]]:
    """`lines` joined by "\\n" into one string, for one search over the page, and where each line starts in it."""
    return "\n".join(lines), list(itertools.accumulate((len(t) + 1 for t in lines[:-1]), initial=0))


def _lines_holding(joined: str, starts: list[int], needle: str) -> int:
    """How many of the lines joined by "\\n" into `joined` (beginning at `starts`) contain `needle` (no "\\n" in
    it): `sum(needle in line for line in lines)`, by `str.find` over the page, not a test a line."""
    count, at = 0, joined.find(needle)
    while at >= 0:
        count += 1
        line = bisect.bisect_right(starts, at)  # the next line's index: its start is where the search goes on
        if line >= len(starts):
            break
        at = joined.find(needle, starts[line])
    return count


def _title_value(text: str, first_line: bool, vocab: Vocabulary) -> str | None:
    """The headline of a title line: on the page's first line (its <title>), without the `| Site` part."""
    if len(text.split()) > MAX_TITLE_WORDS or (text.endswith(".") and len(text.split()) > 15):
        return None  # a sentence, not a headline
    return (_headline_of(text, vocab) if first_line else without_list_marker(text)) or None


def _author_value(text: str, rules: RuleSet) -> str | None:
    text = without_list_marker(text)  # a byline or name printed as a list item ("* by Jane Doe", "* Jane Doe")
    found = _match_meta(rules, "author", text) if len(text.split()) <= 12 else None
    vocab = rules.vocab
    value = found[0] if found else strip_value(vocab.after_names.sub("", vocab.by_prefix.sub("", text)))
    return _byline_names(value, vocab)


def _byline_names(value: str, vocab: Vocabulary) -> str | None:
    """A byline's authors, `; `-joined: the names before the first comma, and after it more names ("Chen Zhao, Daryl
    Fairweather") and the credentials or role a name carries ("Dylan Bailey, MS, RD", kept with its name), up to
    what no longer reads as one (a date, a number, a lower-case word: "Jane Doe, May 3, 2025", "Jane Doe, staff
    writer"). None when the first part is no name (a date, a number, ©, more than 8 words)."""
    parts = [part.strip() for part in value.split(",")]
    first = parts[0]
    if not first or len(first.split()) > 8 or _is_dateish(value, vocab) or "©" in first \
            or any(c.isdigit() for c in first):
        return None
    persons = author_names(first, vocab) or [""]  # as before: a first part of joiners alone ("and") has no name
    words = len(first.split())
    for k in range(1, len(parts)):
        part = vocab.joiner_start.sub("", parts[k])  # "…, and Natalie Nguyen"
        words += len(part.split())
        if not part or not part[0].isupper() or words > 3 * 8 or "©" in part or any(c.isdigit() for c in part) \
                or _is_dateish(", ".join(parts[k:]), vocab):
            break
        if vocab.name.match(part) or part != parts[k]:  # another person
            persons.extend(author_names(part, vocab))
        else:  # a credential or role of the name before it
            persons[-1] = f"{persons[-1]}, {part}"
    return "; ".join(persons)
