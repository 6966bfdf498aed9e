"""Find the article in a rendered-text dump: per-line features, rules, context, densest region.

The shape follows jusText (classify blocks, then revise short ones from their neighbours) with a
region step on top: the article is the contiguous stretch of lines with the highest prose mass,
where each boilerplate line costs a penalty (maximum-sum subarray). Every line gets a verdict; every
dropped line names the rule or signal that dropped it.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

import numpy as np

from ..config import CleanConfig
from ..document import LineVerdict
from ..linestats import LineStats, line_stats
from ..rules import RuleSet, line_key, trim_line
from .linefeatures import densest_region
from .stopwords import SAMPLE_CHARS, TOKEN, StopwordIndex

_TERMINAL_CPS = np.array([ord(c) for c in '.!?。！？…:;,"”’»)]—–'])

GOOD, MEDIUM, SHORT, BAD, BLANK = "good", "medium", "short", "bad", "blank"

# Signal ids for lines dropped by code rather than by a rule file.
SIG_OUTSIDE = "signal.outside_region"
SIG_MENU_RUN = "signal.short_run"
SIG_DUPLICATE = "signal.repeated_line"
SIG_CUT_AFTER = "signal.after_cut_marker"
SIG_CUT_BEFORE = "signal.before_cut_marker"
SIG_URL = "signal.url"
SIG_DANGLING = "signal.dangling_intro"
SIG_TITLE = "signal.title"
SIG_BEFORE_TITLE = "signal.before_title"


@dataclass(slots=True)
class LineFeatures:
    words: int
    stop_density: float
    terminal: bool
    title_case: float
    url: bool
    key: str = ""  # rules.line_key of the line, computed once


def page_features(stats: LineStats, stops: np.ndarray, keys: list[str]) -> list[LineFeatures]:
    """The features of every line of a page (`stats` of its trimmed worded lines, `stops` their stop words, `keys`
    their line_key), from its per-line counts: words (`\\w+` runs of the lower-cased line, plus half its CJK
    characters when it has more than four), the share of them that are stop words, whether it ends like a
    sentence, the share of its words starting with a letter that start with a capital, and whether it holds a
    URL."""
    n_tokens = stats.n_tokens
    words = n_tokens + np.where(stats.cjk > 4, stats.cjk // 2, 0)
    density = np.where(n_tokens > 0, stops / np.maximum(n_tokens, 1), 0.0)
    title_case = np.where(stats.firsts > 0, stats.caps / np.maximum(stats.firsts, 1), 0.0)
    terminal = np.isin(stats.last, _TERMINAL_CPS)
    return list(map(LineFeatures, words.tolist(), density.tolist(), terminal.tolist(), title_case.tolist(),
                    stats.url.tolist(), keys))


def _unit_features(rows: list[int], counts: dict[str, list]) -> LineFeatures:
    """The features of worded lines `rows` joined by spaces, from their counts (`counts`: per worded line, as
    lists): a space starts no word and ends no sentence, so the counts add up (CJK characters are counted over
    the unit as a whole, as over a line)."""
    tokens = sum(counts["tokens"][j] for j in rows)
    cjk = sum(counts["cjk"][j] for j in rows)
    firsts = sum(counts["firsts"][j] for j in rows)
    return LineFeatures(
        words=tokens + (cjk // 2 if cjk > 4 else 0),
        stop_density=sum(counts["stops"][j] for j in rows) / tokens if tokens else 0.0,
        terminal=counts["terminal"][rows[-1]],
        title_case=sum(counts["caps"][j] for j in rows) / firsts if firsts else 0.0,
        url=any(counts["url"][j] for j in rows),
    )


@dataclass(slots=True)
class CleanResult:
    verdicts: list[LineVerdict]
    region: tuple[int, int] | None  # first and last line index of the article, inclusive
    features: list[LineFeatures | None]


def classify(features: LineFeatures, config: CleanConfig, has_stopwords: bool) -> str:
    if features.words <= config.short_max_words:
        return SHORT
    prose_like = features.stop_density >= config.good_min_stopword_density if has_stopwords else True
    if features.words >= config.good_min_words and prose_like and not features.url:
        if not features.terminal and (features.words < config.unpunctuated_min_words or features.title_case > 0.8):
            return MEDIUM  # a headline, a caption or a link list: prose ends with punctuation
        return GOOD
    return MEDIUM


_SENTENCE_END = tuple('.!?。！？…"”»')
# A sentence ends at one of these (Latin, CJK, Devanagari, Arabic, Urdu, Armenian, Ethiopic) and a space or the
# end; prose has one every few dozen words, so a joined unit with fewer than one per _MAX_SENTENCE_WORDS is no
# paragraph (20,000 one-to-three-word lines joined into a 7 MB "paragraph" that was kept whole).
_SENTENCE_BREAK = re.compile(r'[.!?。！？…।॥؟۔։።]["”’»)\]]*(?:\s|$)')
_MAX_SENTENCE_WORDS = 100
_CONTINUES = re.compile(r"^[a-z\u00df-\u00ff,.;:!?)\]”’%]")


def _units(trimmed: list[str], labels: list[str]) -> list[list[int]]:
    """Runs of adjacent unlabelled lines where each next line continues the sentence of the last."""
    units: list[list[int]] = []
    for i, label in enumerate(labels):
        if label != "?":
            continue
        if (units and units[-1][-1] == i - 1 and not trimmed[i - 1].endswith(_SENTENCE_END)
                and _CONTINUES.match(trimmed[i])):
            units[-1].append(i)
        else:
            units.append([i])
    return units


def _weight(label: str, features: LineFeatures | None, config: CleanConfig) -> float:
    if label == GOOD:
        return float(min(features.words, config.good_weight_cap))
    if label == BAD:
        return -config.bad_penalty
    if label == SHORT:
        return -config.short_penalty
    if label == MEDIUM:
        if features.title_case >= config.headline_title_case and not features.terminal:
            return -config.short_penalty  # a headline-like line: in a list, it is a list of links
        return -config.short_penalty / 2 + config.medium_gain * features.words * features.stop_density
    return 0.0


def _next_is_boilerplate(labels: list[str], index: int) -> bool:
    nxt = next((k for k in range(index + 1, len(labels)) if labels[k] != BLANK), None)
    return nxt is None or labels[nxt] == BAD


def _last_good(labels: list[str], start: int, stop: int) -> int:
    return max((k for k in range(start, stop) if labels[k] == GOOD), default=start)


def sample_tokens(text: str, raw_lines: list[str], rows: list[int], stats: LineStats,
                  sample_chars: int = SAMPLE_CHARS) -> list[str]:
    """The `\\w+` tokens of `text[:sample_chars].lower()` (what the stop-list guess reads), from the page's own
    tokens: those of the lines wholly before the cut, and the cut line's part. Tokens never cross a line break,
    and lower-casing reads no context across one, so they are the same tokens."""
    if len(text) <= sample_chars:
        return stats.tokens
    cut_line = text.count("\n", 0, sample_chars)
    before = bisect.bisect_left(rows, cut_line)  # worded lines wholly before the cut
    tokens = stats.tokens[:int(stats.n_tokens[:before].sum())]
    line_start = text.rfind("\n", 0, sample_chars) + 1
    return tokens + TOKEN.findall(raw_lines[cut_line][:sample_chars - line_start].lower())


@dataclass(frozen=True)
class ScreenedLines:
    """A page's lines as both cleaners read them first: trimmed, the worded ones' keys and statistics, and which of
    those any rule could match (`RuleSet.candidates`); computed once when the model asks the heuristic's vote."""

    raw_lines: list[str]
    trimmed: list[str]  # every line, trimmed ("" for a blank one)
    rows: list[int]  # indexes of the worded lines
    worded: list[str]  # their trimmed texts
    keys: list[str]  # their rules.line_key
    stats: LineStats  # of the worded lines
    screened: list[bool]  # of the worded lines: could a rule match it


def screen_lines(raw_lines: list[str], rules: RuleSet, site_keys: frozenset[str] = frozenset()) -> ScreenedLines:
    trimmed = [trim_line(line) for line in raw_lines]
    rows = [i for i, line in enumerate(trimmed) if line]
    worded = [trimmed[i] for i in rows]
    keys = list(map(line_key, worded))
    stats = line_stats(worded)
    return ScreenedLines(raw_lines, trimmed, rows, worded, keys, stats, rules.candidates(stats, keys, site_keys))


def clean_lines(text: str, rules: RuleSet, stopwords: frozenset[str] | StopwordIndex, config: CleanConfig,
                site_keys: frozenset[str] = frozenset(), screen: ScreenedLines | None = None) -> CleanResult:
    """The verdict of every line of a text dump. `stopwords`: the page's stop list, or the index to guess it from
    (`StopwordIndex.guess`, read from the tokens the page's line statistics already hold). `screen`: the page's
    `screen_lines`, when the caller has them already."""
    if screen is None:
        screen = screen_lines(text.split("\n"), rules, site_keys)
    raw_lines, trimmed, rows, keys, stats = screen.raw_lines, screen.trimmed, screen.rows, screen.keys, screen.stats
    n = len(raw_lines)
    if isinstance(stopwords, StopwordIndex):
        stopwords = stopwords.guess_from(sample_tokens(text, raw_lines, rows, stats))
    row_of = dict(zip(rows, range(len(rows)), strict=True))
    labels: list[str] = [BLANK] * n
    rule_of: list[str | None] = [None] * n
    features: list[LineFeatures | None] = [None] * n
    stops = stats.count_in(stopwords)
    for i, feats in zip(rows, page_features(stats, stops, keys), strict=True):
        features[i] = feats
    cut_after: list[int] = []
    cut_before: list[int] = []
    keep_hit: list[str | None] = [None] * n  # a user `keep` rule forces the line in (a drop rule still wins)
    has_stopwords = bool(stopwords)

    for i, key, screened in zip(rows, keys, screen.screened, strict=True):
        line = trimmed[i]
        if screened:
            keep_hit[i] = rules.match(line, key, "keep", site_keys)
            # A marker ending in a colon labels an inline pointer (`Recommended:`), and one glued to an
            # unfinished sentence above it is a link inside a paragraph: neither starts a section.
            inline = line.endswith(":") or (i > 0 and bool(trimmed[i - 1])
                                            and not trimmed[i - 1].endswith(_SENTENCE_END))
            for action, positions in (("cut_after", cut_after), ("cut_before", cut_before)):
                hit = rules.match(line, key, action, site_keys)
                if hit is not None:
                    if not inline:
                        positions.append(i)
                    labels[i], rule_of[i] = BAD, hit
                    break
            if labels[i] == BAD:
                continue
            hit = rules.match(line, key, "drop", site_keys)
            if hit is not None:
                labels[i], rule_of[i] = BAD, hit
                continue
        feats = features[i]
        if feats.url and feats.words < 2 * config.good_min_words:
            labels[i], rule_of[i] = BAD, SIG_URL
            continue
        labels[i] = "?"

    # Renderers break a paragraph at every link and at hard wraps in the source: join such fragments
    # into one unit before judging it, so a paragraph with five links still reads as prose. A paragraph
    # has sentences, though: fragments joined into more words than sentences can hold are a list.
    units = _units(trimmed, labels)
    if any(len(unit) > 1 for unit in units):
        counts = {"tokens": stats.n_tokens.tolist(), "cjk": stats.cjk.tolist(), "firsts": stats.firsts.tolist(),
                  "caps": stats.caps.tolist(), "url": stats.url.tolist(),
                  "stops": stops.tolist(),
                  "terminal": [features[i].terminal for i in rows]}
    for unit in units:
        if len(unit) > 1:
            feats = _unit_features([row_of[k] for k in unit], counts)
            label = classify(feats, config, has_stopwords)
            if label == GOOD and feats.words > _MAX_SENTENCE_WORDS * (
                    1 + len(_SENTENCE_BREAK.findall(" ".join(trimmed[k] for k in unit)))):
                label = MEDIUM
        else:
            label = classify(features[unit[0]], config, has_stopwords)
        for k in unit:
            labels[k] = label

    weights = [_weight(labels[i], features[i], config) for i in range(n)]
    region = densest_region(weights)

    # Inside the article region, a section marker ends it (cut after) or opens it (cut before).
    cut_line = cut_start = None
    dangling: set[int] = set()
    if region is not None:
        start, end = region
        good_words = [features[i].words if labels[i] == GOOD else 0 for i in range(n)]
        region_good = sum(good_words[start:end + 1])
        for i in cut_after:
            if start < i <= end and sum(good_words[start:i]) >= min(150, 0.25 * region_good):
                cut_line, end = i, _last_good(labels, start, i)
                break
        for i in cut_before:
            if start <= i < end and sum(good_words[i:end + 1]) >= 0.5 * region_good:
                cut_start = i
        if cut_start is not None:
            start = next(k for k in range(cut_start + 1, end + 1) if labels[k] == GOOD)
        # An article does not end on a line announcing more ("… can do for you:") that boilerplate
        # follows: what it announced was not article, so neither is the announcement.
        while end > start and trimmed[end].endswith(":") and _next_is_boilerplate(labels, end):
            dangling.add(end)
            end = _last_good(labels, start, end)
        region = (start, end)

    verdicts: list[LineVerdict] = []
    keep = [False] * n
    if region is not None:
        start, end = region
        keep_region_lines(labels, features, start, end, keep, config)
    seen_keys: set[str] = set()
    for i, line in enumerate(trimmed):
        label = labels[i]
        if label == BLANK:
            verdicts.append(LineVerdict(i, line, False, None, BLANK))
            continue
        if rule_of[i] is not None:
            verdicts.append(LineVerdict(i, line, False, rule_of[i], label))
            continue
        if keep_hit[i] is not None:
            verdicts.append(LineVerdict(i, line, True, keep_hit[i], label))
            continue
        if not keep[i]:
            if i in dangling:
                reason = SIG_DANGLING
            elif cut_line is not None and i > cut_line:
                reason = SIG_CUT_AFTER
            elif cut_start is not None and i < cut_start:
                reason = SIG_CUT_BEFORE
            elif region is not None and region[0] <= i <= region[1]:
                reason = SIG_MENU_RUN
            else:
                reason = SIG_OUTSIDE
            verdicts.append(LineVerdict(i, line, False, reason, label))
            continue
        key = features[i].key
        # A repeated sentence or heading is printed twice by the page; a repeated fragment ("love",
        # "and") is just the same words again in a paragraph a renderer broke at its links.
        if features[i].words >= config.repeat_min_words:
            if key in seen_keys:
                verdicts.append(LineVerdict(i, line, False, SIG_DUPLICATE, label))
                continue
            seen_keys.add(key)
        verdicts.append(LineVerdict(i, line, True, None, label))
    return CleanResult(verdicts=verdicts, region=region, features=features)


def keep_region_lines(labels: list[str], features: list[LineFeatures | None], start: int, end: int,
                      keep: list[bool], config: CleanConfig) -> None:
    """Keep prose in the region, and short lines only where prose surrounds them (jusText's revision).

    A run of non-prose lines between two prose lines is a heading, a list or a caption and stays; a
    run longer than `max_short_run`, or a long one made mostly of headline-like lines, is a menu or a
    list of links and goes. Boilerplate lines inside a run are dropped by their rule anyway.
    """
    i = start
    while i <= end:
        if labels[i] == GOOD:
            keep[i] = True
            i += 1
            continue
        j = i
        while j <= end and labels[j] != GOOD:
            j += 1
        run = [k for k in range(i, j) if labels[k] in (SHORT, MEDIUM)]
        if j <= end and i > start and len(run) <= config.max_short_run and not _is_link_list(run, features, config):
            for k in run:
                keep[k] = True
        i = j


def _is_link_list(run: list[int], features: list[LineFeatures | None], config: CleanConfig) -> bool:
    if len(run) < config.link_list_min_lines:
        return False
    headline_like = sum(
        1 for k in run
        if features[k] is not None and not features[k].terminal
        and (features[k].title_case >= config.headline_title_case or features[k].words <= config.short_max_words)
    )
    return headline_like >= config.link_list_share * len(run)


def summarise_cleaning(verdicts: list[LineVerdict]) -> dict:
    """`metadata.cleaning`: lines in, lines kept, and the lines and words each rule or signal dropped (a list of
    `{rule, lines, words}` in rule order: one schema for every record, pipeline/schema.py)."""
    lines: dict[str, int] = {}
    words: dict[str, int] = {}
    for v in verdicts:
        if not v.kept and v.rule_id is not None:
            lines[v.rule_id] = lines.get(v.rule_id, 0) + 1
            words[v.rule_id] = words.get(v.rule_id, 0) + len(v.text.split())
    return {
        "lines_in": sum(1 for v in verdicts if v.label != BLANK or v.rule_id is not None),  # (a lynx link list)
        "lines_kept": sum(1 for v in verdicts if v.kept),
        "rules_hit": [{"rule": rule, "lines": lines[rule], "words": words[rule]} for rule in sorted(lines)],
    }
