"""Output stores (pipeline/store.py): a local folder and fsspec URLs keep the same contract, and a whole run
into a URL writes the very records a run into a folder writes."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import fsspec
import pytest
from conftest import ROOT, SEEDS_RAW

from pipeline.config import ConfigError, load_config
from pipeline.io.store import FsspecStore, LocalStore, open_output
from pipeline.io.writer import ShardSet
from pipeline.run.corpus import run_corpus

EPOCH = "1760000000"
STREAMS = ("documents", "duplicates", "rejects")


def _memory_url() -> str:
    return f"memory://pagewash-{uuid.uuid4().hex}"  # the memory filesystem is one per process: unique roots


def _stores(tmp_path: Path) -> list:
    return [LocalStore(tmp_path / "local"), FsspecStore(_memory_url(), tmp_path / "scratch"),
            FsspecStore(f"local://{tmp_path / 'fsspec-local'}", tmp_path / "scratch2")]


def test_every_store_keeps_the_same_contract(tmp_path: Path):
    for store in _stores(tmp_path):
        assert store.names("documents") == [] and list(store.lines("documents", "part-000000.jsonl")) == []
        shard = ShardSet(store, 3)
        shard.write("documents", {"id": "a", "text": "é"})
        shard.write("rejects", {"id": "b", "text": ""})
        assert not store.exists("documents", "part-000003.jsonl")  # nothing is visible before publish
        shard.publish()
        assert store.names("documents") == ["part-000003.jsonl"] and store.exists("rejects", "part-000003.jsonl")
        published = [json.loads(line) for line in store.lines("documents", "part-000003.jsonl")]
        assert published == [{"id": "a", "text": "é"}]
        assert not list(store.temp_path("documents", "x").parent.glob(".*.tmp"))  # the local halves are gone
        aborted = ShardSet(store, 4)
        aborted.write("documents", {"id": "c", "text": "x"})
        aborted.abort()
        assert store.names("documents") == ["part-000003.jsonl"]
        store.remove("documents", "part-000003.jsonl")
        store.remove("documents", "part-000003.jsonl")  # removing twice is no error
        assert store.names("documents") == []
        assert store.read_text("report.json") is None
        store.write_text("report.json", '{"ok": 1}\n')
        assert json.loads(store.read_text("report.json")) == {"ok": 1}


def test_open_output_needs_a_state_folder_for_a_url(tmp_path: Path):
    store, state_dir = open_output(str(tmp_path / "out"))
    assert isinstance(store, LocalStore) and state_dir == tmp_path / "out" / "_state"
    store, state_dir = open_output(f"file://{tmp_path / 'out'}")
    assert isinstance(store, LocalStore) and store.root == tmp_path / "out"
    with pytest.raises(ConfigError, match="--state"):
        open_output(_memory_url())
    with pytest.raises(ConfigError, match="cannot open this URL"):
        open_output("nosuchprotocol://bucket/out", str(tmp_path / "state"))
    store, state_dir = open_output(_memory_url(), str(tmp_path / "state"))
    assert isinstance(store, FsspecStore) and state_dir == tmp_path / "state"


def _records(store, stream: str) -> list[bytes]:
    return sorted("".join(store.lines(stream, name)).encode() for name in store.names(stream))


def test_a_run_into_a_url_writes_what_a_run_into_a_folder_writes(tmp_path: Path, monkeypatch):
    """Same records, streams and report figures; a rerun finds nothing new; a leftover object the state
    does not name (a run killed after an upload, before its commit) is swept."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    config = load_config()
    corpus = tmp_path / "raw"
    corpus.mkdir()
    for path in sorted(SEEDS_RAW.iterdir()):
        (corpus / path.name).write_bytes(path.read_bytes())
        (corpus / f"copy-{path.name}").write_bytes(path.read_bytes() + b"\nShare this article\n")
    (corpus / "binary.txt").write_bytes(bytes(range(256)) * 40)
    local = run_corpus(corpus, tmp_path / "out", config, workers=2, progress=False)
    url = _memory_url()
    remote = run_corpus(corpus, url, config, workers=2, progress=False, state_dir=tmp_path / "state")
    store = FsspecStore(url, tmp_path / "state" / "outgoing")
    assert remote.exit_code == local.exit_code == 1  # the binary input: 1 failure in 11 pages > 5 %
    for key in ("pages", "documents", "duplicates", "rejects"):
        assert remote.report[key] == local.report[key]
    assert remote.report["duplicates"] >= 5 and remote.report["rejects"]
    for stream in STREAMS:
        assert _records(store, stream) == _records(LocalStore(tmp_path / "out"), stream)
    assert json.loads(store.read_text("report.json"))["run_id"] == remote.report["run_id"]
    assert not (tmp_path / "state" / "documents").exists()  # the streams live in the store only

    fs, root = fsspec.core.url_to_fs(url)
    fs.pipe_file(f"{root}/documents/part-000099.jsonl", b'{"id": "left over"}\n')
    again = run_corpus(corpus, url, config, workers=2, progress=False, state_dir=tmp_path / "state")
    assert again.report["inputs"]["skipped"] == again.report["inputs"]["seen"] and again.report["pages"] == 0
    assert "part-000099.jsonl" not in store.names("documents")
    for stream in STREAMS:
        assert _records(store, stream) == _records(LocalStore(tmp_path / "out"), stream)


def test_the_cli_runs_into_an_fsspec_url_and_reads_its_stats(tmp_path: Path):
    """Through a real subprocess: `local://` is fsspec's own local filesystem, written through FsspecStore."""
    out = f"local://{tmp_path / 'out'}"
    env = {"SOURCE_DATE_EPOCH": EPOCH, "PATH": "/usr/bin:/bin"}
    base = [sys.executable, str(ROOT / "cli.py"), "-q"]
    refused = subprocess.run([*base, "run", str(SEEDS_RAW), "-o", out], capture_output=True, text=True, env=env)
    assert refused.returncode == 2 and "--state" in refused.stderr
    done = subprocess.run([*base, "run", str(SEEDS_RAW), "-o", out, "--state", str(tmp_path / "state"),
                           "--workers", "1", "--no-progress"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "out" / "documents").glob("part-*.jsonl.gz"))) == 1
    assert not (tmp_path / "out" / "_state").exists() and (tmp_path / "state" / "state.sqlite").exists()
    stats = subprocess.run([*base, "stats", out, "--state", str(tmp_path / "state"), "--json"],
                           capture_output=True, text=True, env=env)
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["last_run"]["documents"] == 5


def _seed_corpus(tmp_path: Path) -> Path:
    corpus = tmp_path / "raw"
    corpus.mkdir()
    for path in sorted(SEEDS_RAW.iterdir()):
        (corpus / path.name).write_bytes(path.read_bytes())
    return corpus


def test_an_output_is_written_by_one_state_only(tmp_path: Path):
    """A wrong --state would sweep every shard it did not write: refused, as is a new state over an output
    that holds shards but no marker (unless --full); the right state goes on."""
    corpus, out = _seed_corpus(tmp_path), f"local://{tmp_path / 'out'}"
    config = load_config()
    first = run_corpus(corpus, out, config, workers=1, progress=False, state_dir=tmp_path / "a")
    assert first.exit_code == 0 and first.report["documents"] == 5
    (corpus / sorted(p.name for p in corpus.iterdir())[0]).unlink()
    with pytest.raises(ConfigError, match="--state .*/a"):
        run_corpus(corpus, out, config, workers=1, progress=False, state_dir=tmp_path / "b")
    store = FsspecStore(out, tmp_path / "scratch")
    assert sum(len(list(store.lines("documents", n))) for n in store.names("documents")) == 5  # nothing swept
    fs, root = fsspec.core.url_to_fs(out)
    fs.rm_file(f"{root}/.pagewash-state")  # a marker lost, or an output written before markers existed
    with pytest.raises(ConfigError, match="never wrote"):
        run_corpus(corpus, out, config, workers=1, progress=False, state_dir=tmp_path / "b")
    again = run_corpus(corpus, out, config, workers=1, progress=False, state_dir=tmp_path / "a")
    assert again.exit_code == 0 and again.report["inputs"]["skipped"] == 4  # its own state: marked again
    with pytest.raises(ConfigError, match="--state .*/a"):  # --full too: taking an output over is explicit
        run_corpus(corpus, out, config, workers=1, progress=False, state_dir=tmp_path / "c", full=True)
    fs.rm_file(f"{root}/.pagewash-state")
    full = run_corpus(corpus, out, config, workers=1, progress=False, state_dir=tmp_path / "c", full=True)
    assert full.exit_code == 0 and full.report["documents"] == 4 and full.report["inputs"]["new"] == 4
    assert sum(len(list(store.lines("documents", n))) for n in store.names("documents")) == 4
    with pytest.raises(ConfigError, match="--state .*/c"):
        run_corpus(corpus, out, config, workers=1, progress=False, state_dir=tmp_path / "a")


def test_a_non_object_store_gets_a_temp_name_then_a_rename(tmp_path: Path, monkeypatch):
    """On fsspec's local filesystem (as on sftp, hdfs…) an upload is not all or nothing: it goes to a temp
    name first, which a killed upload leaves behind and the next run sweeps."""
    store = FsspecStore(f"local://{tmp_path / 'out'}", tmp_path / "scratch")
    assert not store.object_store and FsspecStore(_memory_url(), tmp_path / "s").object_store
    uploads = []
    real_put = store.fs.put_file
    monkeypatch.setattr(store.fs, "put_file", lambda src, dst, **kw: (uploads.append(dst), real_put(src, dst, **kw)))
    shard = ShardSet(store, 0)
    shard.write("documents", {"id": "a"})
    shard.publish()
    assert uploads == [f"{tmp_path / 'out' / 'documents'}/.part-000000.jsonl.tmp"]
    assert store.names("documents") == ["part-000000.jsonl"]


def test_a_failing_store_stops_the_run_with_exit_75_and_loses_nothing(tmp_path: Path, monkeypatch):
    from pipeline import cli
    from pipeline.io.store import StoreError

    corpus, out = _seed_corpus(tmp_path), f"local://{tmp_path / 'out'}"
    real_publish = FsspecStore.publish

    def flaky(self, stream, name, local):
        if stream == "rejects" or "1.jsonl" in name:  # shard 1, in any format
            raise StoreError(f"{self.url}: publish failed: ConnectionError: the network is down")
        return real_publish(self, stream, name, local)

    config = tmp_path / "pagewash.toml"
    config.write_text("shard_pages = 1\n", encoding="utf-8")
    monkeypatch.setattr(FsspecStore, "publish", flaky)
    args = ["-q", "run", str(corpus), "-o", out, "--state", str(tmp_path / "state"), "--workers", "1",
            "--no-progress", "--config", str(config)]
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    assert cli.main(args) == 75
    monkeypatch.setattr(FsspecStore, "publish", real_publish)
    assert cli.main(args) == 0
    store = FsspecStore(out, tmp_path / "scratch")
    assert sum(len(list(store.lines("documents", n))) for n in store.names("documents")) == 5
