"""Every input kind through `run`: HTML, HTML saved as .txt, gzip, JSONL (with a bad line), WARC, sidecars."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ARTICLE, ROOT, SEEDS_RAW, stream_records
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.document import RawPage
from pipeline.io.sources import discover, read_inputs


def html_page(title: str, paragraphs: list[str], site: str = "Harbour Times") -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f"<!DOCTYPE html><html><head><title>{title} | {site}</title>"
        f'<meta property="og:site_name" content="{site}">'
        f'<meta name="author" content="Jane Doe"><meta property="article:published_time" content="2025-03-04">'
        f"</head><body><nav><a href='/'>Home</a> <a href='/news'>News</a></nav>"
        f"<article><h1>{title}</h1>{body}<p>Advertisement</p></article>"
        f"<footer>© 2025 {site}</footer></body></html>"
    )


def warc_bytes(pages: list[tuple[str, str]]) -> bytes:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=True)
    for url, html in pages:
        headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
        record = writer.create_warc_record(url, "response", payload=io.BytesIO(html.encode("utf-8")),
                                           http_headers=headers)
        writer.write_record(record)
    robots = StatusAndHeaders("200 OK", [("Content-Type", "text/plain")], protocol="HTTP/1.1")
    writer.write_record(writer.create_warc_record("https://example.org/robots.txt", "response",
                                                  payload=io.BytesIO(b"User-agent: *"), http_headers=robots))
    return buffer.getvalue()


@pytest.fixture()
def mixed(tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    (raw / "sub").mkdir(parents=True)
    (raw / "page.html").write_text(html_page("Council Approves Harbour Plan", ARTICLE), encoding="utf-8")
    (raw / "sub" / "saved-as-text.txt").write_text(html_page("Harbour Plan Saved As Text", ARTICLE[1:]),
                                                   encoding="utf-8")
    with gzip.open(raw / "zipped.html.gz", "wt", encoding="utf-8") as handle:
        handle.write(html_page("Zipped Harbour Story", ARTICLE[:4]))
    (raw / "dump.txt").write_bytes((SEEDS_RAW / "001_92dcaf02a642ec9d.txt").read_bytes())
    (raw / "dump.meta.json").write_text(json.dumps({"url": "https://example.org/zhejiang", "site": "Example"}))
    lines = [
        json.dumps({"url": "https://example.org/a", "html": html_page("Export Story A", ARTICLE)}),
        "{this is not json",
        json.dumps({"url": "https://example.org/b", "text": "\n\n".join(ARTICLE), "fetched_at": "2025-01-02"}),
        json.dumps({"url": "https://example.org/c"}),
    ]
    with gzip.open(raw / "export.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    (raw / "crawl.warc.gz").write_bytes(warc_bytes([
        ("https://example.org/w1", html_page("Archived Harbour Story", ARTICLE)),
        ("https://example.org/w2", html_page("Second Archived Story", ARTICLE[::-1])),
    ]))
    return raw


def run(raw: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), "run", str(raw), "-o", str(out), *extra],
                          capture_output=True, text=True, cwd=ROOT)


def records(folder: Path) -> list[dict]:
    return stream_records(folder)


def test_mixed_folder_gives_one_documents_stream(mixed: Path, tmp_path: Path):
    out = tmp_path / "out"
    proc = run(mixed, out, "--max-error-rate", "0.5")
    assert proc.returncode == 0, proc.stderr
    # every page tells the same harbour story, so most are near-duplicates: the schema is what counts here
    docs = records(out / "documents") + records(out / "duplicates")
    by_title = {d["metadata"]["title"]: d for d in docs}
    assert set(by_title) == {
        "Council Approves Harbour Plan", "Harbour Plan Saved As Text", "Zipped Harbour Story", "Export Story A",
        "Hong Kong Chief Executive Visits Zhejiang to Boost Tech Collaboration", "Archived Harbour Story",
        "Second Archived Story", None,  # the JSONL `text` page has no header to read a title from
    }
    assert len({tuple(d["metadata"]) for d in docs}) == 1  # one schema for every kind of input
    for doc in docs:
        assert list(doc) == ["id", "text", "source", "added", "created", "metadata"]
        assert ARTICLE[1][:40] in doc["text"] or "Zhejiang" in doc["text"]
        assert "Advertisement" not in doc["text"] and "© 2025" not in doc["text"]
    html = by_title["Council Approves Harbour Plan"]["metadata"]
    assert html["source_format"] == "html" and html["sitename"] == "Harbour Times"
    assert html["provenance"]["text"] == "trafilatura" and html["date"] == "2025-03-04"
    assert by_title["Harbour Plan Saved As Text"]["metadata"]["source_format"] == "html"
    archived = by_title["Archived Harbour Story"]["metadata"]
    assert archived["url"] == "https://example.org/w1" and archived["hostname"] == "example.org"
    sidecar = by_title["Hong Kong Chief Executive Visits Zhejiang to Boost Tech Collaboration"]
    assert sidecar["metadata"]["url"] == "https://example.org/zhejiang"
    assert sidecar["metadata"]["sitename"] == "Example" and sidecar["metadata"]["provenance"]["sitename"] == "sidecar"
    rejects = records(out / "rejects")
    reasons = sorted((r["metadata"]["filter_reason"], r["metadata"]["filter_detail"].split(": ", 1)[0])
                     for r in rejects)
    assert reasons == [("bad_jsonl", f"{mixed / 'export.jsonl.gz'}:2"), ("bad_jsonl", f"{mixed / 'export.jsonl.gz'}:4")]


def test_ids_are_stable_across_runs(mixed: Path, tmp_path: Path):
    ids = []
    for n in range(2):
        out = tmp_path / f"out{n}"
        run(mixed, out, "--max-error-rate", "0.5")
        ids.append(sorted(d["id"] for d in records(out / "documents")))
    assert ids[0] == ids[1] and len(set(ids[0])) == len(ids[0])


def test_warc_skips_non_html_and_streams(mixed: Path):
    pages = list(read_inputs(mixed / "crawl.warc.gz", mixed, 10_000_000))
    assert [p.meta["url"] for p in pages] == ["https://example.org/w1", "https://example.org/w2"]
    assert all(p.meta["kind"] == "html" and b"<html>" in p.data for p in pages)


def test_discover_ignores_sidecars_and_unknown_files(mixed: Path):
    (mixed / "notes.csv").write_text("a,b\n")
    names = [p.name for p in discover(mixed)]
    assert "dump.meta.json" not in names and "notes.csv" not in names
    assert names == sorted(names, key=lambda n: str(next(p for p in discover(mixed) if p.name == n)))


def test_truncated_gzip_export_keeps_what_was_read(tmp_path: Path):
    raw = tmp_path / "raw"
    raw.mkdir()
    lines = [json.dumps({"url": f"https://example.org/{n}", "text": "\n\n".join(ARTICLE)}) for n in range(50)]
    blob = gzip.compress(("\n".join(lines) + "\n").encode())
    (raw / "cut.jsonl.gz").write_bytes(blob[: len(blob) - 40])
    pages = list(read_inputs(raw / "cut.jsonl.gz", raw, 10_000_000))
    assert pages[-1].reject.reason == "bad_gzip"
    assert all(p.reject is None for p in pages[:-1]) and len(pages) > 1


def test_slow_extraction_is_rejected_with_timeout(tmp_path: Path, pipeline):
    from pipeline.config import load_config
    from pipeline.stages.runner import Pipeline

    raw = tmp_path / "raw"
    raw.mkdir()
    huge = "<html><body>" + "<div><p>" + "<span>word</span> " * 200_000 + "</p></div></body></html>"
    (raw / "slow.html").write_text(huge, encoding="utf-8")
    (raw / "fine.html").write_text(html_page("Council Approves Harbour Plan", ARTICLE), encoding="utf-8")
    config = tmp_path / "pagewash.toml"
    config.write_text("extract_timeout = 0.2\n", encoding="utf-8")
    out = tmp_path / "out"
    proc = run(raw, out, "--config", str(config), "--max-error-rate", "0.6")
    assert proc.returncode == 0, proc.stderr
    assert [r["metadata"]["filter_reason"] for r in records(out / "rejects")] == ["timeout"]
    assert [d["metadata"]["title"] for d in records(out / "documents")] == ["Council Approves Harbour Plan"]
    fast = Pipeline(load_config(extract_timeout=0.2))
    outcome = fast.process(RawPage(str(raw / "slow.html"), "slow.html", (raw / "slow.html").read_bytes()))
    assert outcome.reject_reason == "timeout"


# --- inputs behind an fsspec URL --------------------------------------------------------------------------

def _to_memory(local: Path, prefix: str) -> str:
    """Copy a local input tree into fsspec's in-process memory filesystem; returns its URL."""
    import fsspec

    fs = fsspec.filesystem("memory")
    for path in sorted(local.rglob("*")):
        if path.is_file():
            fs.pipe(f"/{prefix}/{path.relative_to(local).as_posix()}", path.read_bytes())
    return f"memory://{prefix}"


def _without_source(recs: list[dict]) -> list[str]:
    for r in recs:
        r.pop("source")  # the input folder's name
        r.pop("added")  # the run's start
        r["metadata"].pop("source_path")
        r["metadata"].pop("processed_at", None)
        r["metadata"].pop("filter_detail", None)
    return sorted(json.dumps(r, sort_keys=True) for r in recs)


def test_inputs_from_an_fsspec_url_give_the_records_of_the_same_files_on_disk(mixed: Path, tmp_path: Path):
    """Every input kind (pages, gzip, sidecar, JSONL export, WARC) read through fsspec (memory://) gives the
    records a local run gives, but for where they came from; a rerun skips them all."""
    from pipeline.config import load_config
    from pipeline.io.sources import input_root
    from pipeline.run.corpus import run_corpus

    url = _to_memory(mixed, "fsspec-same")
    local, remote = tmp_path / "local", tmp_path / "remote"
    on_disk = run_corpus(mixed, local, load_config(max_error_rate=0.5), workers=0, progress=False)
    result = run_corpus(input_root(url), remote, load_config(max_error_rate=0.5), workers=0, progress=False)
    assert result.exit_code == 0
    for stream in ("documents", "duplicates", "rejects"):
        assert _without_source(records(remote / stream)) == _without_source(records(local / stream)), stream
    paths = sorted(d["metadata"]["source_path"] for d in records(remote / "documents") + records(remote / "rejects"))
    assert paths and all(p.startswith(url + "/") for p in paths)
    again = run_corpus(input_root(url), remote, load_config(max_error_rate=0.5), workers=0, progress=False)
    assert again.report["inputs"]["skipped"] == again.report["inputs"]["seen"] == on_disk.report["inputs"]["seen"] == 6


def test_changed_input_without_mtime_is_found_by_its_hash(tmp_path: Path):
    """fsspec's memory filesystem (like some object stores) gives no mtime: a same-size change must still
    count as a change."""
    import fsspec

    from pipeline.config import load_config
    from pipeline.io.sources import input_root
    from pipeline.run.corpus import run_corpus

    fs = fsspec.filesystem("memory")
    first = "\n\n".join(ARTICLE)
    second = first.replace("Tuesday", "Fridays")  # same length
    assert len(second) == len(first)
    fs.pipe("/fsspec-mtime/story.txt", first.encode())
    out = tmp_path / "out"
    root = input_root("memory://fsspec-mtime")
    assert root.joinpath("story.txt").stat().st_mtime_ns == 0
    run_corpus(root, out, load_config(), workers=0, progress=False)
    fs.pipe("/fsspec-mtime/story.txt", second.encode())
    result = run_corpus(root, out, load_config(), workers=0, progress=False)
    assert result.report["inputs"]["changed"] == 1
    docs = records(out / "documents")
    assert len(docs) == 1 and "Fridays" in docs[0]["text"]


def test_url_without_its_backend_is_a_clear_error(tmp_path: Path):
    proc = run("s3://no-such-bucket/raw", tmp_path / "out")
    assert proc.returncode == 2
    assert "s3://no-such-bucket/raw: cannot open this URL" in proc.stderr and "s3fs" in proc.stderr


def test_file_url_is_the_local_path(mixed: Path, tmp_path: Path):
    proc = run(f"file://{mixed}", tmp_path / "out", "--max-error-rate", "0.5")
    assert proc.returncode == 0, proc.stderr
    assert records(tmp_path / "out" / "documents")


def test_discover_walks_a_tree_in_sorted_path_order(tmp_path: Path):
    """Folder by folder (no list of every input), in the order of sorted paths, as runs always had it."""
    from pipeline.io.sources import discover, is_input

    root = tmp_path / "raw"
    for rel in ("b.txt", "a.txt", "a/z.html", "a/b/c.jsonl", "a-b/x.txt", "a b/y.txt", "A/u.txt", "n.bin",
                "deep/er/est/p.warc.gz", "é/v.txt"):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x", encoding="utf-8")
    (root / "linked").symlink_to(root / "a", target_is_directory=True)  # not descended into, as rglob
    expected = [p for p in sorted(root.rglob("*")) if p.is_file() and is_input(p)]
    assert list(discover(root)) == expected and len(expected) == 9


# --- JSONL: bounded lines, the html/text fallback ----------------------------------------------------------

_PEAK_SCRIPT = """
import gzip, re, sys
from pathlib import Path
from pipeline.io.sources import read_inputs
path = Path(sys.argv[1])
with gzip.open(path, "wb", compresslevel=1) as out:  # written streaming: 1 MB of zeros at a time
    for _ in range(int(sys.argv[2])):
        out.write(bytes(1 << 20))
reasons = [(p.rel_path, (p.reject.reason if p.reject else "")) for p in read_inputs(path, path.parent, 16 << 20)]
# VmHWM, not ru_maxrss: Linux carries the forking parent's (pytest's) peak over exec into ru_maxrss
peak_kb = int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
print(reasons, peak_kb // 1024)
"""


def test_jsonl_line_of_256_mb_is_too_large_without_being_held(tmp_path: Path):
    """A .jsonl.gz of ~1 MB holding one 256 MB line of zeros drove the reader to a peak of 536 MB (2.1 GB for
    1 GB of zeros): lines are read block by block up to max_input_bytes, the rest skipped."""
    proc = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, str(tmp_path / "zeros.jsonl.gz"), "256"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    reasons, peak_mb = proc.stdout.rsplit(" ", 1)
    assert reasons == "[('zeros.jsonl.gz#L1', 'too_large')]"
    assert int(peak_mb) < 128, f"peak RSS {peak_mb} MB reading a 256 MB line"


def test_jsonl_long_line_is_a_reject_and_the_next_lines_still_run(tmp_path: Path):
    good = json.dumps({"url": "https://example.org/a", "text": "short story"})
    long = json.dumps({"url": "https://example.org/b", "text": "x" * 5000})
    (tmp_path / "export.jsonl").write_text("\n".join([good, long, good.replace("/a", "/c")]) + "\n")
    pages = list(read_inputs(tmp_path / "export.jsonl", tmp_path, 1000))
    assert [p.meta.get("url") for p in pages] == ["https://example.org/a", None, "https://example.org/c"]
    assert (pages[1].reject.reason, pages[1].reject.detail) == (
        "too_large", f"{tmp_path / 'export.jsonl'}:2: line longer than max_input_bytes 1000")
    assert pages[2].meta["line"] == 3


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=12),
       st.integers(0, 30), st.integers(1, 17), st.booleans())
def test_bounded_lines_are_the_lines_with_long_ones_left_out(lines, limit, block_size, final_newline):
    from pipeline.io.exports import _bounded_lines

    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    expected = data.split(b"\n")
    if expected[-1] == b"":
        expected.pop()
    got = list(_bounded_lines(io.BytesIO(data), limit, block_size))
    # the \r of a CRLF line end is not counted against the limit
    assert got == [line if len(line) - line.endswith(b"\r") <= limit else None for line in expected]


def test_jsonl_empty_html_falls_back_to_text(tmp_path: Path):
    """{"html": "", "text": "<article>"} was an `empty` reject although `text` holds the page."""
    rows = [{"html": "", "text": "\n\n".join(ARTICLE)}, {"html": " \n", "text": "words"}, {"html": ""},
            {"html": "<p>x</p>", "text": "ignored"}]
    (tmp_path / "export.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pages = list(read_inputs(tmp_path / "export.jsonl", tmp_path, 1_000_000))
    assert [(p.meta["kind"], p.data[:8]) for p in pages] == [
        ("text", ARTICLE[0][:8].encode()), ("text", b"words"), ("html", b""), ("html", b"<p>x</p>")]


def test_jsonl_gz_in_several_members_is_read_whole(tmp_path: Path):
    rows = [json.dumps({"url": f"https://example.org/{n}", "text": "story"}) + "\n" for n in range(4)]
    (tmp_path / "cat.jsonl.gz").write_bytes(b"".join(gzip.compress(r.encode()) for r in rows))
    pages = list(read_inputs(tmp_path / "cat.jsonl.gz", tmp_path, 1_000_000))
    assert [p.meta["url"] for p in pages] == [f"https://example.org/{n}" for n in range(4)]


def test_jsonl_lone_surrogate_is_replaced_not_the_end_of_the_file(tmp_path: Path):
    """`"\\ud800"` is valid JSON but no character: encoding it raised out of the reader, which ended the file."""
    (tmp_path / "export.jsonl").write_text('{"text": "bad \\ud800 here"}\n{"text": "fine"}\n')
    pages = list(read_inputs(tmp_path / "export.jsonl", tmp_path, 1_000_000))
    assert [p.data for p in pages] == ["bad \ufffd here".encode(), b"fine"]


def test_page_gzipped_in_several_members_is_read_whole(tmp_path: Path, pipeline):
    """`cat a.gz b.gz > page.txt.gz`: everything after the first member was dropped, silently."""
    halves = "\n\n".join(ARTICLE[:2]), "\n\n".join(ARTICLE[2:])
    (tmp_path / "page.txt.gz").write_bytes(gzip.compress(halves[0].encode() + b"\n\n")
                                           + gzip.compress(halves[1].encode()))
    [page] = read_inputs(tmp_path / "page.txt.gz", tmp_path, 1_000_000)
    outcome = pipeline.process(page)
    assert outcome.reject_reason is None
    assert ARTICLE[0][:50] in outcome.document.text and ARTICLE[-1][:50] in outcome.document.text


def test_a_crlf_line_of_exactly_the_limit_is_not_too_large():
    from pipeline.io.exports import _bounded_lines

    data = b"a" * 100 + b"\n" + b"b" * 100 + b"\r\n" + b"c" * 101 + b"\r\n" + b"d" * 100 + b"\r"
    for block_size in (7, 4096):
        got = [None if line is None else len(line) for line in _bounded_lines(io.BytesIO(data), 100, block_size)]
        assert got == [100, 101, None, 101]  # the \r is the line end's, not the line's
