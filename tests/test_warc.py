"""Web archives: damage (a cut at every 10 %, a text file named .warc), HTTP status, which records are
pages (`dns:`, `resource`, no type), Content-Encoding. Archives are written by warcio in each test."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import pytest
from conftest import ARTICLE
from hypothesis import given, settings
from hypothesis import strategies as st
from test_sources import html_page

from pipeline.io.sources import read_inputs


def _record(writer, url: str, body: bytes, rec_type: str = "response", status: str = "200 OK",
            headers: list[tuple[str, str]] | None = None, warc_type: str | None = None):
    from warcio.statusandheaders import StatusAndHeaders

    http = None
    if headers is not None:
        http = StatusAndHeaders(status, headers, protocol="HTTP/1.1")
    return writer.create_warc_record(url, rec_type, payload=io.BytesIO(body), http_headers=http,
                                     warc_content_type=warc_type)


def write_warc(records: list[dict], gz: bool = True) -> tuple[bytes, list[int]]:
    """The archive's bytes and the offset at which each record ends."""
    from warcio.warcwriter import WARCWriter

    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=gz)
    ends = []
    for spec in records:
        writer.write_record(_record(writer, **spec))
        ends.append(buffer.tell())
    return buffer.getvalue(), ends


HTML = [("Content-Type", "text/html; charset=utf-8")]
STORIES = [html_page(f"Harbour Story {n}", ARTICLE[n:] + ARTICLE[:n]).encode() for n in range(5)]


def pages_of(tmp_path: Path, name: str, data: bytes, skipped: Counter | None = None) -> list:
    (tmp_path / name).write_bytes(data)
    if skipped is None:
        return list(read_inputs(tmp_path / name, tmp_path, 10_000_000))
    return list(read_inputs(tmp_path / name, tmp_path, 10_000_000, skipped))


@pytest.mark.parametrize("gz", [True, False], ids=["warc.gz", "warc"])
def test_a_cut_at_every_tenth_keeps_the_whole_records_and_is_one_bad_warc(tmp_path: Path, gz: bool):
    """A .warc.gz cut at 70 % gave 3 documents and no reject; a cut .warc published its cut record as a
    document. Every record whole before the cut is a page, none after, and a cut inside a record is one
    `bad_warc` naming the file and that record's offset."""
    data, ends = write_warc([{"url": f"https://example.org/{n}", "body": body, "headers": HTML}
                             for n, body in enumerate(STORIES)], gz=gz)
    starts = [0, *ends[:-1]]
    name = "crawl.warc.gz" if gz else "crawl.warc"
    for tenth in range(1, 11):
        cut = len(data) * tenth // 10
        pages = pages_of(tmp_path, name, data[:cut])
        whole = [n for n, end in enumerate(ends) if end <= cut]
        documents = [p for p in pages if p.reject is None]
        assert [p.data for p in documents] == [STORIES[n] for n in whole], tenth
        rejects = [(p.reject.reason, p.reject.detail) for p in pages if p.reject]
        if cut in (0, *ends):
            assert rejects == [], tenth
        else:
            start = starts[len(whole)]
            assert len(rejects) == 1 and rejects[0][0] == "bad_warc", (tenth, rejects)
            assert rejects[0][1].startswith(f"{tmp_path / name}@{start}: "), (tenth, rejects)


def test_a_text_file_named_warc_is_one_bad_warc_and_no_warnings(tmp_path: Path, capfd):
    """It was read as 50 ARC records (50 `empty` rejects) with a warning on stderr for each."""
    text = "".join(f"line {n} of a text file\n" for n in range(50)).encode()
    pages = pages_of(tmp_path, "notes.warc", text)
    assert [(p.reject.reason, p.reject.detail) for p in pages] == [
        ("bad_warc", f"{tmp_path / 'notes.warc'}@0: not a WARC record (ARC format)")]
    assert capfd.readouterr().err == ""


def test_non_2xx_responses_are_http_status_rejects(tmp_path: Path):
    """404 and 403 pages were kept as documents, redirect bodies became too_short or empty rejects."""
    data, _ = write_warc([
        {"url": "https://example.org/ok", "body": STORIES[0], "headers": HTML},
        {"url": "https://example.org/gone", "body": STORIES[1], "status": "404 Not Found", "headers": HTML},
        {"url": "https://example.org/secret", "body": b"<html>no</html>", "status": "403 Forbidden",
         "headers": HTML},
        {"url": "https://example.org/old", "body": b"", "status": "301 Moved Permanently",
         "headers": [("Location", "https://example.org/new")]},
        {"url": "https://example.org/missing.png", "body": b"\x89PNG", "status": "404 Not Found",
         "headers": [("Content-Type", "image/png")]},
    ])
    pages = pages_of(tmp_path, "crawl.warc.gz", data)
    assert [p.meta["url"] for p in pages] == ["https://example.org/ok", "https://example.org/gone",
                                              "https://example.org/secret", "https://example.org/old"]
    assert pages[0].reject is None
    assert [(p.reject.reason, p.reject.detail.split(": ", 1)[1]) for p in pages[1:]] == [
        ("http_status", "HTTP 404 Not Found"), ("http_status", "HTTP 403 Forbidden"),
        ("http_status", "HTTP 301 Moved Permanently -> https://example.org/new")]


def test_only_html_responses_and_resources_are_pages_the_rest_is_counted(tmp_path: Path):
    """`dns:` records (no HTTP Content-Type) were read as HTML; `text/html` resource records were skipped."""
    data, _ = write_warc([
        {"url": "dns:example.org", "body": b"20250101 example.org. 300 IN A 192.0.2.1\n",
         "warc_type": "text/dns"},
        {"url": "https://example.org/saved", "body": STORIES[0], "rec_type": "resource", "warc_type": "text/html"},
        {"url": "https://example.org/logo.png", "body": b"\x89PNG\r\n", "rec_type": "resource",
         "warc_type": "image/png"},
        {"url": "https://example.org/untyped", "body": STORIES[1], "headers": []},
        {"url": "https://example.org/untyped.txt", "body": b"just words", "headers": []},
        {"url": "https://example.org/style.css", "body": b"p {}", "headers": [("Content-Type", "text/css")]},
        {"url": "https://example.org/x", "body": b"GET / HTTP/1.1\r\n\r\n", "rec_type": "request",
         "warc_type": "application/http; msgtype=request"},
    ])
    skipped: Counter = Counter()
    pages = pages_of(tmp_path, "crawl.warc.gz", data, skipped)
    assert [(p.meta["url"], p.data) for p in pages] == [("https://example.org/saved", STORIES[0]),
                                                        ("https://example.org/untyped", STORIES[1])]
    assert skipped == {"text/dns": 1, "image/png": 1, "no type, not HTML": 1, "text/css": 1, "request": 1}
    # a run reports them (and makes no record of them: every stream holds pages only)
    from pipeline.config import load_config
    from pipeline.run.corpus import run_corpus

    report = run_corpus(tmp_path / "crawl.warc.gz", tmp_path / "out", load_config(), workers=0,
                        progress=False).report
    assert report["records_skipped"] == skipped and report["pages"] == 2


def test_brotli_bodies_are_decoded(tmp_path: Path):
    """`Content-Encoding: br` was passed through compressed and rejected as `binary`."""
    import brotli

    data, _ = write_warc([{"url": "https://example.org/br", "body": brotli.compress(STORIES[2]),
                           "headers": HTML + [("Content-Encoding", "br")]}])
    assert [p.data for p in pages_of(tmp_path, "crawl.warc.gz", data)] == [STORIES[2]]


def test_an_unsupported_content_encoding_is_undecodable_unless_the_body_is_plain_html(tmp_path: Path):
    data, _ = write_warc([
        {"url": "https://example.org/z", "body": b"\x28\xb5\x2f\xfd" + bytes(range(200)),
         "headers": HTML + [("Content-Encoding", "zstd")]},
        {"url": "https://example.org/stored-decoded", "body": STORIES[3],
         "headers": HTML + [("Content-Encoding", "zstd")]},
    ])
    pages = pages_of(tmp_path, "crawl.warc.gz", data)
    assert pages[0].reject.reason == "undecodable" and "'zstd' is not supported" in pages[0].reject.detail
    assert pages[1].data == STORIES[3] and pages[1].reject is None


def test_a_warc_gzipped_whole_in_several_members_of_cat(tmp_path: Path):
    """Per-record gzip members concatenated (`cat a.warc.gz b.warc.gz`) read whole."""
    first, _ = write_warc([{"url": "https://example.org/a", "body": STORIES[0], "headers": HTML}])
    second, _ = write_warc([{"url": "https://example.org/b", "body": STORIES[1], "headers": HTML}])
    assert [p.data for p in pages_of(tmp_path, "cat.warc.gz", first + second)] == STORIES[:2]


_FUZZED = {gz: write_warc([{"url": f"https://example.org/{n}", "body": body, "headers": HTML}
                           for n, body in enumerate(STORIES[:3])], gz=gz)[0] for gz in (True, False)}


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_damaged_archives_give_whole_pages_or_rejects_never_a_crash(tmp_path_factory, data):
    """Any cut, then any changed bytes: the reader never raises (warcio raises AttributeError and more on
    some cuts), and when only cut, whatever is a page is a record's whole payload."""
    gz = data.draw(st.booleans())
    blob = bytearray(_FUZZED[gz][:data.draw(st.integers(0, len(_FUZZED[gz])))])
    changed = data.draw(st.integers(0, 3)) if blob else 0
    for _ in range(changed):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    folder = tmp_path_factory.mktemp("warc")
    pages = pages_of(folder, "fuzz.warc.gz" if gz else "fuzz.warc", bytes(blob))
    assert sum(1 for p in pages if p.reject is not None and p.reject.reason == "bad_warc") <= 1
    if not changed:
        assert all(p.reject is not None or p.data in STORIES for p in pages)
