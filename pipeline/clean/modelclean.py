"""The text-dump cleaner with the learned line model (`[clean] method = "model"`; the heuristic is the default).

One pass of the rules over the page's worded lines (their hits are features, and they overrule the model),
one feature matrix for the page (linefeatures), the model's probabilities, then the verdicts:

- a line a user `drop` (or `cut_after`/`cut_before` marker) rule matches is dropped with the rule's id, whatever
  the model says; a line a `keep` rule matches is kept (a drop rule matching the same line still wins);
- a section marker inside the article cuts what follows it (`cut_after`) or what precedes it (`cut_before`), as
  in the heuristic cleaner, once enough article is on the right side of it; a `cut_after` marker above the middle
  of the kept text cuts only where a comment-thread word (reply, says, ago, …: ordinary prose holds some too) is
  printed in the 60 lines below it or where little confident article text follows it;
- otherwise a line is kept when its body probability reaches the model's threshold for it: a model trained with
  the heuristic's vote stores two, a lower one for the lines the heuristic cleaner keeps and one for the lines it
  drops (the two cleaners err on different lines: docs/model.md, "The heuristic's vote"); `[clean] threshold`
  sets one threshold for every line instead, and the heuristic does not run;
  a dropped line records `model.<class>` (boilerplate, title, author or date) and its probability;
- a sentence or heading the page prints twice is kept once (`signal.repeated_line`).

`prepare` is shared with bench/train_cleaner.py, so training sees exactly the features a run computes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ..config import CleanConfig
from ..document import LineVerdict
from ..rules import RuleSet
from .linefeatures import BASE_NAMES, RuleHits, line_matrix
from .linemodel import META_CLASSES, LineModel, LineScores
from .textclean import SIG_CUT_AFTER, SIG_CUT_BEFORE, SIG_DUPLICATE, ScreenedLines, clean_lines, screen_lines

_SENTENCE_END = tuple('.!?。！？…"”»')
# A `cut_after` marker above EARLY_CUT_SHARE of the kept words cuts only where a comment-thread word (reply, wrote,
# comments, ago, …) is printed in the THREAD_WINDOW lines below it, or where the confident body below it (lines
# the model gives CONFIDENT_BODY or more) has fewer words than the kept text above it (docs/model.md, "Early section
# cuts": chosen on the out-of-fold pages of every source, and no source lost by it). "Enough article above" a marker
# counts the kept lines the model gives LIKELY_BODY or more (a sidebar kept at P 0.5 above the story is not article)
EARLY_CUT_SHARE, THREAD_WINDOW, CONFIDENT_BODY, LIKELY_BODY = 0.5, 60, 0.9, 0.6
_COMMENT = BASE_NAMES.index("comment")
BODY, BOILERPLATE, BLANK = "body", "boilerplate", "blank"


@dataclass(frozen=True)
class PreparedPage:
    screen: ScreenedLines  # the lines, their keys and statistics, as the heuristic cleaner reads them too
    hits: RuleHits
    features: np.ndarray  # linefeatures.line_matrix of the rows

    @property
    def raw_lines(self) -> list[str]:
        return self.screen.raw_lines

    @property
    def rows(self) -> list[int]:  # indexes of the worded (non-blank) lines
        return self.screen.rows

    @property
    def trimmed(self) -> list[str]:  # their trimmed texts
        return self.screen.worded

    @property
    def keys(self) -> list[str]:  # their rules.line_key
        return self.screen.keys


def prepare(raw_lines: list[str], rules: RuleSet, stopwords: frozenset[str],
            site_keys: frozenset[str] = frozenset()) -> PreparedPage:
    screen = screen_lines(raw_lines, rules, site_keys)
    rows, trimmed, keys, stats = screen.rows, screen.worded, screen.keys, screen.stats
    drop: list[str | None] = [None] * len(rows)
    cut_after: list[str | None] = [None] * len(rows)
    cut_before: list[str | None] = [None] * len(rows)
    keep: list[str | None] = [None] * len(rows)
    for j, screened in enumerate(screen.screened):
        if not screened:
            continue
        text, key = trimmed[j], keys[j]
        cut_after[j] = rules.match(text, key, "cut_after", site_keys)
        if cut_after[j] is None:
            cut_before[j] = rules.match(text, key, "cut_before", site_keys)
        if cut_after[j] is None and cut_before[j] is None:
            drop[j] = rules.match(text, key, "drop", site_keys)
        keep[j] = rules.match(text, key, "keep", site_keys)
    hits = RuleHits(drop, cut_after, cut_before, keep)
    return PreparedPage(screen, hits, line_matrix(raw_lines, rows, trimmed, stopwords, hits, keys, stats))


@dataclass
class ModelCleanResult:
    verdicts: list[LineVerdict]
    scores: LineScores
    rows: list[int]
    article_end: int  # worded lines (of `rows`) before a `cut_after` section marker that ended the article
    stopwords: frozenset[str] = frozenset()  # the page's stop list, as the features read it (the header reads it too)


def heuristic_votes(page: PreparedPage, rules: RuleSet, stopwords: frozenset[str], config: CleanConfig,
                    site_keys: frozenset[str] = frozenset()) -> np.ndarray:
    """Whether the heuristic cleaner keeps each worded line of the page."""
    verdicts = clean_lines("\n".join(page.raw_lines), rules, stopwords, config, site_keys, page.screen).verdicts
    return np.fromiter((verdicts[i].kept for i in page.rows), dtype=bool, count=len(page.rows))


def line_thresholds(model: LineModel, config: CleanConfig, votes_of) -> np.ndarray | float:
    """The body threshold of each worded line: `[clean] threshold` for all when set; else the model's, lower where
    the heuristic keeps the line when the model was trained with its vote (`votes_of()` runs the heuristic)."""
    if config.threshold:
        return config.threshold
    if model.threshold_kept >= model.threshold:
        return model.threshold
    return np.where(votes_of(), model.threshold_kept, model.threshold)


def _classes(body: np.ndarray, meta: np.ndarray, threshold: np.ndarray | float) -> tuple[list[str], list[float]]:
    """Each line's label and the probability behind it: body, or the likeliest of title/author/date (from 0.5),
    or boilerplate."""
    n = len(body)
    if n == 0:
        return [], []
    best = np.argmax(meta[:, 1:], axis=1) + 1
    best_p = meta[np.arange(n), best]
    is_body = body >= threshold
    is_meta = ~is_body & (best_p >= 0.5)
    labels = np.where(is_body, BODY, np.where(is_meta, np.array(META_CLASSES)[best], BOILERPLATE))
    return labels.tolist(), np.where(is_body, body, np.where(is_meta, best_p, 1.0 - body)).tolist()


def clean_with_model(text: str, rules: RuleSet, stopwords: frozenset[str], config: CleanConfig, model: LineModel,
                     site_keys: frozenset[str] = frozenset()) -> ModelCleanResult:
    page = prepare(text.split("\n"), rules, stopwords, site_keys)
    scores = model.scores(page.features)
    threshold = line_thresholds(model, config, lambda: heuristic_votes(page, rules, stopwords, config, site_keys))
    hits = page.hits
    n = len(page.rows)
    keep = (scores.body >= threshold).tolist()
    rule_of: list[str | None] = [None] * n
    for j in range(n):
        hit = hits.dropping(j)
        if hit is not None:
            keep[j], rule_of[j] = False, hit
        elif hits.keep[j] is not None:
            keep[j] = True
    words = [len(t.split()) for t in page.trimmed]
    cut_at = apply_cuts(section_markers(page), keep, rule_of, words, scores.body)
    by_row = dict(zip(page.rows, range(n), strict=True))
    labels, probabilities = _classes(scores.body, scores.meta, threshold)
    verdicts: list[LineVerdict] = []
    seen: set[str] = set()
    for i, line in enumerate(page.raw_lines):
        j = by_row.get(i)
        if j is None:
            verdicts.append(LineVerdict(i, line.strip(), False, None, BLANK))
            continue
        label, probability = labels[j], probabilities[j]
        text_j = page.trimmed[j]
        if rule_of[j] is not None:
            verdicts.append(LineVerdict(i, text_j, False, rule_of[j], label, probability))
            continue
        if not keep[j]:
            model_id = f"model.{label if label != BODY else BOILERPLATE}"
            verdicts.append(LineVerdict(i, text_j, False, model_id, label, probability))
            continue
        if words[j] >= config.repeat_min_words:
            key = page.keys[j]
            if key in seen:
                verdicts.append(LineVerdict(i, text_j, False, SIG_DUPLICATE, label, probability))
                continue
            seen.add(key)
        verdicts.append(LineVerdict(i, text_j, True, hits.keep[j], label, probability))
    return ModelCleanResult(verdicts, scores, page.rows, n if cut_at is None else cut_at, stopwords)


@dataclass(frozen=True)
class SectionMarkers:
    """Of a page's worded lines: the `cut_after` and `cut_before` markers that stand alone (a marker ending in a
    colon, or glued to an unfinished sentence above it, is a link inside the text), the lines a `keep` rule
    forces in (a cut spares them), and below which lines a comment thread may follow (a comment-thread word in
    the THREAD_WINDOW lines below; none given: everywhere)."""

    after: list[bool]
    before: list[bool]
    forced: list[bool]
    thread: list[bool] | None = None


def section_markers(page: PreparedPage) -> SectionMarkers:
    def standalone(j: int) -> bool:
        text = page.trimmed[j]
        glued = j > 0 and page.rows[j - 1] == page.rows[j] - 1 and not page.trimmed[j - 1].endswith(_SENTENCE_END)
        return not text.endswith(":") and not glued

    hits = page.hits
    n = len(page.rows)
    thread = None
    if n:
        ahead = np.concatenate(([0.0], np.cumsum(page.features[:, _COMMENT])))  # ahead[j]: comment words above j
        below = np.minimum(np.arange(n) + 1 + THREAD_WINDOW, n)
        thread = (ahead[below] - ahead[np.arange(n) + 1] > 0).tolist()
    return SectionMarkers([hits.cut_after[j] is not None and standalone(j) for j in range(n)],
                          [hits.cut_before[j] is not None and standalone(j) for j in range(n)],
                          [hit is not None for hit in hits.keep], thread)


def apply_cuts(markers: SectionMarkers, keep: list[bool], rule_of: list[str | None], words: list[int],
               body: np.ndarray | None = None) -> int | None:
    """A section marker on its own line cuts the article once enough article is on the right side of it (`keep` and
    `rule_of` are changed in place); a `cut_after` marker above the middle of the kept text only where a comment
    thread may follow it or little confident body does (`body`: the lines' body probabilities, of which "enough
    article" counts the likely lines; None: every kept line counts and any marker cuts). Returns the worded line of
    the `cut_after` marker that ended the article, if one did."""
    n = len(keep)
    kept_words = [words[j] if keep[j] else 0 for j in range(n)]
    total = sum(kept_words)
    cut_at = None
    if not total:
        return cut_at
    before = list(itertools.accumulate(kept_words, initial=0))  # before[j]: kept words above line j
    article, article_total = before, total  # the article the cut_after test counts above a marker
    confident = None  # confident[j]: words of the kept lines from j on that the model is sure are body
    if body is not None:
        probabilities = body.tolist()
        likely = [w if p >= LIKELY_BODY else 0 for w, p in zip(kept_words, probabilities, strict=True)]
        if any(likely):  # else no kept line is likely article: every kept line counts, as without probabilities
            article, article_total = list(itertools.accumulate(likely, initial=0)), sum(likely)
        if markers.thread is not None:
            sure = [w if p >= CONFIDENT_BODY else 0 for w, p in zip(kept_words, probabilities, strict=True)]
            confident = list(itertools.accumulate(reversed(sure), initial=0))[::-1]

    def early_and_doubtful(j: int) -> bool:  # a marker above the story's middle, a confident story below it
        return (confident is not None and before[j] < EARLY_CUT_SHARE * total and not markers.thread[j]
                and confident[j + 1] >= before[j])

    for j in range(n):
        if markers.after[j] and article[j] >= min(150, 0.25 * article_total) and not early_and_doubtful(j):
            for k in range(j + 1, n):
                if keep[k] and not markers.forced[k]:
                    keep[k], rule_of[k] = False, SIG_CUT_AFTER
            cut_at = j
            break
    for j in range(n - 1, -1, -1):
        if markers.before[j] and total - before[j] >= 0.5 * total:
            for k in range(j):
                if keep[k] and not markers.forced[k]:
                    keep[k], rule_of[k] = False, SIG_CUT_BEFORE
            break
    return cut_at
