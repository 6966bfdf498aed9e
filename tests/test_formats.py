"""Output formats (pipeline/io/formats.py, `--format`): every format round-trips the records a run writes, gives
the same records as the others, is byte-reproducible, and an output keeps one format unless --full rewrites it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import seed_corpus, shard_files, stream_records

from pipeline.config import ConfigError, load_config
from pipeline.io.formats import FORMATS, decode, encode, format_of, logical, physical, variants
from pipeline.run.corpus import run_corpus
from pipeline.schema import arrow_schema, conform

STREAMS = ("documents", "duplicates", "rejects")
CONFIG = load_config(max_error_rate=0.5)  # the corpus holds one binary file of seven
_HITS = [{"rule": "nav.menu", "lines": 2, "words": 5}]
RECORDS = [
    conform({"id": "a", "text": "Line one\u2028still one \u00e9\U0001f600", "source": "s",
             "added": "2026-01-01T00:00:00Z", "metadata": {
                 "title": "T", "categories": ["x"], "cleaning": {"lines_in": 3, "lines_kept": 1, "rules_hit": _HITS}}}),
    conform({"id": "b", "text": "", "metadata": {"filter_reason": "binary", "word_count": 0}}),
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_round_trips_the_records(tmp_path: Path, fmt: str):
    source = tmp_path / "part.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in RECORDS), encoding="utf-8")
    dest = tmp_path / physical("part-000001.jsonl", fmt)
    encode(source, dest, fmt)
    with open(dest, "rb") as handle:
        assert [json.loads(line) for line in decode(handle, format_of(dest.name))] == RECORDS


def test_shard_names_in_every_format():
    assert [physical("part-000042.jsonl", fmt) for fmt in FORMATS] == [
        "part-000042.jsonl.gz", "part-000042.jsonl", "part-000042.jsonl.zst", "part-000042.parquet"]
    assert {logical(physical("part-000042.jsonl", fmt)) for fmt in FORMATS} == {"part-000042.jsonl"}
    assert format_of("part-000042.jsonl.gz") == "jsonl.gz" and format_of("part-4x.jsonl") is None
    assert format_of(".part-000042.jsonl.tmp") is None and variants("report.json") == ["report.json"]


def _corpus(tmp_path: Path) -> Path:
    return seed_corpus(tmp_path / "raw")  # the seeds, a duplicate, a reject


def _without_stamps(records: list[dict]) -> list[str]:
    return sorted(json.dumps({**r, "added": None, "metadata": {**r["metadata"], "processed_at": None}},
                             sort_keys=True) for r in records)


def test_every_format_holds_the_same_records_and_is_reproducible(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    raw = _corpus(tmp_path)
    found = {}
    for fmt in FORMATS:
        out = tmp_path / fmt
        assert run_corpus(raw, out, CONFIG, workers=0, progress=False, fmt=fmt).exit_code == 0
        files = [p for stream in STREAMS for p in shard_files(out / stream)]
        assert files and {format_of(p.name) for p in files} == {fmt}
        found[fmt] = {stream: _without_stamps(stream_records(out / stream)) for stream in STREAMS}
        again = tmp_path / f"{fmt}-again"
        run_corpus(raw, again, CONFIG, workers=0, progress=False, fmt=fmt)
        assert [p.read_bytes() for p in files] == [p.read_bytes() for stream in STREAMS
                                                    for p in shard_files(again / stream)], fmt
    assert {fmt: {s: len(r) for s, r in f.items()} for fmt, f in found.items()}["jsonl"] == {
        "documents": 5, "duplicates": 1, "rejects": 1}
    assert all(f == found["jsonl"] for f in found.values())
    assert load_config().output.format == "jsonl.gz"  # the default, as datatrove's and dolma's writers


def test_parquet_shards_of_every_stream_share_one_schema(tmp_path: Path):
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "out"
    run_corpus(_corpus(tmp_path), out, CONFIG, workers=0, progress=False, fmt="parquet")
    schemas = {stream: pq.read_schema(path) for stream in STREAMS for path in shard_files(out / stream)}
    assert set(schemas) == set(STREAMS)
    assert all(schema.remove_metadata() == arrow_schema() for schema in schemas.values())


def test_an_output_keeps_its_format_unless_full_rewrites_it(tmp_path: Path):
    raw = _corpus(tmp_path)
    out = tmp_path / "out"
    run_corpus(raw, out, CONFIG, workers=0, progress=False, fmt="jsonl")
    with pytest.raises(ConfigError, match="holds jsonl shards: pass --format jsonl"):
        run_corpus(raw, out, CONFIG, workers=0, progress=False, fmt="parquet")
    run_corpus(raw, out, CONFIG, workers=0, progress=False, fmt="parquet", full=True)
    assert {format_of(p.name) for stream in STREAMS for p in shard_files(out / stream)} == {"parquet"}
    assert "parquet" in (out / "README.md").read_text(encoding="utf-8")  # the dataset card names the files


def test_a_changed_input_is_retracted_from_compressed_shards(tmp_path: Path):
    """The retraction rewrites a shard in the output's format (read back as JSON lines, written again)."""
    raw = _corpus(tmp_path)
    out = tmp_path / "out"
    run_corpus(raw, out, CONFIG, workers=0, progress=False, fmt="jsonl.zst")
    (raw / "copy.txt").unlink()
    os.remove(raw / "binary.txt")
    run_corpus(raw, out, CONFIG, workers=0, progress=False, fmt="jsonl.zst")
    assert [len(stream_records(out / s)) for s in STREAMS] == [5, 0, 0]
    assert {format_of(p.name) for p in shard_files(out / "documents")} == {"jsonl.zst"}


def test_pagewash_dedup_refuses_parquet(tmp_path: Path):
    from pipeline.dedup.jsonl import dedup_jsonl

    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"id": "x", "text": "some text"}) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="pagewash dedup writes JSON lines"):
        dedup_jsonl([path], tmp_path / "out", load_config().dedup, fmt="parquet")
