"""pipeline.stages.html.ExtractHtml: trafilatura's text and metadata, our rules over its lines, the text fallback."""

from __future__ import annotations

import re

import pytest
from conftest import ARTICLE
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pipeline.config import load_config
from pipeline.document import RawPage
from pipeline.rules import load_rules
from pipeline.stages.html import free_text_date
from pipeline.stages.runner import Pipeline


@pytest.fixture(scope="module")
def pipe() -> Pipeline:
    return Pipeline(load_config())


def page(body: str, head: str = "") -> bytes:
    return (f"<!DOCTYPE html><html><head>{head}</head><body>{body}</body></html>").encode()


def run(pipe: Pipeline, data: bytes, name: str = "page.html"):
    return pipe.process(RawPage(source_path=name, rel_path=name, data=data))


ARTICLE_HTML = "<article><h1>Harbour plan approved</h1>" + "".join(f"<p>{p}</p>" for p in ARTICLE) + "</article>"
HEAD = ('<title>Harbour plan approved | Harbour Times</title><meta property="og:site_name" content="Harbour Times">'
        '<meta name="author" content="Jane Doe"><meta property="article:published_time" content="2025-03-04">')


def test_text_and_metadata(pipe):
    outcome = run(pipe, page("<nav><a href='/'>Home</a> <a href='/n'>News</a></nav>" + ARTICLE_HTML
                             + "<footer>© 2025 Harbour Times</footer>", HEAD))
    assert outcome.reject_reason is None
    doc = outcome.document
    meta = doc.metadata
    assert meta["source_format"] == "html"
    assert meta["title"] == "Harbour plan approved"  # the `| Site` suffix goes when it names the site
    assert meta["author"] == "Jane Doe"
    assert meta["date"] == "2025-03-04"
    assert meta["sitename"] == "Harbour Times"
    assert meta["language"] == "en"
    assert meta["provenance"]["text"] == "trafilatura"
    for paragraph in ARTICLE:
        assert paragraph in doc.text
    assert "Home" not in doc.text and "©" not in doc.text


def test_rules_drop_what_trafilatura_keeps(pipe):
    """A share bar and an `Advertisement` label inside the article go by the drop rules, with their ids."""
    body = ARTICLE_HTML.replace("</article>", "<p>Advertisement</p><p>We use cookies to improve your experience.</p>"
                                              "</article>")
    doc = run(pipe, page(body, HEAD)).document
    assert "Advertisement" not in doc.text and "cookies" not in doc.text
    hits = {hit["rule"]: hit["lines"] for hit in doc.metadata["cleaning"]["rules_hit"]}
    assert "cookie.banner" in hits
    assert sum(hits.values()) >= 2


def test_extracted_text_and_metadata_are_normalised(pipe):
    """Only what is extracted is normalised: zero-width and control characters leave text and title."""
    body = ARTICLE_HTML.replace("The city council", "The\u200b city\u00ad council").replace(
        "<h1>Harbour plan approved</h1>", "<h1>Harbour\u200b plan approved</h1>")
    head = HEAD.replace("<title>Harbour plan", "<title>Harbour\u200b plan")
    doc = run(pipe, page(body, head)).document
    assert "The city council" in doc.text
    assert "\u200b" not in doc.text and "\u00ad" not in doc.text
    assert "\u200b" not in doc.metadata["title"]


def test_crlf_and_non_utf8_pages(pipe):
    data = page(ARTICLE_HTML.replace("harbour district", "harbour district café"), HEAD).replace(b"\n", b"\r\n")
    doc = run(pipe, data.decode("utf-8").encode("cp1252")).document
    assert "café" in doc.text
    assert "\r" not in doc.text


def test_fallback_renders_the_page_when_trafilatura_finds_nothing(pipe):
    """trafilatura discards <aside> content whole; the rendered page still yields the article via the text path."""
    body = "<aside>" + "".join(f"<p>{p}</p>" for p in ARTICLE) + "</aside>"
    outcome = run(pipe, page(body))
    assert outcome.reject_reason is None
    doc = outcome.document
    assert doc.metadata["provenance"]["text"] == "html-fallback:text-dump"
    assert doc.metadata["source_format"] == "html"
    assert doc.text.split("\n") == ARTICLE


def test_page_without_article_is_rejected(pipe):
    outcome = run(pipe, page("<nav><a href='/'>Home</a></nav><footer>© 2025</footer>"))
    assert outcome.reject_reason in ("no_article", "too_short")


NO_DATE_HEAD = HEAD.split('<meta name="author"')[0]  # the title and the site's name, no date in the markup
PRINTED_DATE = ARTICLE_HTML.replace("</h1>", "</h1><p>Published on 4 March 2025 by Jane Doe</p>")


def test_a_date_printed_in_the_text_when_the_markup_has_none(pipe):
    """No date in the markup: htmldate's extensive search reads the one the page prints, and says so."""
    meta = run(pipe, page(PRINTED_DATE, NO_DATE_HEAD)).document.metadata
    assert meta["date"] == "2025-03-04"
    assert meta["provenance"]["date"] == "htmldate:text"
    off = Pipeline(load_config(html={"extensive_date_search": False}))
    assert run(off, page(PRINTED_DATE, NO_DATE_HEAD)).document.metadata["date"] is None


def test_the_markup_date_comes_first(pipe):
    meta = run(pipe, page(PRINTED_DATE.replace("4 March", "9 March"), HEAD)).document.metadata
    assert meta["date"] == "2025-03-04"
    assert meta["provenance"]["date"] == "trafilatura"


def test_a_bare_year_is_no_publication_date(pipe):
    """htmldate's extensive search reads `© 2025` as 2025-01-01: a January 1st from the page's text is dropped."""
    from htmldate import find_date

    html = page(ARTICLE_HTML + "<footer>© 2025 Harbour Times</footer>", NO_DATE_HEAD)
    assert find_date(html.decode(), extensive_search=True, original_date=True) == "2025-01-01"  # what it would be
    assert run(pipe, html).document.metadata["date"] is None


def test_a_month_without_its_day_is_no_publication_date(pipe):
    """htmldate's extensive search reads `Posted 11/2024` as 2024-11-01; the page prints no full calendar date, so
    the search is not asked at all."""
    from htmldate import find_date

    html = page(ARTICLE_HTML.replace("</h1>", "</h1><p>Posted 11/2024</p>"), NO_DATE_HEAD)
    assert find_date(html.decode(), extensive_search=True, original_date=True) == "2024-11-01"  # what it would be
    assert run(pipe, html).document.metadata["date"] is None


_VOCAB = load_rules().vocab


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=120), st.sampled_from(["March 4, 2025", "2025-03-04", "04.03.2025", "Posted 11/2024",
                                               "© 2025", "<time>4 March 2025</time>", ""]))
@example("<p>2025-13-45</p>", "2025-03-04")
def test_any_page_gives_a_day_or_no_date(noise, printed):
    """Untrusted HTML in: a calendar day (never a January 1st from the text search) or None, never an error."""
    found = free_text_date(f"<html><body><p>{noise}</p><p>{printed}</p>{noise}</body></html>", None, _VOCAB)
    assert found is None or (re.fullmatch(r"\d{4}-\d{2}-\d{2}", found) and not found.endswith("-01-01"))


def test_same_page_same_record(pipe):
    data = page(ARTICLE_HTML, HEAD)
    first, second = run(pipe, data).document, run(pipe, data).document
    assert first.text == second.text and first.metadata == second.metadata


def test_release_caches_empties_trafilaturas_text_caches(pipe):
    """Worker memory grew with every page until trafilatura's 1,024-entry caches of whole texts filled;
    the worker empties them between chunks. Emptying changes no output."""
    from trafilatura import utils

    from pipeline.stages.html import release_caches

    data = page(ARTICLE_HTML, HEAD)
    before = run(pipe, data).document
    assert utils.trim.cache_info().currsize > 0
    release_caches()
    assert utils.trim.cache_info().currsize == 0
    assert utils.line_processing.cache_info().currsize == 0
    after = run(pipe, data).document
    assert (after.text, after.metadata) == (before.text, before.metadata)


GERMAN = [
    "Der Stadtrat hat am Dienstagabend den neuen Plan für den Hafen beschlossen, nach einer langen Debatte.",
    "Die Anwohner hatten seit Jahren gefordert, dass die Kaimauer repariert wird, weil die Stürme der letzten "
    "beiden Winter große Schäden angerichtet haben.",
    "Der Bürgermeister sagte, die Arbeiten sollen im Frühjahr beginnen und bis zum Ende des nächsten Jahres "
    "abgeschlossen sein, wenn das Wetter es zulässt.",
    "Die Opposition kritisierte, dass die Kosten für das Projekt noch immer nicht vollständig bekannt sind und "
    "dass der Haushalt dafür keine Reserve vorsieht.",
]


def test_the_html_fallback_reads_the_header_knowing_the_language(pipe):
    """Issue 17: where trafilatura found nothing, the rendered page went through the text cleaner and the
    header before language detection, so a dateline in the page's language was read with no language (and
    missed). It now goes through the whole text chain, as a dump does: the German date is found."""
    body = "<aside><p>Hafenplan beschlossen</p><p>4. März 2025</p>" + "".join(f"<p>{p}</p>" for p in GERMAN) \
        + "</aside>"
    outcome = run(pipe, page(body))
    assert outcome.reject_reason is None
    meta = outcome.document.metadata
    assert meta["provenance"]["text"] == "html-fallback:text-dump"
    assert meta["language"] == "de"
    assert meta["date"] == "2025-03-04"
    text = Pipeline(load_config()).process(RawPage(source_path="p.txt", rel_path="p.txt", data="\n\n".join(
        ["Hafenplan beschlossen", "4. März 2025", *GERMAN]).encode())).document
    assert text.metadata["date"] == meta["date"]  # as the same page as a text dump
