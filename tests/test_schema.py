"""The record schema (pipeline/schema.py): every field in every record of every stream, with one type, so that
the shards of any runs load as one table — with pyarrow, and with Hugging Face `datasets` through the output's
dataset card."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import ROOT, SEEDS_RAW, seed_corpus, stream_records

from pipeline.config import load_config
from pipeline.run.corpus import run_corpus
from pipeline.schema import FIELDS, METADATA, SCHEMA_VERSION, STRUCTS, arrow_schema, card_features, conform

STREAMS = ("documents", "duplicates", "rejects")


def _records(out: Path) -> dict[str, list[dict]]:
    return {stream: stream_records(out / stream) for stream in STREAMS}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path]:
    """Two outputs: one of the seeds, a copy of one (a duplicate) and a binary file (a reject), none with a
    fetch time; one of a single seed whose sidecar gives a URL and a fetch time. `fetched_at` is null in every
    record of the first and a timestamp in the second: the case that broke `datasets.load_dataset` before."""
    base = tmp_path_factory.mktemp("schema")
    first, second = base / "crawl-a", base / "crawl-b"
    seed_corpus(first)
    second.mkdir()
    shutil.copy(sorted(SEEDS_RAW.glob("*.txt"))[1], second / "page.txt")
    (second / "page.meta.json").write_text(json.dumps({"url": "https://example.com/a", "fetched_at":
                                                       "2025-05-26T10:00:00Z"}), encoding="utf-8")
    for raw in (first, second):
        run_corpus(raw, base / f"out-{raw.name}", load_config(), workers=0, progress=False)
    return base / "out-crawl-a", base / "out-crawl-b"


def test_the_readme_table_is_the_schema():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = [line for line in text.split(f"### Record schema (version {SCHEMA_VERSION})", 1)[1].split("\n\n#", 1)[0]
            .splitlines() if line.startswith("| `")]
    names = [row.split("|")[1].strip().strip("`") for row in rows]
    helps = [row.split("|")[3].strip() for row in rows]
    assert names == [n for n, _t, _h in FIELDS] + [f"metadata.{n}" for n, _t, _h in METADATA]
    assert helps == [h for _n, _t, h in FIELDS] + [h for _n, _t, h in METADATA]


_PYTHON = {"string": str, "int": int, "float": float}


def _check(value, kind: str, where: str) -> None:
    if value is None:
        return
    if kind in _PYTHON:
        assert isinstance(value, _PYTHON[kind]) and not isinstance(value, bool), where
    elif kind == "strings":
        assert isinstance(value, list) and all(isinstance(v, str) for v in value), where
    elif kind == "rule_hits":
        assert isinstance(value, list), where
        for hit in value:
            _check(hit, "rule_hit", where)
    else:
        assert isinstance(value, dict) and list(value) == [n for n, _k in STRUCTS[kind]], where
        for name, sub in STRUCTS[kind]:
            _check(value[name], sub, f"{where}.{name}")


def test_every_record_of_every_stream_has_every_field_with_its_type(two_runs):
    first, second = two_runs
    records = _records(first)
    assert {stream: len(found) for stream, found in records.items()} == {"documents": 5, "duplicates": 1,
                                                                         "rejects": 1}
    for stream, found in [*records.items(), *_records(second).items()]:
        for record in found:
            assert list(record) == [n for n, _t, _h in FIELDS], stream
            assert list(record["metadata"]) == [n for n, _t, _h in METADATA], stream
            for name, kind, _help in FIELDS:
                if name != "metadata":
                    _check(record[name], kind, name)
            for name, kind, _help in METADATA:
                _check(record["metadata"][name], kind, f"{stream} metadata.{name}")
            assert record["metadata"]["schema_version"] == SCHEMA_VERSION
            assert record["source"] == ("crawl-a" if record in records[stream] else "crawl-b")
            assert record["added"] == record["metadata"]["processed_at"]
    kept = records["documents"][0]["metadata"]
    hits = kept["cleaning"]["rules_hit"]
    assert hits and all(hit["lines"] >= 1 and hit["words"] >= 0 for hit in hits)
    assert [hit["rule"] for hit in hits] == sorted(hit["rule"] for hit in hits)
    [page] = _records(second)["documents"]
    assert page["created"] == page["metadata"]["date"] or page["created"] == "2025-05-26T10:00:00Z"


def test_conform_fills_the_schema_and_keeps_other_keys_after_it():
    record = conform({"id": "x", "text": "t", "metadata": {"title": "T", "zeta": "z", "alpha": 1,
                                                          "provenance": {"title": "text:header"}}})
    assert list(record) == [n for n, _t, _h in FIELDS]
    meta = record["metadata"]
    assert list(meta)[:len(METADATA)] == [n for n, _t, _h in METADATA] and list(meta)[len(METADATA):] == ["alpha",
                                                                                                         "zeta"]
    assert meta["provenance"] == {"text": None, "title": "text:header", "author": None, "date": None,
                                  "sitename": None, "hostname": None}


def test_all_shards_of_two_runs_load_as_one_pyarrow_dataset(two_runs):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.dataset as ds
    import pyarrow.json as pj

    files = [str(path) for out in two_runs for stream in STREAMS for path in sorted((out / stream).glob("part-*"))]
    fmt = ds.JsonFileFormat(parse_options=pj.ParseOptions(explicit_schema=arrow_schema(),
                                                          unexpected_field_behavior="error"))
    table = ds.dataset(files, format=fmt, schema=arrow_schema()).to_table()
    assert table.num_rows == 5 + 1 + 1 + 1
    assert table.schema == arrow_schema()
    assert isinstance(table.column("metadata").type, pa.StructType)


def test_datasets_loads_the_output_through_its_card(two_runs, tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    first, second = two_runs
    info = datasets.DatasetInfo(features=datasets.Features.from_arrow_schema(arrow_schema()))
    assert info._to_yaml_dict()["features"] == card_features()  # the card declares what datasets would
    for out in two_runs:
        documents = datasets.load_dataset(str(out), "documents", split="train", cache_dir=str(tmp_path / "cache"))
        assert documents.features == info.features
    rejects = datasets.load_dataset(str(first), "rejects", split="train", cache_dir=str(tmp_path / "cache"))
    assert rejects[0]["metadata"]["filter_reason"] == "binary"
    # and any shards of any runs together, with the schema's features
    files = [str(p) for out in two_runs for stream in ("documents", "duplicates")
             for p in sorted((out / stream).glob("part-*"))]
    from pipeline.schema import features

    both = datasets.load_dataset("json", data_files=files, features=features(), split="train",
                                 cache_dir=str(tmp_path / "cache"))
    assert both.num_rows == 5 + 1 + 1
    assert sorted(filter(None, both["metadata"]), key=str)  # every record has its metadata
