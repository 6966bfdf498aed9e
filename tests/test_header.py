"""pipeline.clean.header: date parsing, and title/byline/date/site through the full Pipeline."""

from __future__ import annotations

import itertools
import textwrap
from datetime import date

import numpy as np
import pytest
from conftest import ARTICLE
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pipeline.clean.dates import _MONTHS, _plain_english, dateparser_date, parse_date
from pipeline.clean.header import META_TITLE, published_line, strip_value, without_list_marker
from pipeline.clean.header_candidates import (
    AUTHOR_FEATURES,
    TITLE_CANDIDATES,
    TITLE_FEATURES,
    _author_value,
    _lines_holding,
    author_candidates,
    title_candidates,
)
from pipeline.clean.header_model import HeaderRankers, header_from_model, ranked_choice
from pipeline.clean.wrapping import wrap_width, wrapped_run
from pipeline.config import load_config
from pipeline.document import LineVerdict, RawPage
from pipeline.records import Counters
from pipeline.rules import load_rules, packaged_vocabulary
from pipeline.stages.runner import Pipeline

TITLE = "Council Approves Harbour District Plan After Two Years of Debate"
PARAGRAPHS = ARTICLE[:4]
MENU = ["  • Home", "  • News", "  • World", "  • Subscribe", "  • Sign in"]


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return Pipeline(load_config())


def page(lines: list[str], name: str = "example/page.txt") -> RawPage:
    return RawPage(source_path=name, rel_path=name, data="\n".join(lines).encode("utf-8"))


# --- parse_date -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("May 26, 2025", date(2025, 5, 26)),
        ("26 May 2025", date(2025, 5, 26)),
        ("2025-05-26", date(2025, 5, 26)),
        ("Published: Jan 29, 2025", date(2025, 1, 29)),
        ("Saturday, July 12, 2025", date(2025, 7, 12)),
        ("Posted on 3rd of March, 2024 by the editors", date(2024, 3, 3)),
        ("Sept. 9, 2023", date(2023, 9, 9)),
        ("2025/4/29", date(2025, 4, 29)),  # year first, as East Asian sites and some CMSs print it
        ("EcoFlow - 2025.04.29", date(2025, 4, 29)),
    ],
)
def test_parse_date(text, expected):
    assert parse_date(text) == expected


@pytest.mark.parametrize("text", ["2025/4/29", "2025/04/12", "2025.12.04", "2012/1/2"])
def test_a_year_first_date_reads_as_dateparser_reads_it(text):
    assert parse_date(text) == dateparser_date(text, "en")


@pytest.mark.parametrize("text", ["no date here", "", "In 2025 the council met", "May 2025", "1850-01-01",
                                  "example.com/2025/04/29/story", "2025/13/01", "v2025.4.29.1"])
def test_parse_date_none(text):
    assert parse_date(text) is None


@pytest.mark.parametrize("texts, expected", [
    (["Menu", "Published on", "June 4, 2025", "Story"], (2, date(2025, 6, 4))),
    (["PUBLISHED", "3 January, 2025"], (1, date(2025, 1, 3))),
    (["Posted: June 4, 2025 by Jane Doe"], (0, date(2025, 6, 4))),
    (["Updated June 5, 2025", "Published June 4, 2025"], (1, date(2025, 6, 4))),  # an update is not the date
    (["On June 4, 2025, the council met"], None),  # a sentence, not a label
    (["June 4, 2025"], None),  # no publication word: the headline's neighbourhood decides
    (["Published", "Our long story of the council and what it decided on June 4, 2025"], None),  # not short
])
def test_a_line_that_says_it_states_the_publication_date(texts, expected):
    assert published_line(texts, "en", packaged_vocabulary()) == expected


_SPACE = st.sampled_from([" ", "  ", "\t", "\xa0", " \u2009"])


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(_MONTHS)).flatmap(lambda m: st.sampled_from([m, m.title(), m.upper()])),
       st.integers(0, 35), st.integers(1000, 2999), st.sampled_from(["", "st", "nd", "rd", "th"]),
       st.integers(0, 5), _SPACE, _SPACE)
def test_plain_english_dates_are_read_as_dateparser_reads_them(month, day, year, ordinal, shape, space1, space2):
    """The direct reading of the plainest spans gives dateparser's date, or leaves the span to dateparser."""
    dot = "." if shape % 2 else ""
    text = [f"{month}{dot}{space1}{day}{ordinal},{space2}{year}", f"{month}{space1}{day}{ordinal}{space2}{year}",
            f"{day}{ordinal}{dot}{space1}{month},{space2}{year}", f"{day}{ordinal}{space1}of {month}{space2}{year}",
            f"{year}-{day % 13}-{day}", f"{year}-{day % 13:02d}-{day:02d}"][shape]
    match = packaged_vocabulary().date_spans.search(text)
    if match is None:
        return
    direct = _plain_english(" ".join(match.group().split()))
    if direct is not None:
        assert direct == dateparser_date(match.group(), "en"), text


# --- analyse_header through the pipeline ------------------------------------------------------------


def header_dump(with_menu: bool) -> list[str]:
    return (
        ["Saturday, July 12, 2025"]
        + (MENU if with_menu else [])
        + ["", TITLE, "by Jane Doe", "May 26, 2025", ""]
        + PARAGRAPHS
        + ["", "© 2024 Example Times"]
    )


@pytest.mark.parametrize("with_menu", [False, True])
def test_header_through_pipeline(pipeline, with_menu):
    outcome = pipeline.process(page(header_dump(with_menu)))
    assert outcome.reject_reason is None, outcome.document.metadata
    meta = outcome.document.metadata
    assert meta["title"] == TITLE
    assert meta["author"] == "Jane Doe"
    assert meta["date"] == "2025-05-26"  # the byline's date, not the page-top "today"
    assert meta["sitename"] == "Example Times"
    assert meta["language"] == "en"


@pytest.mark.parametrize("marker", ["* ", "o ", "+ ", "• ", "3. ", "12) ", "*   * ", "# ", "##  "])
@pytest.mark.parametrize("method", ["heuristic", "model"])
def test_a_title_rendered_as_a_list_item_loses_its_marker(pipeline, marker, method):
    """Renderers print a headline inside a list (a breadcrumb's last item) with the list's marker, nested lists
    with several, and Markdown renderers (html2text) a heading after `#`s."""
    lines = [f"{marker}{TITLE}" if line == TITLE else line for line in header_dump(with_menu=True)]
    config = load_config(clean={"method": method})
    outcome = Pipeline(config).process(page(lines))
    assert outcome.document.metadata["title"] == TITLE


@pytest.mark.parametrize("title", ["10 Best Moving Companies", "5 Ways to Win", "o2 Arena Deal", "1.5 Million Jobs",
                                   "#1 Pick for 2026", "* * *"])
def test_a_title_that_opens_with_a_number_keeps_it(title):
    assert without_list_marker(title) == title


def test_header_lines_leave_the_text(pipeline):
    outcome = pipeline.process(page(header_dump(with_menu=True)))
    doc = outcome.document
    assert doc.text == "\n".join(PARAGRAPHS)
    for fragment in ("Jane Doe", "May 26, 2025", "July 12", "Example Times", "Subscribe", TITLE):
        assert fragment not in doc.text
    assert doc.metadata["word_count"] == sum(len(p.split()) for p in PARAGRAPHS)
    assert doc.metadata["provenance"]["author"].startswith("text:")
    assert doc.metadata["provenance"]["date"].startswith("text:")
    assert doc.metadata["cleaning"]["lines_kept"] == len(PARAGRAPHS)


def test_document_id_is_stable(pipeline):
    first = pipeline.process(page(header_dump(with_menu=False), name="a/b.txt")).document
    second = pipeline.process(page(header_dump(with_menu=False), name="a/b.txt")).document
    other = pipeline.process(page(header_dump(with_menu=False), name="a/c.txt")).document
    assert first.id == second.id != other.id
    assert first.to_record() == second.to_record()


def test_two_authors_are_split(pipeline):
    lines = header_dump(with_menu=False)
    lines[lines.index("by Jane Doe")] = "By Jane Doe and John Smith"
    meta = pipeline.process(page(lines)).document.metadata
    assert meta["author"] == "Jane Doe; John Smith"
    assert meta["date"] == "2025-05-26"


def test_updated_date_loses_to_published_date(pipeline):
    lines = ["", TITLE, "by Jane Doe", "Updated: June 2, 2025", "Published: May 26, 2025", ""] + PARAGRAPHS
    meta = pipeline.process(page(lines)).document.metadata
    assert meta["date"] == "2025-05-26"


def test_no_header_gives_none(pipeline):
    meta = pipeline.process(page(PARAGRAPHS)).document.metadata
    assert meta["author"] is None
    assert meta["date"] is None
    assert meta["sitename"] is None


def test_too_short_page_is_rejected(pipeline):
    counters = Counters()
    outcome = pipeline.process(page(["Home", "Short note.", "© 2024 Example Times"]), counters)
    assert outcome.reject_reason in {"too_short", "no_article"}
    assert outcome.document.metadata["filter_reason"] == outcome.reject_reason
    assert counters.documents == 0 and sum(counters.rejects.values()) == 1


HEADERISH = st.sampled_from([
    "", "by Jane Doe", "By", "Jane Doe", "May 26, 2025", "Saturday, July 12, 2025", "Updated: June 2, 2025",
    "HONG KONG, April 22, 2025 — The council met.", "3.5.2025", "© 2024 Example Times", "Home", TITLE,
    "Related Posts", "Author: Jane Doe | Staff", "About Example Times",
])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(HEADERISH, st.sampled_from(PARAGRAPHS), st.text(max_size=60)), max_size=30))
def test_pipeline_never_fails_with_an_error(pipeline, lines):
    outcome = pipeline.process(page(lines))
    assert outcome.reject_reason != "error", outcome.document.metadata.get("filter_detail")
    if outcome.reject_reason is None:
        meta = outcome.document.metadata
        assert meta["word_count"] >= 25
        if meta["date"] is not None:
            assert date.fromisoformat(meta["date"])


def test_the_vocabulary_is_data_a_user_folder_extends(tmp_path, pipeline):
    """Issue 17: the words the header reads live in rules/vocabulary.toml; a `--rules` folder's [vocabulary]
    adds to them (here a German author joiner), and changes nothing else."""
    lines = header_dump(with_menu=False)
    lines[lines.index("by Jane Doe")] = "Author: Jane Doe und John Smith"
    assert pipeline.process(page(lines)).document.metadata["author"] == "Jane Doe und John Smith"
    mine = tmp_path / "rules"
    mine.mkdir()
    (mine / "words.toml").write_text('[vocabulary]\nauthor_joiners = ["und", "and"]\n', encoding="utf-8")
    extended = Pipeline(load_config(rules_dirs=[str(mine)]))
    assert extended.rules.vocab.author_joiners == ("and", "und")  # added, not replaced, no repeats
    assert extended.process(page(lines)).document.metadata["author"] == "Jane Doe; John Smith"
    plain = header_dump(with_menu=False)
    assert extended.process(page(plain)).document.to_record() == pipeline.process(page(plain)).document.to_record()


# --- header_from_model: the learned cleaner's title/author lines, read ---------------------------------------------


def _model_header(lines: list[str], p_title: list[float], p_author: list[float], article_end: int | None = None,
                  rankers: HeaderRankers | None = None):
    verdicts = [LineVerdict(i, text, True, None, "body", 0.9) for i, text in enumerate(lines)]
    meta = np.zeros((len(lines), 4))
    meta[:, 1], meta[:, 2] = p_title, p_author
    meta[:, 0] = 1 - meta[:, 1:].sum(axis=1)
    return header_from_model(verdicts, meta, list(range(len(lines))), load_rules(()), "en", article_end, rankers)


BREADCRUMB_PAGE = ["Skip to Content", "Home » Blog » Harbour District Plan Approved", "Harbour District Plan Approved",
                   *ARTICLE]


def test_title_candidates_are_the_likeliest_lines_with_what_surrounds_them():
    lines = BREADCRUMB_PAGE
    verdicts = [LineVerdict(i, text, i >= 3, None if i >= 3 else "model.boilerplate") for i, text in enumerate(lines)]
    probs = np.zeros((len(lines), 4))
    probs[:, 1] = np.linspace(0.9, 0.0, len(lines))
    body = np.linspace(0.0, 1.0, len(lines))
    order, values, features = title_candidates(verdicts, probs, body, list(range(len(lines))), load_rules(()).vocab)
    assert order == list(range(min(TITLE_CANDIDATES, len(lines))))
    assert values[1:3] == [lines[1], lines[2]] and len(values) == len(order)
    assert features.shape == (len(order), len(TITLE_FEATURES))
    column = dict(zip(TITLE_FEATURES, features.T, strict=True))
    assert column["ends_another"].tolist()[:3] == [0, 0, 1]  # the breadcrumb ends with the headline below it
    assert column["separators"][1] == 2 and column["from_first_kept"].tolist()[:3] == [-3, -2, -1]
    assert column["first_line"].tolist()[:2] == [1, 0] and column["rank"].tolist()[:3] == [0, 1, 2]
    assert column["from_article_start"].tolist()[:3] == [-3, -2, -1]
    # the breadcrumb holds the headline; the first lines lie 2, 1 and 0 candidates above the story
    assert column["inside_lines"].tolist()[:3] == [0, 0, 1] and column["position_among"].tolist()[:3] == [0, 1, 2]
    assert column["candidates_to_article"].tolist()[:3] == [2, 1, 0]
    assert column["p_body"][2] == body[2] and column["p_body_below"][2] == body[7]
    assert column["p_body_above"][2] == body[1]


def test_title_features_tell_the_headline_of_the_story_from_a_menu_item():
    """The headline's words recur in the story below it; a menu item's do not, and it sits among list items. The
    story starts at its longest run of kept lines, not at a kept menu line above it."""
    lines = ["* Home", "* Weekend Cycling Events", "* Contact", "* About", "Harbour District Plan Approved", *ARTICLE]
    kept = [False, True, False, False, False] + [True] * len(ARTICLE)
    verdicts = [LineVerdict(i, text, kept[i], None) for i, text in enumerate(lines)]
    probs = np.zeros((len(lines), 4))
    probs[:5, 1] = [0.2, 0.6, 0.2, 0.2, 0.5]
    probs[6, 2] = 0.7  # a byline-like line two below the headline
    body = np.zeros(len(lines))
    order, _values, features = title_candidates(verdicts, probs, body, list(range(len(lines))), load_rules(()).vocab)
    column = {name: dict(zip(order, values, strict=True)) for name, values in zip(TITLE_FEATURES, features.T,
                                                                                   strict=True)}
    assert column["body_overlap"][4] == 0.75 and column["body_overlap"][1] == 0  # "approved" is not in the story
    assert column["list_item"][1] == 1 and column["list_item"][4] == 0 and column["list_neighbours"][1] == 3
    assert column["from_article_start"][4] == -1 and column["from_first_kept"][4] == 3
    assert column["kept_words_below20"][4] == sum(len(line.split()) for line in ARTICLE[:20])
    # the story's opening repeats the headline's words, not the menu item's; the likeliest byline is 2 below it
    assert column["article_overlap"][4] == column["body_overlap"][4] and column["article_overlap"][1] == 0
    assert column["from_author"][4] == 2 and column["p_author_top"][4] == 0.7


def test_the_title_ranker_reorders_the_likeliest_title_lines():
    """The model's likeliest title line is the breadcrumb; the ranker, scoring what surrounds each candidate, takes
    the headline below it. Without a ranker (a model file from before it) the likeliest line stays the title."""
    p_title = [0.1, 0.9, 0.6] + [0.0] * len(ARTICLE)
    no_author = [0.0] * len(BREADCRUMB_PAGE)

    def ranker(features):
        return features[:, TITLE_FEATURES.index("ends_another")] * 0.8  # prefers a line another one ends with

    header = _model_header(BREADCRUMB_PAGE, p_title, no_author, rankers=HeaderRankers(title=ranker))
    assert header.title == "Harbour District Plan Approved" and header.title_line == 2
    assert _model_header(BREADCRUMB_PAGE, p_title, no_author).title == "Home » Blog » Harbour District Plan Approved"
    top = HeaderRankers(title=lambda features: features[:, TITLE_FEATURES.index("first_line")] - 5)
    assert _model_header(BREADCRUMB_PAGE, p_title, no_author, rankers=top).title == "Skip to Content"  # scores < 0


BYLINE_PAGE = [TITLE, "Privacy Policy", "By", "Jane Doe", "Reporter", *ARTICLE]


def test_author_candidates_give_the_name_under_a_lone_label_and_skip_lines_that_name_nobody():
    verdicts = [LineVerdict(i, text, i >= 5, None) for i, text in enumerate(BYLINE_PAGE)]
    probs = np.zeros((len(BYLINE_PAGE), 4))
    probs[:, 2] = [0.0, 0.7, 0.5, 0.1, 0.3] + [0.0] * len(ARTICLE)
    lines, names, features = author_candidates(verdicts, probs, list(range(len(BYLINE_PAGE))), load_rules(()))
    assert names[:3] == ["Privacy Policy", "Jane Doe", "Reporter"] and lines[:3] == [1, 3, 4]
    assert features.shape == (len(names), len(AUTHOR_FEATURES))
    column = dict(zip(AUTHOR_FEATURES, features.T, strict=True))
    assert column["after_label"].tolist()[:3] == [0, 1, 0] and column["from_title"].tolist()[:3] == [1, 2, 4]


def test_author_features_tell_a_name_from_the_pages_ordinary_words():
    """"Share This Post" is words the page prints in lower case and a stop word; a name is neither. A name printed
    as a list item loses its marker, and the feature says it was one."""
    lines = [TITLE, "Share This Post", "* Taya Iv", "Please share this post with friends.", *ARTICLE]
    verdicts = [LineVerdict(i, text, i >= 3, None) for i, text in enumerate(lines)]
    probs = np.zeros((len(lines), 4))
    probs[:, 2] = [0.0, 0.6, 0.5] + [0.0] * (len(lines) - 3)
    _lines, names, features = author_candidates(verdicts, probs, list(range(len(lines))), load_rules(()),
                                                frozenset({"this", "the", "a"}))
    assert names[:2] == ["Share This Post", "Taya Iv"]
    column = dict(zip(AUTHOR_FEATURES, features.T, strict=True))
    assert column["lowercase_elsewhere"].tolist()[:2] == [1.0, 0.0]
    assert column["stop_share"][0] == 1 / 3 and column["stop_share"][1] == 0
    assert column["list_item"].tolist()[:2] == [0, 1]


def test_the_author_ranker_decides_and_may_find_no_author():
    """The ranker's best candidate from `author_min` on; below it, no author (not the model's likeliest line)."""
    p_author = [0.0, 0.7, 0.5, 0.1, 0.3] + [0.0] * len(ARTICLE)
    no_title = [0.9] + [0.0] * (len(BYLINE_PAGE) - 1)

    def after_label(features):
        return features[:, AUTHOR_FEATURES.index("after_label")] * 0.6

    ranked = _model_header(BYLINE_PAGE, no_title, p_author, rankers=HeaderRankers(author=after_label, author_min=0.5))
    assert ranked.author == "Jane Doe"
    unsure = _model_header(BYLINE_PAGE, no_title, p_author, rankers=HeaderRankers(author=after_label, author_min=0.7))
    assert unsure.author is None


def test_the_headline_printed_again_above_the_story_leaves_the_text_with_the_title():
    """A dump's <title> line and the page's heading say the same: the one that became the title and the repeat
    above the story are both the title (seed 002 kept the repeat as body); a repeat inside the story stays."""
    headline = "Harbour District Plan Approved"
    lines = [headline, headline, *ARTICLE[:2], headline, *ARTICLE[2:]]
    verdicts = [LineVerdict(i, text, True, None, "body", 0.9) for i, text in enumerate(lines)]
    meta = np.zeros((len(lines), 4))
    meta[:, 1] = [0.9] + [0.0] * (len(lines) - 1)
    meta[:, 0] = 1 - meta[:, 1]
    header = header_from_model(verdicts, meta, list(range(len(lines))), load_rules(()), "en")
    assert header.title == headline and header.title_line == 0
    assert [(v.kept, v.rule_id) for v in verdicts[:3]] == [(False, META_TITLE), (False, META_TITLE), (True, None)]
    assert verdicts[4].kept


def test_ranked_choice_skips_candidates_that_are_no_headline():
    assert ranked_choice(["A", None, "C"], np.array([0.2, 0.9, 0.5])) == 2
    assert ranked_choice([None, "B"], np.array([0.9, -3.0])) == 1  # a ranker's score is no probability
    assert ranked_choice([None, None], np.array([0.9, 0.1])) is None
    assert ranked_choice([], np.zeros(0)) is None


def test_the_page_headline_stands_for_the_title_line_that_repeats_it():
    """A dump's first line is the <title>; the heading that repeats most of it is the page's own headline."""
    lines = ["Best Cameras of 2026 | Example Reviews", "Home", "The Best Cameras of 2026", *ARTICLE]
    header = _model_header(lines, [0.9, 0.0, 0.2] + [0.0] * len(ARTICLE), [0.0] * len(lines))
    assert header.title == "The Best Cameras of 2026" and header.title_line == 2


def test_the_title_line_stays_when_no_heading_repeats_it():
    lines = ["Best Cameras of 2026 | Example Reviews", "Home", "Our Newsletter", *ARTICLE]
    header = _model_header(lines, [0.9, 0.0, 0.2] + [0.0] * len(ARTICLE), [0.0] * len(lines))
    assert header.title == "Best Cameras of 2026"


@pytest.mark.parametrize("label", ["By", "Written by", "Author:", "Contributors:"])
@pytest.mark.parametrize("p_label", [0.6, 0.0])  # the model picks the label line, or no line at all
def test_a_byline_split_over_two_lines_gives_the_name(label, p_label):
    """bs4-like renderers print `By <a>Jane Doe</a>` as two lines."""
    lines = [TITLE, label, "Jane Doe", *ARTICLE]
    header = _model_header(lines, [0.9] + [0.0] * (len(lines) - 1), [0.0, p_label] + [0.0] * (len(lines) - 2))
    assert header.author == "Jane Doe"


def test_a_byline_printed_as_a_list_item_loses_the_marker():
    lines = [TITLE, "* by Jane Doe ⋅ Senior Editor", *ARTICLE]
    header = _model_header(lines, [0.9] + [0.0] * (len(lines) - 1), [0.0, 0.8] + [0.0] * len(ARTICLE))
    assert header.author == "Jane Doe"


@pytest.mark.parametrize("label", ["By", "Author", "Written by:"])
def test_the_heuristic_reads_the_name_under_a_lone_byline_label(pipeline, label):
    """The label's name is the line *below* it, also when the header is searched upwards from the article."""
    lines = ["Saturday, July 12, 2025", *MENU, "", TITLE, "Copy Link", label, "Jane Doe", "May 26, 2025", "",
             *PARAGRAPHS]
    meta = pipeline.process(page(lines)).document.metadata
    assert meta["author"] == "Jane Doe"
    assert meta["provenance"]["author"] == "text:by-line-then-name"


def test_no_byline_is_taken_from_below_the_section_marker_that_ended_the_article():
    """Below `Related Articles` the bylines are other stories'."""
    lines = [TITLE, *ARTICLE, "Related Articles", "Another Story", "Jane Doe"]
    p_author = [0.0] * (len(lines) - 1) + [0.9]
    assert _model_header(lines, [0.9] + [0.0] * (len(lines) - 1), p_author).author == "Jane Doe"
    assert _model_header(lines, [0.9] + [0.0] * (len(lines) - 1), p_author, len(ARTICLE) + 1).author is None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="ab c\u00e9", max_size=12), min_size=1, max_size=12),
       st.text(alphabet="ab c\u00e9", min_size=1, max_size=4))
def test_lines_holding_counts_the_lines_that_contain_the_needle(lines, needle):
    """The author ranker's `name_in_lines`, by `str.find` over the page, is the per-line test it replaced."""
    starts = list(itertools.accumulate((len(line) + 1 for line in lines[:-1]), initial=0))
    assert _lines_holding("\n".join(lines), starts, needle) == sum(needle in line for line in lines)


@pytest.mark.parametrize("line,author", [
    ("By Chen Zhao, Daryl Fairweather", "Chen Zhao; Daryl Fairweather"),  # more names after a comma
    ("Written by Danielle DeSiato, Donna Enzmann, and Natalie Nguyen",
     "Danielle DeSiato; Donna Enzmann; Natalie Nguyen"),
    ("Dylan Bailey, MS, RD, FAND", "Dylan Bailey, MS, RD, FAND"),  # credentials stay with the name
    ("Genevieve Carlton, Ph.D.", "Genevieve Carlton, Ph.D."),  # an abbreviation keeps its period
    ("By Jane Doe, May 3, 2025", "Jane Doe"),  # a date ends the byline
    ("Jane Doe, staff writer", "Jane Doe"),  # so does a lower-case word
    ("Holly Wilgus, E-RYT 200", "Holly Wilgus"),  # and a number
    ("By Korin MillerPublished: Jan 29, 2025", "Korin Miller"),  # a renderer glued the next word on
    ("* Taya Iv", "Taya Iv"),
    ("By Jane Doe.", "Jane Doe"),
    ("May 3, 2025", None),
    ("© 2025 Example Media", None),
])
def test_the_model_headers_author_value_reads_a_bylines_names(line, author):
    assert _author_value(line, load_rules(())) == author


def test_strip_value_keeps_an_abbreviations_period():
    assert [strip_value(v) for v in ("Jane Doe.", " Jane Doe, ", "John Smith Jr.", "A. B. Doe, M.D.", "Acme Inc.")] \
        == ["Jane Doe", "Jane Doe", "John Smith Jr.", "A. B. Doe, M.D.", "Acme Inc"]


def test_a_short_line_with_a_byline_word_inside_is_an_author_candidate():
    """A dated byline ("October 11, 2023 by Autumn Huerter") or one printed as a list item, which the model finds
    unlikely as an author line, is a candidate all the same: the name after the word, `by_inside` set."""
    lines = [TITLE, "October 11, 2023 by Autumn Huerter", *ARTICLE]
    verdicts = [LineVerdict(i, text, i >= 2, None) for i, text in enumerate(lines)]
    probs = np.full((len(lines), 4), 0.01)
    _lines, names, features = author_candidates(verdicts, probs, list(range(len(lines))), load_rules(()))
    column = dict(zip(AUTHOR_FEATURES, features.T, strict=True))
    found = names.index("Autumn Huerter")
    assert column["by_inside"][found] == 1 and _lines[found] == 1


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="anByd &,.MSJo2:|", max_size=30))
@example("and, MS")
def test_the_model_headers_author_value_reads_any_line_without_failing(line):
    """A byline's names are read from untrusted text: any line gives a string or None (`and, MS` once failed)."""
    value = _author_value(line, load_rules(()))
    assert value is None or isinstance(value, str)


# --- hard-wrapped dumps -----------------------------------------------------------------------------------

LONG_TITLE = ("Council Approves Harbour District Plan After Two Years of Debate Over Flooding and Housing on the Old "
              "Docks")


def _wrapped(lines: list[str], width: int) -> list[str]:
    return [piece for line in lines
            for piece in (textwrap.wrap(line, width, break_long_words=False) if len(line) > width else [line])]


@pytest.mark.parametrize("width", [72, 79])
@pytest.mark.parametrize("method", ["heuristic", "model"])
def test_a_headline_hard_wrapped_over_two_lines_is_read_whole(width, method):
    """lynx and w3m wrap at ~80 columns: a long headline takes two lines of the dump, and both leave the text."""
    lines = [LONG_TITLE if line == TITLE else line for line in header_dump(with_menu=True)]
    wrapped = _wrapped(lines, width)
    assert LONG_TITLE not in wrapped and wrap_width(wrapped) == max(len(line) for line in wrapped if " " in line)
    outcome = Pipeline(load_config(clean={"method": method})).process(page(wrapped))
    assert outcome.document.metadata["title"] == LONG_TITLE
    head, tail = textwrap.wrap(LONG_TITLE, width)
    kept = outcome.document.text.split("\n")
    assert head not in kept and tail not in kept


@pytest.mark.parametrize("method", ["heuristic", "model"])
def test_a_wrapped_headline_right_above_the_story_leaves_the_text_whole(method):
    lines = _wrapped(MENU + ["", LONG_TITLE, ""] + PARAGRAPHS + ["", "© 2024 Example Times"], 72)
    outcome = Pipeline(load_config(clean={"method": method})).process(page(lines))
    head, tail = textwrap.wrap(LONG_TITLE, 72)
    assert outcome.document.metadata["title"] == LONG_TITLE
    kept = outcome.document.text.split("\n")
    assert head not in kept and tail not in kept


def test_a_dump_with_one_line_a_paragraph_is_not_wrapped():
    lines = header_dump(with_menu=True)
    assert wrap_width(lines) is None
    # eight lines that fill the width and go on at the next line
    assert wrap_width(["a " * 40] * 8) is None and wrap_width(["a " * 40] * 9) == 79
    assert wrap_width(["a " * 100] * 20) is None  # wider than any terminal
    # a long URL overruns the width a wrapped dump was broken at; a line of words does not
    assert wrap_width(["a " * 40] * 9 + ["https://example.com/" + "x" * 90]) == 79
    # nor does a lynx reference to one
    assert wrap_width(["a " * 40] * 9 + ["   12. https://example.com/" + "x" * 90]) == 79
    # one-line paragraphs of about the same length: each ends its sentence, or stands between blank lines
    sentences = [f"Paragraph {k} says what the council decided about the harbour plan." for k in range(12)]
    assert wrap_width(sentences) is None
    assert wrap_width([line for sentence in sentences for line in (sentence.rstrip("."), "")]) is None


def _verdicts(lines: list[str]) -> list[LineVerdict]:
    return [LineVerdict(i, line.strip(), bool(line.strip()), None) for i, line in enumerate(lines)]


def test_a_wrapped_run_stops_at_a_sentence_end_a_short_line_a_blank_and_a_repeat():
    lines = ["Council Approves Harbour District Plan After Two Years of Debate Over",  # 70 columns
             "Flooding and the Old Docks",
             "by Jane Doe", "", "Council Approves Harbour District Plan After Two Years of Debate Over",
             "Council Approves Harbour District Plan", "The council met on Tuesday and voted for the plan in the end.",
             "It was late."]
    verdicts, widths = _verdicts(lines), [len(line) for line in lines]
    assert wrapped_run(verdicts, widths, 0, 72) == (0, 1)
    assert wrapped_run(verdicts, widths, 1, 72) == (0, 1)  # from the second piece too
    assert wrapped_run(verdicts, widths, 0, 90) == (0, 0)  # 70 + 1 + 8 columns fit in 90: not wrapped there
    assert wrapped_run(verdicts, widths, 4, 72) == (4, 4)  # the next line repeats it
    assert wrapped_run(verdicts, widths, 6, 63) == (6, 6)  # a sentence ends the line
    assert wrapped_run(verdicts, widths, 0, None) == (0, 0)
    underlined = _verdicts([lines[0], "=" * 70, "by Jane Doe"])  # a heading's rule is no second line of it
    assert wrapped_run(underlined, [70, 70, 11], 0, 72) == (0, 0)
    story = "Flooding and the Old Docks were what the council argued about for the two years before"  # 70 columns
    into_story = _verdicts([lines[0], story])
    into_story[0].kept, into_story[1].kept = False, True  # a kept line that runs on is the article's, not the title's
    assert wrapped_run(into_story, [70, 70], 0, 72) == (0, 0)
    into_story[1].text = "Flooding and the Old Docks"  # the short end of a headline the cleaner kept
    assert wrapped_run(into_story, [70, 26], 0, 72) == (0, 1)


@given(st.lists(st.text(alphabet=st.sampled_from("ab .?\t"), max_size=30), max_size=20), st.integers(0, 25),
       st.one_of(st.none(), st.integers(1, 40)))
def test_a_wrapped_run_holds_its_line_and_stays_on_the_page(lines, line, width):
    verdicts, widths = _verdicts(lines), [len(text.rstrip()) for text in lines]
    if line >= len(lines):
        return
    first, last = wrapped_run(verdicts, widths, line, width)
    assert 0 <= first <= line <= last < len(lines) and last - first < 4
    assert all(verdicts[k].text for k in range(first, last + 1)) or first == last
