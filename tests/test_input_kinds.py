"""Input kinds (pipeline/io/sources.py INPUT_KINDS): every kind read, the rest skipped and counted, a file named
as RAW judged by its content, export field names, and selective runs (--glob, --exclude, --limit)."""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ARTICLE, ROOT, stream_records
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config import DedupConfig, InputConfig, load_config
from pipeline.io.sources import read_inputs, sniff_kind
from pipeline.run.context import Selection
from pipeline.run.corpus import run_corpus

TEXT = "\n\n".join(ARTICLE)
HTML = "<html><head><title>Harbour</title></head><body><article>" + "".join(
    f"<p>{line}</p>" for line in ARTICLE) + "</article></body></html>"
CONFIG = dataclasses.replace(load_config(max_error_rate=0.5), dedup=DedupConfig(enabled=False))  # variants kept


def _story(n: int) -> str:
    """A distinct article: the harbour story with its own number in every paragraph (no duplicates)."""
    return "\n\n".join(f"{line} Story {n} of the day, item {n * 7 + k}." for k, line in enumerate(ARTICLE))


def _warc(path: Path, kind: str, url: str, body: bytes) -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        if kind == "response":
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            record = writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http)
        else:
            record = writer.create_warc_record(url, kind, payload=io.BytesIO(body), warc_content_type="text/plain")
        writer.write_record(record)


def _arc(path: Path, url: str, html: bytes) -> None:
    http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n" % len(html) + html
    desc = b"1 0 pagewash\nURL IP-address Archive-date Content-type Archive-length\n"
    records = (b"filedesc://x.arc 0.0.0.0 20240101000000 text/plain %d\n" % len(desc) + desc + b"\n",
               b"%s 1.2.3.4 20240102030405 text/html %d\n" % (url.encode(), len(http)) + http + b"\n")
    path.write_bytes(b"".join(gzip.compress(record) for record in records))  # a gzip member a record, as crawlers


def _parquet(path: Path, rows: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)


@pytest.fixture()
def every_kind(tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    (raw / "sub").mkdir(parents=True)
    (raw / "page.txt").write_text(_story(1), encoding="utf-8")
    (raw / "export.ndjson").write_text(json.dumps({"text": _story(2), "url": "https://a.example/2"}) + "\n",
                                       encoding="utf-8")
    import zstandard

    (raw / "export.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(
        (json.dumps({"text": _story(3)}) + "\n").encode()))
    _parquet(raw / "export.parquet", [{"text": _story(4), "url": "https://a.example/4"}])
    _arc(raw / "crawl.arc.gz", "https://a.example/5", HTML.replace("Harbour", "Harbour five").replace(
        "council", "council five").encode())
    _warc(raw / "crawl.warc.wet.gz", "conversion", "https://a.example/6", _story(6).encode())
    _warc(raw / "crawl.warc.wat.gz", "metadata", "https://a.example/7", b"{}")
    (raw / "notes.csv").write_text("a,b\n", encoding="utf-8")
    (raw / "data.json").write_text("{}", encoding="utf-8")
    os.symlink(raw / "sub", raw / "linked")
    return raw


def test_every_kind_is_read_and_every_other_file_counted(every_kind: Path, tmp_path: Path):
    out = tmp_path / "out"
    result = run_corpus(every_kind, out, CONFIG, workers=0, progress=False)
    docs = {Path(r["metadata"]["source_path"].split("@")[0].rsplit(":", 1)[0]).name: r
            for r in stream_records(out / "documents")}
    assert set(docs) == {"page.txt", "export.ndjson", "export.jsonl.zst", "export.parquet", "crawl.arc.gz",
                         "crawl.warc.wet.gz"}, result.report["rejects"]
    assert docs["crawl.arc.gz"]["metadata"]["url"] == "https://a.example/5"  # ARC headers read as WARC's
    assert docs["crawl.arc.gz"]["metadata"]["fetched_at"].startswith("2024-01-02")
    assert docs["crawl.warc.wet.gz"]["metadata"]["source_format"] == "text"
    assert docs["export.parquet"]["metadata"]["url"] == "https://a.example/4"
    assert result.report["files_skipped"] == {"WAT archive (metadata only)": 1, "symbolic link to a folder": 1,
                                              "unknown kind (.csv)": 1, "unknown kind (.json)": 1}


def test_a_file_named_as_raw_is_judged_by_its_content(tmp_path: Path):
    lines = tmp_path / "export.dat"
    lines.write_text("".join(json.dumps({"text": _story(n)}) + "\n" for n in range(3)), encoding="utf-8")
    archive = tmp_path / "crawl.bin"
    _warc(archive, "response", "https://a.example/1", HTML.encode())
    page = tmp_path / "page.dat"
    page.write_text(TEXT, encoding="utf-8")
    assert [sniff_kind(p) for p in (lines, archive, page)] == ["jsonl", "warc", "page"]
    assert len(list(read_inputs(lines, lines, 1 << 20))) == 3  # three pages, not one page of raw JSON
    [found] = list(read_inputs(archive, archive, 1 << 20))
    assert found.meta["url"] == "https://a.example/1"


def test_nothing_usable_exits_2_and_names_the_kinds(tmp_path: Path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "notes.csv").write_text("a,b\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "run", str(raw), "-o", str(tmp_path / "out")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "no input under" in proc.stderr and ".warc.gz" in proc.stderr and "unknown kind (.csv) 1" in proc.stderr


def test_export_field_names_own_ids_and_kept_fields(tmp_path: Path):
    raw = tmp_path / "raw"
    raw.mkdir()
    rows = [{"uid": f"doc-{n}", "content": _story(n), "link": f"https://b.example/{n}", "lang_hint": "en",
             "crawl": {"batch": 7}} for n in range(2)]
    (raw / "export.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    keys = InputConfig(text_key="content", url_key="link", id_key="uid", keep_fields=("lang_hint", "crawl"))
    run_corpus(raw, tmp_path / "out", dataclasses.replace(CONFIG, input=keys), workers=0, progress=False)
    docs = sorted(stream_records(tmp_path / "out" / "documents"), key=lambda r: r["id"])
    assert [d["id"] for d in docs] == ["doc-0", "doc-1"]
    assert [d["metadata"]["url"] for d in docs] == ["https://b.example/0", "https://b.example/1"]
    assert docs[0]["metadata"]["lang_hint"] == "en" and docs[0]["metadata"]["crawl"] == {"batch": 7}
    assert all((tmp_path / "out" / stream).is_dir() for stream in ("documents", "duplicates", "rejects"))  # even empty


def test_glob_exclude_and_limit_take_part_and_delete_nothing(tmp_path: Path):
    raw = tmp_path / "raw"
    (raw / "2024").mkdir(parents=True)
    (raw / "2025").mkdir()
    for n in range(3):
        (raw / "2024" / f"p{n}.txt").write_text(_story(n), encoding="utf-8")
        (raw / "2025" / f"p{n}.txt").write_text(_story(10 + n), encoding="utf-8")
    out = tmp_path / "out"
    run_corpus(raw, out, CONFIG, workers=0, progress=False, select=Selection(globs=("2024/*",)))
    assert len(stream_records(out / "documents")) == 3
    result = run_corpus(raw, out, CONFIG, workers=0, progress=False,
                        select=Selection(globs=("2025/*",), excludes=("*/p2.txt",)))
    assert result.report["inputs"]["deleted"] == 0 and result.report["inputs"]["new"] == 2
    assert len(stream_records(out / "documents")) == 5  # 2024's records stay
    export = tmp_path / "export"
    export.mkdir()
    (export / "pages.jsonl").write_text("".join(json.dumps({"text": _story(20 + n)}) + "\n" for n in range(5)),
                                        encoding="utf-8")
    limited = tmp_path / "limited"
    first = run_corpus(export, limited, CONFIG, workers=0, progress=False, select=Selection(limit=3))
    assert first.report["pages"] == 3
    rest = run_corpus(export, limited, CONFIG, workers=0, progress=False)
    assert rest.report["pages"] == 2 and rest.report["inputs"]["resumed"] == 1
    assert len(stream_records(limited / "documents")) == 5


# --- untrusted bytes: the new readers never raise, they reject ---------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=600), st.sampled_from([b"PAR1", b"WARC/1.0\r\n", b"\x1f\x8b\x08\x00",
                                                                 b"\x28\xb5\x2f\xfd", b'{"text": 1}\n{']).flatmap(
    lambda head: st.binary(max_size=300).map(lambda tail: head + tail))),
       suffix=st.sampled_from([".dat", ".jsonl.zst", ".ndjson", ".parquet", ".warc.wet.gz", ".arc", ".arc.gz"]))
def test_any_bytes_under_any_new_kind_give_pages_or_rejects_never_an_error(tmp_path_factory, data, suffix):
    path = tmp_path_factory.mktemp("fuzz") / f"input{suffix}"
    path.write_bytes(data)
    assert sniff_kind(path) in ("page", "jsonl", "warc", "parquet")
    for page in read_inputs(path, path, 1 << 20):
        assert isinstance(page.data, bytes)
        if page.reject is not None:
            assert page.reject.reason in ("bad_jsonl", "bad_gzip", "bad_warc", "too_large", "unreadable", "error")
