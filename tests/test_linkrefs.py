"""pipeline.clean.linkrefs: the link references of lynx-style dumps, and the text stage's use of them."""

from __future__ import annotations

import pytest
from conftest import ARTICLE
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.api import Cleaner
from pipeline.audit import audit
from pipeline.clean.linkrefs import SIG_LINK_LIST, link_references
from pipeline.config import load_config
from pipeline.document import RawPage
from pipeline.stages.runner import Pipeline

MENU = ["[1]Home [2]News [3]World [4]Business [5]Sport", ""]
STORY = [
    "Harbour plan approved after two years of debate",
    "",
    "By [6]Jane Doe",
    "",
    ARTICLE[0].replace("new plan", "new [7]plan"),
    "",
    *ARTICLE[1:],
]
REFERENCES = ["", "References", "", *(f"   {n}. https://example.com/{n}" for n in range(1, 8)),
              "", "   Hidden links:", "   8. https://example.com/hidden", ""]


def test_the_list_is_blanked_and_the_markers_it_numbers_are_taken_out():
    lines = MENU + STORY + REFERENCES
    found = link_references(lines)
    assert found is not None
    heading = lines.index("References")
    assert found.listed == range(heading, len(lines))
    assert len(found.lines) == len(lines)
    assert all(not line for line in found.lines[heading:])
    assert found.lines[0] == "Home News World Business Sport"
    assert found.lines[len(MENU) + 2] == "By Jane Doe"
    assert "new plan" in "\n".join(found.lines)


def test_a_marker_the_list_does_not_number_stays():
    lines = ["A study [12] found it, and [2]a link.", "", "References", "", "   1. https://a.example/",
             "   2. /local/page"]
    found = link_references(lines)
    assert found is not None and found.lines[0] == "A study [12] found it, and a link."


def test_a_line_of_markers_alone_is_reported_and_markers_glued_to_a_word_stay():
    lines = ["Read [1]this, then x = a[2] + b[3].", "[2] [3]", "", "References", "", "   1. https://a.example/",
             "   2. https://b.example/ Title", "", "   Hidden links:", "   3. https://c.example/"]
    found = link_references(lines)
    assert found is not None
    assert found.lines[0] == "Read this, then x = a[2] + b[3]."
    assert found.emptied == (1,) and not found.lines[1].strip()


def test_a_pages_own_list_of_links_is_not_taken_for_lynx_s():
    """A numbered list of URLs under `References` at the end, but the text above marks too few of them."""
    lines = ["Text cites [1] and [2].", "", "References", "", *(f"{n}. https://example.org/{n}" for n in range(1, 6))]
    assert link_references(lines) is None


@pytest.mark.parametrize("lines", [
    ARTICLE,  # no list at all
    ["Footnotes make claims [1] checkable [2].", "", "References", "", "1. Smith, J. (2001). A book.",
     "2. Doe, J. (2004). Another."],  # an article's own references: citations, not link targets
    ["A claim [1].", "", "References", "", "   1. https://a.example/", "", "More text."],  # not the end
    ["A claim [2].", "", "References", "", "   2. https://a.example/"],  # lynx numbers from 1
    ["   1. https://a.example/", "   2. https://b.example/"],  # numbered links without the heading
    ["A claim [1].", "", "Further reading", "", "   1. https://a.example/"],
    [],
    ["References"],
])
def test_any_other_dump_is_left_as_it_is(lines):
    assert link_references(lines) is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=80), st.sampled_from(["References", "", "   1. https://a.example/",
                                                                   "[1]x", "Hidden links:"])), max_size=40))
def test_any_dump_keeps_its_line_count_and_only_loses_markers(lines):
    found = link_references(lines)
    if found is None:
        return
    assert len(found.lines) == len(lines)
    for before, after in zip(lines[: found.listed.start], found.lines, strict=False):
        assert len(after) <= len(before)


@pytest.mark.parametrize("method", ["heuristic", "model"])
def test_a_lynx_dump_loses_its_list_and_markers_and_keeps_its_byline(method):
    lines = MENU + STORY + REFERENCES
    data = "\n".join(lines).encode("utf-8")
    outcome = Pipeline(load_config(clean={"method": method})).process(RawPage("lynx.txt", "lynx.txt", data))
    doc = outcome.document
    assert doc.metadata["author"] == "Jane Doe"
    assert "[" not in doc.text and "example.com" not in doc.text
    assert "new plan for the old harbour district" in doc.text
    verdicts = doc.lines.verdicts
    assert len(verdicts) == len(lines)
    listed = [v for v in verdicts if v.index >= lines.index("References") and v.text]
    assert listed and all(not v.kept and v.rule_id == SIG_LINK_LIST for v in listed)
    assert listed[0].text == "References" and listed[-1].text == "8. https://example.com/hidden"
    cleaning = doc.metadata["cleaning"]
    assert cleaning["lines_in"] == sum(1 for line in lines if line.strip())
    assert {"rule": SIG_LINK_LIST, "lines": len(listed), "words": sum(len(v.text.split()) for v in listed)} \
        in cleaning["rules_hit"]


@pytest.mark.parametrize("method", ["heuristic", "model"])
def test_explain_never_shows_a_link_as_the_pages_date(method):
    """A link's URL often holds a date: explain names the page's date line, not a line of the list."""
    lines = [*MENU, *STORY[:3], "May 1, 2024", *STORY[3:], "", "References", "",
             *(f"   {n}. https://example.com/news/2024-05-01/{n}" for n in range(1, 8))]
    page = RawPage("lynx.txt", "lynx.txt", "\n".join(lines).encode("utf-8"))
    result = audit(Cleaner(load_config(clean={"method": method})), page)
    assert result.record["metadata"]["date"] == "2024-05-01"
    dated = [line for line in result.lines if line.rule == "meta.date"]
    assert [line.text for line in dated] == ["May 1, 2024"]
    assert all(line.rule == SIG_LINK_LIST for line in result.lines if "example.com" in line.text)
