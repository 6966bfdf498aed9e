"""pipeline.clean.textclean.clean_lines: the article of a synthetic dump, verdicts, and properties."""

from __future__ import annotations

import re

import pytest
from conftest import ARTICLE
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.clean.stopwords import StopwordIndex
from pipeline.clean.textclean import SIG_DUPLICATE, clean_lines
from pipeline.config import CleanConfig
from pipeline.rules import line_key, load_rules

RULES = load_rules()
STOPWORDS = StopwordIndex.load()
CONFIG = CleanConfig()

MENU = ["Home", "News", "World", "Business", "Sport", "Subscribe", "Sign in", "Search"]
HEADING = "What happens next"
RELATED = [
    "Related Posts",
    "Five things you need to know about the new tram line that opens in the city next month, and why it "
    "matters for the thousands of commuters who use the old bus routes every day.",
    "How a small bakery on the east side became one of the most talked about places in town after a single "
    "review of its bread was shared by thousands of people in one weekend.",
]
COOKIE = [
    "We use cookies to improve your experience on our site. By continuing to use this site you agree to our "
    "use of cookies.",
    "Accept all",
    "Reject all",
]
FOOTER = ["© 2024 Example Times. All rights reserved.", "Privacy Policy", "Terms of Use"]


def run(text: str):
    return clean_lines(text, RULES, STOPWORDS.guess(text), CONFIG)


def kept_texts(result) -> list[str]:
    return [v.text for v in result.verdicts if v.kept]


def dump(article: list[str]) -> str:
    lines = ["  • " + m for m in MENU] + [""] + article + [""] + RELATED + [""] + COOKIE + [""] + FOOTER
    return "\n".join(lines)


def test_stopword_guess_is_english():
    assert {"the", "and", "of"} <= STOPWORDS.guess(dump(ARTICLE))


def test_keeps_exactly_the_article():
    result = run(dump(ARTICLE))
    assert kept_texts(result) == ARTICLE


def test_heading_between_paragraphs_is_kept():
    article = ARTICLE[:2] + [HEADING] + ARTICLE[2:]
    result = run(dump(article))
    assert kept_texts(result) == article


def test_one_verdict_per_input_line_in_order():
    text = dump(ARTICLE)
    result = run(text)
    assert [v.index for v in result.verdicts] == list(range(len(text.split("\n"))))
    assert [v.text for v in result.verdicts] == [line.strip() for line in text.split("\n")]


def test_every_dropped_line_names_a_rule():
    result = run(dump(ARTICLE[:2] + [HEADING] + ARTICLE[2:]))
    dropped = [v for v in result.verdicts if not v.kept and v.text]
    assert dropped
    for v in dropped:
        assert v.rule_id, f"no rule id for dropped line {v.text!r}"
    for v in result.verdicts:
        if v.kept:
            assert v.rule_id is None
        if not v.text:
            assert not v.kept


def test_dropped_lines_carry_the_expected_ids():
    text = dump(ARTICLE)
    by_text = {v.text: v.rule_id for v in run(text).verdicts if not v.kept and v.text}
    assert by_text["• Home"] == "nav.menu"
    assert by_text["• Subscribe"] == "nav.menu"
    assert by_text["Related Posts"] == "related.section"
    assert by_text[RELATED[1]] == "signal.after_cut_marker"
    assert by_text[COOKIE[0]] == "cookie.banner"
    assert by_text["© 2024 Example Times. All rights reserved."] == "footer.copyright"
    assert by_text["Privacy Policy"] == "legal.links"


def test_region_spans_the_article():
    text = dump(ARTICLE)
    result = run(text)
    lines = text.split("\n")
    first = lines.index(ARTICLE[0])
    last = lines.index(ARTICLE[-1])
    assert result.region == (first, last)


def test_repeated_line_in_article_is_kept_once():
    article = ARTICLE[:3] + [ARTICLE[1]] + ARTICLE[3:]
    result = run(dump(article))
    assert kept_texts(result) == ARTICLE
    repeats = [v for v in result.verdicts if v.text == ARTICLE[1]]
    assert [v.kept for v in repeats] == [True, False]
    assert repeats[1].rule_id == SIG_DUPLICATE == "signal.repeated_line"


def test_no_prose_keeps_nothing():
    text = "\n".join(MENU + COOKIE + FOOTER)
    result = run(text)
    assert kept_texts(result) == []
    assert result.region is None
    assert all(v.rule_id for v in result.verdicts if v.text)


@pytest.mark.parametrize("text", ["", "\n\n\n", "   ", "Home"])
def test_degenerate_inputs(text):
    result = run(text)
    assert kept_texts(result) == []
    assert len(result.verdicts) == len(text.split("\n"))


# --- properties -------------------------------------------------------------------------------------

PROSE = st.sampled_from(ARTICLE + RELATED[1:] + [
    "She said that the decision was not an easy one, but that it was the right thing to do for the town.",
    "It is not clear when the work will be finished, and officials have declined to give a date.",
    "In the end, most of the people who spoke at the meeting were in favour of the plan as it stands.",
])
JUNK = st.sampled_from(MENU + COOKIE + FOOTER + [
    "", "   ", "Related Posts", "Leave a Reply", "ShareTweetPin", ". . .. $ $ $ - - -", "MTWTFSS",
    "Hong-Kong-Finance-1280x765.jpg", "Africa (977) Asia (834) Brazil (858)", HEADING, "https://example.com/x",
    "Tags: news, city", "5 min read", "\u00a0", "\t•\t", "Page 2 of 10",
])
LINE = st.one_of(PROSE, JUNK, st.text(max_size=80).map(lambda s: s.replace("\n", " ")))


def check_invariants(text: str) -> None:
    result = clean_lines(text, RULES, STOPWORDS.guess(text), CONFIG)
    inputs = {line.strip() for line in text.split("\n")}
    assert len(result.verdicts) == len(text.split("\n"))
    seen_keys = set()
    for v in result.verdicts:
        if v.kept:
            assert v.text in inputs, f"kept text not in the input: {v.text!r}"
            assert v.text, "a blank line was kept"
            assert v.rule_id is None
            if len(re.findall(r"\w+", v.text)) >= CONFIG.repeat_min_words:  # fragments may recur
                assert line_key(v.text) not in seen_keys, f"kept twice: {v.text!r}"
            seen_keys.add(line_key(v.text))
        elif v.text:
            assert v.rule_id
    if result.region is not None:
        start, end = result.region
        assert 0 <= start <= end < len(result.verdicts)
        for v in result.verdicts:
            if v.kept:
                assert start <= v.index <= end


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=2000))
def test_clean_lines_never_raises_on_arbitrary_text(text):
    check_invariants(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(LINE, max_size=60))
def test_clean_lines_on_mixed_prose_and_junk(lines):
    check_invariants("\n".join(lines))


@settings(max_examples=200, deadline=None)
@given(st.lists(LINE, max_size=40), st.lists(LINE, max_size=40))
def test_article_between_junk_is_kept(before, after):
    text = "\n".join(before + [""] + ARTICLE + [""] + after)
    check_invariants(text)
    result = clean_lines(text, RULES, STOPWORDS.guess(text), CONFIG)
    kept = kept_texts(result)
    assert kept, "an article of five paragraphs vanished"


@pytest.mark.parametrize("line, title_case", [
    ("Photo ① Courtesy Of Reuters", 1.0), ("½ Cup Sugar", 1.0), ("² Squared Numbers Here", 1.0),
    ("The 3rd Man and the city", 0.4), ("_private Names", 1.0), ("İstanbul Ve Ankara", 1.0),
])
def test_title_case_counts_words_that_start_with_a_letter(line, title_case):
    """Words starting with a digit-like sign (½, ², ①) are not lowercase words: they are not counted."""
    from pipeline.clean.textclean import page_features
    from pipeline.linestats import line_stats

    stats = line_stats([line])
    assert page_features(stats, stats.count_in(frozenset()), [""])[0].title_case == pytest.approx(title_case)


def test_a_long_run_of_unpunctuated_fragments_is_not_a_paragraph():
    """20,000 one-to-three-word lines were joined into one unit (each line "continues" the last) that read
    as a single prose paragraph and was kept whole (7 MB for a million lines); a paragraph has sentences."""
    words = ["apple", "river", "stone", "cloud", "green", "market", "window", "silver", "garden", "paper"]
    lines = [" ".join(words[(n * 7 + k) % len(words)] for k in range(1 + n % 3)) for n in range(20_000)]
    result = run("\n".join(lines))
    assert not any(v.kept for v in result.verdicts)


def test_fragments_of_a_paragraph_broken_at_links_are_still_prose():
    """The join the fix above bounds: a paragraph a renderer broke at every link still reads as prose."""
    broken = ["The council said the", "harbour plan", "would cost less than", "the bridge", "and that work",
              "would start in spring, after a", "final vote", "next month."]
    text = "\n".join(MENU + [ARTICLE[0], *broken, ARTICLE[1]] + FOOTER)
    kept = [v.text for v in run(text).verdicts if v.kept]
    assert all(line in kept for line in broken)
