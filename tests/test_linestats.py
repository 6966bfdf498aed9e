"""pipeline.linestats: a page's per-line statistics in numpy passes equal the per-line definitions they replaced.

The reference functions below are the per-line code the cleaner ran before (one regex or string call per
feature per line); the page-level code must give the same figures on any page, including letters whose lower
case is longer (`İ`), final sigma, letters beyond the Basic Multilingual Plane, digits that are not letters
(½, ①), CJK and URLs, and the heuristics' numpy screens must never hide a line their test accepts.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.clean.stopwords import StopwordIndex
from pipeline.clean.textclean import LineFeatures, _unit_features, page_features
from pipeline.heuristics import HEURISTIC_SCREENS, HEURISTIC_TESTS
from pipeline.linestats import line_stats
from pipeline.rules import ACTIONS, line_key, load_rules, trim_line

# --- the per-line definitions (the cleaner's before 2026-12-07) -----------------------------------------------
_WORD = re.compile(r"\w+")
_FIRST_LETTER = re.compile(r"(?<!\w)[^\W\d_]")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_TERMINAL = tuple('.!?。！？…:;,"”’»)]—–')
_URL = re.compile(r"https?://|www\.\w", re.IGNORECASE)


def reference_features(text: str, stopwords: frozenset[str]) -> LineFeatures:
    tokens = _WORD.findall(text.lower())
    words = len(tokens)
    if not text.isascii():
        cjk = len(_CJK.findall(text))
        if cjk > 4:
            words += cjk // 2
    stops = sum(map(stopwords.__contains__, tokens)) if stopwords else 0
    firsts = list(filter(str.isalpha, _FIRST_LETTER.findall(text)))
    return LineFeatures(
        words=words,
        stop_density=stops / len(tokens) if tokens else 0.0,
        terminal=text.endswith(_TERMINAL),
        title_case=sum(map(str.isupper, firsts)) / len(firsts) if firsts else 0.0,
        url=("://" in text or "www." in text.lower()) and _URL.search(text) is not None,
    )


STOP = frozenset({"the", "and", "of", "i", "σας", "ve", "de", "la", "和"})
# characters that have tripped per-page code before: lower case longer than the letter, final sigma, astral
# letters and digits, digit-like signs, CJK, combining marks, underscores, the URL and sentence shapes
ALPHABET = st.sampled_from(list("aAbZ zé ÉİıΣσςΟΔ½①²_-.,:!?»”)(\t") + ["𝐀", "𝟙", "😀", "和平", "ひらがな", "한국",
                                                                         "\u0307", "www.", "https://", "WWW.x",
                                                                         "the ", "The ", "and ", "ve "])
LINE = st.lists(ALPHABET, min_size=1, max_size=14).map("".join).map(trim_line).filter(bool)


@settings(max_examples=300, deadline=None)
@given(st.lists(LINE, min_size=1, max_size=12))
def test_page_features_equal_the_per_line_definitions(lines):
    stats = line_stats(lines)
    got = page_features(stats, stats.count_in(STOP), [""] * len(lines))
    assert got == [reference_features(line, STOP) for line in lines]
    assert stats.tokens == [t for line in lines for t in _WORD.findall(line.lower())]


@settings(max_examples=200, deadline=None)
@given(st.lists(LINE, min_size=2, max_size=6))
def test_a_unit_of_joined_lines_has_the_features_of_its_joined_text(lines):
    stats = line_stats(lines)
    stops = stats.count_in(STOP)
    counts = {"tokens": stats.n_tokens.tolist(), "cjk": stats.cjk.tolist(), "firsts": stats.firsts.tolist(),
              "caps": stats.caps.tolist(), "url": stats.url.tolist(), "stops": stops.tolist(),
              "terminal": [f.terminal for f in page_features(stats, stops, [""] * len(lines))]}
    assert _unit_features(list(range(len(lines))), counts) == reference_features(" ".join(lines), STOP)


@pytest.mark.parametrize("line", ["İSTANBUL Ve Ankara", "ΟΔΟΣ σας", "½ Cup Sugar", "𝐀lpha 𝐁eta", "和平和平和平 news",
                                  "See https://example.com now", "x"])
def test_single_lines(line):
    stats = line_stats([line])
    assert page_features(stats, stats.count_in(STOP), [""]) == [reference_features(line, STOP)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["MTWTFSS", "Mo Tu We Th Fr Sa Su", "1 2 3 4 5 6 7", "« Apr", "Jun »", "« Apr Jun »",
                                 "img-1280x765.jpg", "ShareTweetPin", "app-storeplay-store", "Africa (977)",
                                 ". . .. $ $ $", "- - -", "The", "News", "2024"]) | LINE,
                min_size=1, max_size=4).map(" ".join).map(trim_line).filter(bool))
def test_a_heuristic_screen_never_hides_a_line_its_test_accepts(line):
    stats = line_stats([line])
    for name, test in HEURISTIC_TESTS.items():
        if test(line):
            assert HEURISTIC_SCREENS[name](stats)[0], (name, line)


def _any_rule_matches(rules, line: str, key: str) -> bool:
    """What the screen decides, read the slow way: does any rule of any action match the line?"""
    return any(rules.match(line, key, action) is not None for action in ACTIONS)


def test_candidates_are_the_lines_some_rule_matches_on_the_seed_lines():
    from conftest import SEEDS_RAW

    rules = load_rules()
    screened_in = total = 0
    for path in sorted(SEEDS_RAW.iterdir()):
        lines = [trim_line(ln) for ln in path.read_text(encoding="utf-8", errors="replace").split("\n")]
        lines = [ln for ln in lines if ln]
        keys = list(map(line_key, lines))
        screened = rules.candidates(line_stats(lines), keys)
        assert screened == [_any_rule_matches(rules, line, key) for line, key in zip(lines, keys, strict=True)]
        screened_in, total = screened_in + sum(screened), total + len(lines)
    assert 0.05 * total < screened_in < 0.5 * total  # not vacuous: some lines go to the rules, most do not


@settings(max_examples=200, deadline=None)
@given(st.lists(LINE, min_size=1, max_size=10))
def test_candidates_are_the_lines_some_rule_matches_on_any_page(lines):
    rules = load_rules()
    keys = list(map(line_key, lines))
    expected = [_any_rule_matches(rules, line, key) for line, key in zip(lines, keys, strict=True)]
    assert rules.candidates(line_stats(lines), keys) == expected


def test_the_stop_list_guess_is_the_list_that_covers_most_tokens():
    index = StopwordIndex.load()
    by_word: dict[str, list[str]] = {}
    for name, words in index.languages.items():
        for word in words:
            by_word.setdefault(word, []).append(name)

    def reference(text: str) -> frozenset[str]:
        hits: Counter[str] = Counter()
        for token, count in Counter(_WORD.findall(text[:12_000].lower())).items():
            for name in by_word.get(token, ()):
                hits[name] += count
        return index.languages[max(sorted(hits), key=lambda n: hits[n])] if hits else frozenset()

    from conftest import SEEDS_RAW

    texts = [p.read_text(encoding="utf-8", errors="replace") for p in sorted(SEEDS_RAW.iterdir())]
    texts += ["", "qqq zzz", "de la de la", "a", "i", "Der Hund und die Katze sind nicht hier", "el perro y la casa"]
    for text in texts:
        assert index.guess(text) == reference(text), text[:40]


_SCREEN_WORDS = st.sampled_from(["we use cookies", "We Use COOKIES", "all rights reserved", "ALL RIGHTS RESERVED",
                                 "all rıghts reserved", "all rights reſerved", "İ", "by continuing to use this site "
                                 "you agree to cookies", "consent to the use of cookies", "site uses cookies",
                                 "Kookies", "this website uses cookies to", "using"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_SCREEN_WORDS | LINE, min_size=1, max_size=4).map(" ".join).map(trim_line).filter(bool),
                min_size=1, max_size=8))
def test_the_word_filter_of_a_screen_hides_no_match(lines):
    """A screen is tried only on lines holding one of its words: never a line it would match (odd cases,
    ı and ſ, which match i and s ignoring case, the Kelvin sign)."""
    rules = load_rules()
    keys = list(map(line_key, lines))
    expected = [_any_rule_matches(rules, line, key) for line, key in zip(lines, keys, strict=True)]
    assert rules.candidates(line_stats(lines), keys) == expected


@pytest.mark.parametrize("pattern, words", [
    (r"\ball rights reserved\b", ("all rights reserved",)),
    (r"\bby (?:continuing|using) (?:this|our) site", ("continuing", "using")),
    (r"(?:\bwe use cookies\b)|(?:\bconsent to (?:the use of )?cookies\b)", ("consent to ", "we use cookies")),
    (r"\d+ comments?", (" comment",)),
    (r"\d+\s*/\s*\d+", None),
    (r"ab|\w+", None),
    (r"café au lait", None),  # ignoring case, only ASCII words are found by lower-casing
])
def test_the_words_every_match_holds(pattern, words):
    from pipeline.rulescreen import _words

    assert _words(re.compile(pattern, re.IGNORECASE)) == words


@settings(max_examples=300, deadline=None)
@given(st.lists(ALPHABET | st.sampled_from(["\n", "\n\n", " \r\n", "ΟΔΟΣ", "Σ'"]), max_size=30).map("".join),
       st.integers(0, 60))
def test_the_stop_list_sample_is_read_from_the_page_tokens(text, sample_chars):
    """The guess's sample, the tokens of the text's first characters, equals what the page's own tokens give
    (lines wholly before the cut, and the cut line's part), wherever the cut falls."""
    from pipeline.clean.stopwords import TOKEN
    from pipeline.clean.textclean import sample_tokens

    raw_lines = text.split("\n")
    rows = [i for i, line in enumerate(raw_lines) if trim_line(line)]
    stats = line_stats([trim_line(raw_lines[i]) for i in rows])
    expected = TOKEN.findall(text[:sample_chars].lower())
    assert sample_tokens(text, raw_lines, rows, stats, sample_chars) == expected
