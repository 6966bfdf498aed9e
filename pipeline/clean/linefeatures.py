"""Features of every line of a text dump, computed for the whole page at once (numpy arrays, one row a line).

The learned cleaner (pipeline/linemodel.py) reads these; the training script (bench/train_cleaner.py) computes
them with the same code, so a model and the features it was trained on cannot drift apart. Blank lines get no
row: they only shape their neighbours' features (`blank_before`, `blank_after`).

Three groups: the line itself (length, punctuation, stop words, shape, markers of comments, related-item
widgets, bylines and dates, the rules' hits, repetition, echo of the page's <title> line), its neighbours (the
same for the two lines above and below, densities over windows, prose mass before and after, a densest-region
search like the heuristic's), and, for the second stage, the first stage's probabilities around the line
(`context_features`). The marker vocabularies below are part of the model's definition, not user rules: a
model is trained on exactly these, so they change only with a retrained model (FEATURES_VERSION).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from ..linestats import LineStats, line_stats
from ..rules import line_key

FEATURES_VERSION = 2

_WORD = re.compile(r"\w+")
_TERMINAL = tuple('.!?。！？…"”’»)')
_TERMINAL_CPS = np.array([ord(c) for c in _TERMINAL], dtype=np.uint32)
_SENTENCE_BREAK = re.compile(r'[.!?。！？…।॥؟۔։።]["”’»)\]]*(?:\s|$)')
_BULLET_START = re.compile(r"^\s*(?:[•·▪◦‣∙●○■□►▶➤→*>»-]|\d{1,3}[.)])\s")
_SEPARATORS = re.compile(r"[|»›/•·]")
_URL = re.compile(r"https?://|www\.\w", re.IGNORECASE)
_NUMERIC_DATE = re.compile(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{2,4}\b")
_YEAR = re.compile(r"\b(?:19[7-9]\d|20\d\d)\b")
_CLOCK = re.compile(r"\d{1,2}:\d{2}\b")
# matched over the page's lines joined by newlines: at line starts, never across a line break
_BYLINE_M = re.compile(r"^(?:by|written by|posted by|author|von|par|por|di|door|av|af)\b(?:[^\S\n]|:)",
                       re.IGNORECASE | re.MULTILINE)
_NAME_M = re.compile(r"^[A-Z][\w.’'-]+(?:[^\S\n]+(?:[A-Z][\w.’'-]+|van|von|de|da|del|der|la|le|bin)){1,3}$",
                     re.MULTILINE)
_URLISH = re.compile(r"://|www\.", re.IGNORECASE)
# Word vocabularies, matched token by token (a set lookup each, in C): markers of a comment thread, of related-item
# and promotion widgets, of share bars and site chrome, of reported speech (the story), and month names (dates).
_MONTH_WORDS = frozenset(
    "january february march april may june july august september october november december jan feb mar apr jun jul "
    "aug sep sept oct nov dec".split())
_COMMENT_WORDS = frozenset(
    "reply replies wrote says commented comment comments permalink report upvote likes ago posted anonymous "
    "guest member joined quote".split())
_RELATED_WORDS = frozenset(
    "related recommended popular trending more read also latest stories picks sponsored next previous prev "
    "similar other see watch".split())
_SOCIAL_WORDS = frozenset(
    "share tweet facebook twitter linkedin whatsapp pinterest email print subscribe newsletter sign login log follow "
    "cookies cookie privacy terms copyright advertisement advertising instagram youtube rss menu search home contact "
    "skip toggle".split())
_SAID_WORDS = frozenset("said says told according added explained asked noted".split())
# the five lists above as one lookup: a token's bit k is set when it is in list k (one pass over a page's tokens)
_FIXED_VOCABS = (_MONTH_WORDS, _COMMENT_WORDS, _RELATED_WORDS, _SOCIAL_WORDS, _SAID_WORDS)
_VOCAB_BITS = MappingProxyType({word: sum(1 << k for k, vocab in enumerate(_FIXED_VOCABS) if word in vocab)
                                for word in frozenset().union(*_FIXED_VOCABS)})

PROSE_MIN_WORDS = 8
PROSE_MIN_STOP = 0.18


@dataclass(frozen=True)
class RuleHits:
    """Per worded line: which rule of each action matched (ids, None for none); from the cleaner's one pass."""

    drop: list[str | None]
    cut_after: list[str | None]
    cut_before: list[str | None]
    keep: list[str | None]

    def dropping(self, j: int) -> str | None:
        """The id of the rule that drops worded line `j` (a section marker, or a drop rule), or None."""
        return self.cut_after[j] or self.cut_before[j] or self.drop[j]


LINE_NAMES = (
    "log_words", "log_chars", "stop_density", "terminal", "ends_colon", "title_case", "digit_share", "punct_share",
    "upper_share", "url", "bullet", "indent", "sentences", "mean_word_len", "separators", "date", "year", "time",
    "byline", "name", "comment", "related", "social", "said", "rule_drop", "rule_cut_after", "rule_cut_before",
    "repeats", "seen_before", "title_echo", "first_line", "rel_pos", "log_index", "log_from_end", "blank_before",
    "blank_after", "prose",
)
PAGE_NAMES = ("log_lines", "log_page_words", "page_prose_share")
NEIGHBOUR_BASE = ("log_words", "stop_density", "terminal", "title_case", "rule_drop", "comment", "prose")
NEIGHBOUR_NAMES = tuple(f"{name}@{off:+d}" for off in (-2, -1, 1, 2) for name in NEIGHBOUR_BASE)
WINDOW_NAMES = ("prose_w3", "prose_w10", "words_w3", "words_w10", "comment_w5", "related_w5", "social_w5",
                "prose_words_before", "prose_words_after40", "prose_frac_before", "in_region", "region_dist",
                "after_cut", "before_cut", "lines_since_cut", "dist_date", "dist_byline",
                "indent_level", "indent_prose_share", "indent_vs_region", "indent_same_prev")
BASE_NAMES = LINE_NAMES + PAGE_NAMES + NEIGHBOUR_NAMES + WINDOW_NAMES
CONTEXT_NAMES = tuple(f"p@{off:+d}" for off in (-3, -2, -1, 0, 1, 2, 3)) + (
    "p_mean5", "p_mean10", "p_mean20", "p_max_before5", "p_max_after5", "p_words_before", "p_words_after",
    "p_frac_before", "p_in_region", "p_region_dist", "p_region_words", "p_page_mean", "p_rank",
)


def _shift(values: np.ndarray, offset: int, fill: float = 0.0) -> np.ndarray:
    """values[i + offset] for every i, `fill` past the ends."""
    out = np.full_like(values, fill)
    if offset > 0:
        out[:-offset] = values[offset:]
    elif offset < 0:
        out[-offset:] = values[:offset]
    else:
        out[:] = values
    return out


def _window_mean(values: np.ndarray, radius: int) -> np.ndarray:
    """Mean of values[i - radius .. i + radius] (clipped at the ends), by one cumulative sum."""
    n = len(values)
    csum = np.concatenate(([0.0], np.cumsum(values, dtype=np.float64)))
    idx = np.arange(n)
    lo = np.clip(idx - radius, 0, n)
    hi = np.clip(idx + radius + 1, 0, n)
    return (csum[hi] - csum[lo]) / np.maximum(hi - lo, 1)


def _window_sum_after(values: np.ndarray, span: int) -> np.ndarray:
    n = len(values)
    csum = np.concatenate(([0.0], np.cumsum(values, dtype=np.float64)))
    idx = np.arange(n)
    return csum[np.clip(idx + span + 1, 0, n)] - csum[idx + 1]


def _max_window(values: np.ndarray, span: int, before: bool) -> np.ndarray:
    out = np.zeros_like(values)
    for k in range(1, span + 1):
        out = np.maximum(out, _shift(values, -k if before else k))
    return out


def densest_region(weights: list[float]) -> tuple[int, int] | None:
    """Maximum-sum contiguous run of lines (Kadane): the densest stretch of prose; one pass."""
    best, span = 0.0, None
    current, start = 0.0, 0
    for i, w in enumerate(weights):
        if current <= 0:
            current, start = w, i
        else:
            current += w
        if current > best:
            best, span = current, (start, i)
    return span


def _region_features(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    n = len(weights)
    region = densest_region(weights.tolist())
    idx = np.arange(n)
    if region is None:
        return np.zeros(n), np.full(n, np.log1p(n)), 0.0
    start, end = region
    inside = ((idx >= start) & (idx <= end)).astype(np.float64)
    dist = np.where(idx < start, start - idx, np.where(idx > end, idx - end, 0))
    return inside, np.log1p(dist) * np.where(idx < start, -1.0, 1.0), float(weights[start:end + 1].sum())


def _matches_per_line(pattern: re.Pattern[str], text: str, starts: np.ndarray) -> np.ndarray:
    """Matches of `pattern` in the joined page counted per line (line starts `starts`): one regex pass a page."""
    positions = [m.start() for m in pattern.finditer(text)]
    counts = np.zeros(len(starts), dtype=np.float64)
    if positions:
        np.add.at(counts, np.searchsorted(starts, np.asarray(positions), side="right") - 1, 1.0)
    return counts


def _fixed_vocab_counts(stats: LineStats) -> np.ndarray:
    """`stats.count_in` of each of the _FIXED_VOCABS (columns, in order), from one lookup of each token."""
    codes = np.fromiter(map(_VOCAB_BITS.get, stats.tokens, itertools.repeat(0)), dtype=np.uint8,
                        count=len(stats.tokens))
    return np.column_stack([stats.per_line((codes >> k) & 1) for k in range(len(_FIXED_VOCABS))]).astype(np.float64)


def _distance_to(flags: np.ndarray) -> np.ndarray:
    """Lines to the nearest flagged line, log-scaled (a large number when none)."""
    n = len(flags)
    where = np.flatnonzero(flags)
    if not len(where):
        return np.full(n, np.log1p(1000.0))
    idx = np.arange(n)
    pos = np.searchsorted(where, idx)
    before = np.where(pos > 0, idx - where[np.clip(pos - 1, 0, len(where) - 1)], 10**6)
    after = np.where(pos < len(where), where[np.clip(pos, 0, len(where) - 1)] - idx, 10**6)
    return np.log1p(np.minimum(before, after))


_TABLE_SIZE = 0x3000
_K_DIGIT, _K_PUNCT, _K_LETTER, _K_UPPER, _K_FIRST, _K_CAP, _K_CJK, _K_COPYRIGHT = range(8)


def _kind_table() -> tuple[np.ndarray, np.ndarray]:
    """Per code point below _TABLE_SIZE: (word character, digit, punctuation, letter, upper case)."""
    table = np.zeros((_TABLE_SIZE, 5), dtype=bool)
    for cp in range(_TABLE_SIZE):
        ch = chr(cp)
        word = bool(_WORD.match(ch))
        table[cp] = (word, ch.isdigit(), not word and not ch.isspace(), ch.isalpha(), ch.isupper())
    return table[:, 0], table[:, 1:]


_IS_WORD, _KINDS = _kind_table()


def _char_kinds(text: str) -> tuple[np.ndarray, np.ndarray]:
    """One row per character of `text`: digit, punctuation, letter, upper case, first letter of a word, capitalised
    first letter, CJK, ©; from the code points in one numpy pass (above U+3000 everything is a word letter).
    Returns the rows and the code points."""
    cp = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    low = np.minimum(cp, _TABLE_SIZE - 1)
    high = cp >= _TABLE_SIZE
    kinds = _KINDS[low] & ~high[:, None]
    kinds[:, 2] |= high  # letter
    word = _IS_WORD[low] | high
    prev_word = np.concatenate(([False], word[:-1]))
    first = kinds[:, 2] & ~prev_word
    cjk = ((cp >= 0x3040) & (cp <= 0x30FF)) | ((cp >= 0x3400) & (cp <= 0x9FFF)) | ((cp >= 0xAC00) & (cp <= 0xD7AF))
    return np.column_stack((kinds, first, first & kinds[:, 3], cjk, cp == 0xA9)).astype(np.int32), cp


def _indent(line: str) -> int:
    """Leading white space of a raw line (a tab counts four): renderers that indent (inscriptis, lynx, w3m)
    print the document's nesting this way."""
    body = line.lstrip()
    head = len(line) - len(body)
    return head + 3 * line.count("\t", 0, head)


def line_matrix(raw_lines: list[str], rows: list[int], trimmed: list[str], stopwords: frozenset[str],
                hits: RuleHits, keys: list[str] | None = None, stats: LineStats | None = None) -> np.ndarray:
    """The base features (BASE_NAMES) of the worded lines `rows` of a page: float32, one row per line.

    `raw_lines` are the page's lines as split, `trimmed` the worded lines' texts (same order as `rows`), `keys`
    their rules.line_key and `stats` their linestats.line_stats (both computed here when not given: the cleaner
    has them from its rule screen; the tokens are the same `\\w+` runs of the lower-cased lines).
    """
    n = len(rows)
    if n == 0:
        return np.zeros((0, len(BASE_NAMES)), dtype=np.float32)
    if stats is None:
        stats = line_stats(trimmed)
    n_tok = stats.n_tokens.astype(np.float64)
    words = n_tok.copy()
    joined = "\n".join(trimmed)
    lengths = np.fromiter(map(len, trimmed), dtype=np.int64, count=n)
    chars = lengths.astype(np.float64)
    starts = np.concatenate(([0], np.cumsum(lengths + 1)[:-1]))  # each line and its "\n" in `joined`
    kinds, cp = _char_kinds(joined)
    last = cp[starts + lengths - 1]  # every worded line has a last character
    counts = np.add.reduceat(kinds, starts, axis=0).astype(np.float64)  # every line has a character: reduceat is safe
    cjk = counts[:, _K_CJK]
    words += np.where(cjk > 4, cjk // 2, 0)
    stops = stats.count_in(stopwords).astype(np.float64)
    stop_density = np.where(n_tok > 0, stops / np.maximum(n_tok, 1), 0.0)
    terminal = np.isin(last, _TERMINAL_CPS).astype(np.float64)
    ends_colon = (last == ord(":")).astype(np.float64)
    firsts, caps = counts[:, _K_FIRST], counts[:, _K_CAP]
    title_case = np.where(firsts > 0, caps / np.maximum(firsts, 1), 0.0)
    digits, punct, letters, upper = counts[:, _K_DIGIT], counts[:, _K_PUNCT], counts[:, _K_LETTER], counts[:, _K_UPPER]
    safe_chars = np.maximum(chars, 1)
    url = np.minimum(_matches_per_line(_URLISH, joined, starts), 1)
    bullet = np.fromiter((bool(_BULLET_START.match(raw_lines[r])) for r in rows), dtype=np.float64, count=n)
    indent = np.fromiter((raw_lines[r][:1].isspace() for r in rows), dtype=np.float64, count=n)
    sentences = _matches_per_line(_SENTENCE_BREAK, joined, starts)
    separators = _matches_per_line(_SEPARATORS, joined, starts)
    months, comment, related, social_words, said = _fixed_vocab_counts(stats).T
    year = np.minimum(_matches_per_line(_YEAR, joined, starts), 1)
    date = np.minimum(((months > 0) & (year > 0) & (digits >= 5)) + _matches_per_line(
        _NUMERIC_DATE, joined, starts), 1)
    time_ = np.minimum(_matches_per_line(_CLOCK, joined, starts), 1)
    byline = np.minimum(_matches_per_line(_BYLINE_M, joined, starts), 1) * (words <= 12)
    name = np.minimum(_matches_per_line(_NAME_M, joined, starts), 1) * (chars < 60)
    social = social_words + (counts[:, _K_COPYRIGHT] > 0)
    rule_drop = np.fromiter((h is not None for h in hits.drop), dtype=np.float64, count=n)
    rule_cut_after = np.fromiter((h is not None for h in hits.cut_after), dtype=np.float64, count=n)
    rule_cut_before = np.fromiter((h is not None for h in hits.cut_before), dtype=np.float64, count=n)
    if keys is None:
        keys = list(map(line_key, trimmed))
    key_counts: dict[str, int] = {}
    for k in keys:
        key_counts[k] = key_counts.get(k, 0) + 1
    repeats = np.log(np.fromiter((key_counts[k] for k in keys), dtype=np.float64, count=n))
    seen: set[str] = set()
    seen_before = np.zeros(n)
    for i, k in enumerate(keys):
        if k in seen:
            seen_before[i] = 1.0
        seen.add(k)
    first_words = frozenset(stats.tokens[:int(stats.n_tokens[0])])
    title_echo = stats.count_in(first_words) / np.maximum(n_tok, 1)
    title_echo[0] = 0.0
    idx = np.arange(n, dtype=np.float64)
    first_line = (idx == 0).astype(np.float64)
    rows_arr = np.asarray(rows)
    raw_blank = np.ones(len(raw_lines), dtype=bool)  # the worded lines are exactly `rows`
    raw_blank[rows_arr] = False
    blank_before = np.where(rows_arr > 0, raw_blank[np.maximum(rows_arr - 1, 0)], True).astype(np.float64)
    blank_after = np.where(rows_arr + 1 < len(raw_lines), raw_blank[np.minimum(rows_arr + 1, len(raw_lines) - 1)],
                           True).astype(np.float64)
    prose = ((words >= PROSE_MIN_WORDS) & ((stop_density >= PROSE_MIN_STOP) | (not stopwords))
             & (url == 0)).astype(np.float64)
    log_words = np.log1p(words)
    line_cols = [
        log_words, np.log1p(chars), stop_density, terminal, ends_colon, title_case, digits / safe_chars,
        punct / safe_chars, upper / np.maximum(letters, 1), url, bullet, indent, sentences,
        chars / np.maximum(words, 1), separators, date, year, time_, byline, name, comment, related, social, said,
        rule_drop, rule_cut_after, rule_cut_before, repeats, seen_before, title_echo, first_line,
        idx / max(n - 1, 1), np.log1p(idx), np.log1p(n - 1 - idx), blank_before, blank_after, prose,
    ]
    page_words = float(words.sum())
    page_cols = [np.full(n, np.log1p(n)), np.full(n, np.log1p(page_words)), np.full(n, prose.mean())]
    base = dict(zip(LINE_NAMES, line_cols, strict=True))
    neighbour_cols = [_shift(base[name], off) for off in (-2, -1, 1, 2) for name in NEIGHBOUR_BASE]
    prose_words = prose * np.minimum(words, 40)
    csum = np.cumsum(prose_words)
    total = max(float(csum[-1]), 1.0)
    before = csum - prose_words
    weights = np.where(prose > 0, np.minimum(words, 40), np.where(rule_drop + rule_cut_after + rule_cut_before > 0,
                                                                   -10.0, -1.5))
    in_region, region_dist, _ = _region_features(weights)
    cut_at = np.flatnonzero(rule_cut_after)
    after_cut = np.zeros(n)
    lines_since = np.full(n, np.log1p(1000.0))
    if len(cut_at):
        after_cut[cut_at[0] + 1:] = 1.0
        last_cut = np.maximum.accumulate(np.where(rule_cut_after > 0, idx, -1))
        lines_since = np.where(last_cut >= 0, np.log1p(idx - last_cut), lines_since)
    cut_b = np.flatnonzero(rule_cut_before)
    before_cut = np.zeros(n)
    if len(cut_b):
        before_cut[:cut_b[-1]] = 1.0
    lead = np.fromiter((_indent(raw_lines[r]) for r in rows), dtype=np.float64, count=n)
    _, level = np.unique(lead, return_inverse=True)
    level_mass = np.bincount(level, weights=prose_words)
    indent_share = level_mass[level] / max(float(level_mass.sum()), 1.0)
    region_lead = float(np.median(lead[in_region > 0])) if in_region.any() else 0.0
    indent_delta = lead - region_lead
    window_cols = [
        _window_mean(prose, 3), _window_mean(prose, 10), _window_mean(log_words, 3), _window_mean(log_words, 10),
        _window_mean(np.minimum(comment, 3), 5), _window_mean(related, 5),
        _window_mean(social, 5), np.log1p(before), np.log1p(_window_sum_after(prose_words, 40)), before / total,
        in_region, region_dist, after_cut, before_cut, lines_since, _distance_to(date), _distance_to(byline + name),
        np.log1p(lead), indent_share, np.sign(indent_delta) * np.log1p(np.abs(indent_delta)),
        (lead == _shift(lead, -1, fill=-1)).astype(np.float64),
    ]
    columns = line_cols + page_cols + neighbour_cols + window_cols
    return np.column_stack(columns).astype(np.float32)


def context_matrix(p: np.ndarray, log_words: np.ndarray) -> np.ndarray:
    """Second-stage features (CONTEXT_NAMES) from the first stage's body probabilities `p` of a page's lines."""
    n = len(p)
    if n == 0:
        return np.zeros((0, len(CONTEXT_NAMES)), dtype=np.float32)
    p = p.astype(np.float64)
    words = np.expm1(log_words.astype(np.float64))
    shifted = [_shift(p, off) for off in (-3, -2, -1, 0, 1, 2, 3)]
    likely_words = p * np.minimum(words, 40)
    csum = np.cumsum(likely_words)
    before = csum - likely_words
    after = csum[-1] - csum
    total = max(float(csum[-1]), 1.0)
    in_region, region_dist, region_words = _region_features((p - 0.5) * np.maximum(np.minimum(words, 40), 1.0))
    order = np.argsort(np.argsort(-p, kind="stable"), kind="stable")
    cols = shifted + [
        _window_mean(p, 5), _window_mean(p, 10), _window_mean(p, 20), _max_window(p, 5, True),
        _max_window(p, 5, False), np.log1p(before), np.log1p(after), before / total, in_region, region_dist,
        np.full(n, np.log1p(max(region_words, 0))),
        np.full(n, p.mean()), order / max(n - 1, 1),
    ]
    return np.column_stack(cols).astype(np.float32)
