"""Whole runs (pipeline/batch.py): workers, incremental reruns, kills at any moment, the lock, bad inputs."""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import ARTICLE, ROOT, SEEDS_RAW, SHARED, shard_files, shard_lines

from pipeline.config import load_config
from pipeline.io.store import LocalStore
from pipeline.run.corpus import run_corpus
from pipeline.state import STATE_DIR, run_lock

DEV_DUMPS = SHARED / "bench" / "wcxb-dev" / "dumps" / "bs4"
EPOCH = {"SOURCE_DATE_EPOCH": "1760000000"}
STREAMS = ("documents", "duplicates", "rejects")


def cli(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, **EPOCH, **(env or {})}, **kw)


def lines(out: Path) -> dict[str, Counter]:
    """Every record line of each stream, as a multiset: what a run produced, whatever its shards."""
    return {stream: Counter(line for shard in shard_files(out / stream) for line in shard_lines(shard))
            for stream in STREAMS}


def ids(out: Path, stream: str) -> list[str]:
    return [json.loads(line)["id"] for line in lines(out)[stream].elements()]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Real dev-set dumps, the seeds, syndicated copies of two seeds, a JSONL export and two bad inputs."""
    raw = tmp_path_factory.mktemp("corpus") / "raw"
    raw.mkdir()
    for path in sorted(DEV_DUMPS.glob("*.txt.gz"))[:36]:
        (raw / path.name).write_bytes(path.read_bytes())
    for seed in sorted(SEEDS_RAW.glob("*.txt")):
        (raw / seed.name).write_bytes(seed.read_bytes())
    seed0 = (SEEDS_RAW / "000_d2de09946bceaf6b.txt").read_text(encoding="utf-8")
    (raw / "zz_copy_of_000.txt").write_text(seed0, encoding="utf-8")  # the same page scraped twice
    seed3 = (SEEDS_RAW / "003_dd8aa30334888c44.txt").read_text(encoding="utf-8")
    (raw / "zz_syndicated_003.txt").write_text(
        "Wire story, as syndicated\n\n" + seed3 + "\n\nThis story was distributed by a news agency.\n",
        encoding="utf-8")
    pages = [{"url": f"https://example.org/{n}", "text": gzip.decompress(path.read_bytes()).decode("utf-8")}
             for n, path in enumerate(sorted(DEV_DUMPS.glob("*.txt.gz"))[40:46])]
    with gzip.open(raw / "export.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write("\n".join(json.dumps(p) for p in pages) + "\n{broken\n")
    (raw / "binary.txt").write_bytes(bytes(range(256)) * 40)
    return raw


@pytest.fixture(scope="module")
def small_shards(tmp_path_factory) -> Path:
    config = tmp_path_factory.mktemp("config") / "pagewash.toml"
    config.write_text("shard_pages = 4\nmax_error_rate = 0.2\n", encoding="utf-8")
    return config


@pytest.fixture(scope="module")
def reference(corpus: Path, small_shards: Path, tmp_path_factory) -> Path:
    """An uninterrupted run with two workers: what every other way of running must reproduce."""
    out = tmp_path_factory.mktemp("reference") / "out"
    proc = cli("run", str(corpus), "-o", str(out), "--config", str(small_shards), "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    return out


def test_reference_run_dedups_and_reports(reference: Path, corpus: Path):
    out = lines(reference)
    assert sum(out["documents"].values()) > 30
    dups = [json.loads(line) for line in out["duplicates"]]
    by_source = {Path(d["metadata"]["source_path"]).name: d for d in dups}
    assert {"zz_copy_of_000.txt", "zz_syndicated_003.txt"} <= set(by_source) or (
        {"000_d2de09946bceaf6b.txt", "003_dd8aa30334888c44.txt"} & set(by_source))
    for dup in dups:
        meta = dup["metadata"]
        assert meta["duplicate_of"] and meta["dup_cluster"] == meta["duplicate_of"] and meta["similarity"] > 0.5
    kept = set(ids(reference, "documents"))
    assert all(json.loads(line)["metadata"]["duplicate_of"] in kept for line in out["duplicates"])
    assert len(kept) == sum(out["documents"].values())  # no id twice among kept documents
    reasons = Counter(json.loads(line)["metadata"]["filter_reason"] for line in out["rejects"])
    assert reasons["binary"] == 1 and reasons["bad_jsonl"] == 1
    report = json.loads((reference / "report.json").read_text(encoding="utf-8"))
    assert report["status"] == "done" and report["inputs"]["new"] == report["inputs"]["seen"] == 45
    assert report["duplicates"] == sum(out["duplicates"].values())
    assert report["documents"] == sum(out["documents"].values())
    assert report["pages"] == sum(sum(c.values()) for c in out.values())
    assert report["peak_rss_mb"]["driver"] > 0 and report["throughput"]["pages_per_s"] > 0
    assert not list(reference.rglob("*.tmp")) and not list((reference / STATE_DIR / "staged").glob("*"))
    # the dedup phase's figures: clusters by size, links by what made them (both copies are exact once cleaned)
    dedup = report["dedup"]
    assert dedup["cluster_sizes"] == {"2": 2} and dedup["clusters_with_duplicates"] == 2
    assert dedup["links"]["exact"] == 2 and set(dedup["links"]) <= {"exact", "jaccard", "containment"}
    stats = cli("stats", str(reference))
    assert "dedup: 2 duplicates in 2 clusters (sizes 2: 2); links exact 2" in stats.stdout, stats.stdout


def test_output_identical_across_worker_counts(corpus: Path, small_shards: Path, reference: Path, tmp_path: Path):
    out = tmp_path / "one"
    assert cli("run", str(corpus), "-o", str(out), "--config", str(small_shards), "--workers", "1").returncode == 0
    for stream in STREAMS:
        ours = {p.name: p.read_bytes() for p in shard_files(out / stream)}
        theirs = {p.name: p.read_bytes() for p in shard_files(reference / stream)}
        assert ours == theirs, stream


def test_rerun_with_nothing_new_does_nothing(corpus: Path, small_shards: Path, reference: Path, tmp_path: Path):
    out = tmp_path / "out"
    assert cli("run", str(corpus), "-o", str(out), "--config", str(small_shards)).returncode == 0
    before = {p: p.read_bytes() for p in out.rglob("part-*")}
    proc = cli("run", str(corpus), "-o", str(out), "--config", str(small_shards))
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["inputs"]["skipped"] == report["inputs"]["seen"] == 45 and report["pages"] == 0
    assert {p: p.read_bytes() for p in out.rglob("part-*")} == before
    assert "0 new" in proc.stderr and "45 unchanged" in proc.stderr
    # with nothing to clean, no worker starts and no pipeline module (trafilatura, language models) loads
    again = subprocess.run([sys.executable, "-X", "importtime", str(ROOT / "cli.py"), "run", str(corpus), "-o",
                            str(out), "--config", str(small_shards)], capture_output=True, text=True, cwd=ROOT)
    assert again.returncode == 0 and "import time" in again.stderr and "trafilatura" not in again.stderr


def test_incremental_new_changed_and_touched_inputs(corpus: Path, small_shards: Path, tmp_path: Path):
    raw = tmp_path / "raw"
    raw.mkdir()
    names = sorted(p.name for p in corpus.glob("00[0-9]_*.txt"))[:2] + sorted(
        p.name for p in corpus.glob("*.txt.gz"))[:8]
    for name in names:
        (raw / name).write_bytes((corpus / name).read_bytes())
    out = tmp_path / "out"
    assert cli("run", str(raw), "-o", str(out), "--config", str(small_shards)).returncode == 0
    first = set(ids(out, "documents")) | set(ids(out, "rejects"))
    # a new input, a changed one (a new paragraph), one only touched (same content, new mtime)
    (raw / "new_story.txt").write_bytes((SEEDS_RAW / "004_57d7f56e55303209.txt").read_bytes())
    changed = raw / names[0]
    changed.write_text(changed.read_text(encoding="utf-8") + "\n\nA paragraph added later, long enough to be kept "
                       "as prose by the cleaner because it has many ordinary words in it.\n", encoding="utf-8")
    os.utime(raw / names[1], ns=(time.time_ns(), time.time_ns() + 10**9))
    proc = cli("run", str(raw), "-o", str(out), "--config", str(small_shards))
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["inputs"]["new"] == 1 and report["inputs"]["changed"] == 1 and report["inputs"]["skipped"] == 9
    after = ids(out, "documents") + ids(out, "rejects")
    assert len(after) == len(set(after)) == len(first) + 1  # the changed input replaced, not added twice
    # the same as cleaning the final folder from scratch
    fresh = tmp_path / "fresh"
    assert cli("run", str(raw), "-o", str(fresh), "--config", str(small_shards)).returncode == 0
    strip = lambda out: {s: sorted(_without_stamp(line) for line in c.elements()) for s, c in lines(out).items()}  # noqa: E731
    assert strip(out) == strip(fresh)


def _without_stamp(line: str) -> str:
    record = json.loads(line)
    record["metadata"].pop("processed_at")
    record.pop("added")  # the run's start too
    return json.dumps(record, sort_keys=True)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_at_random_moments_then_rerun_gives_the_uninterrupted_output(
        corpus: Path, small_shards: Path, reference: Path, tmp_path: Path, seed: int):
    rng = random.Random(seed)
    out = tmp_path / "out"
    args = [sys.executable, str(ROOT / "cli.py"), "run", str(corpus), "-o", str(out), "--config", str(small_shards),
            "--workers", str(rng.choice([1, 2]))]
    for _attempt in range(2):  # killed twice at random moments, then left to finish
        proc = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **EPOCH},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(0.5, 4.0))
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers, as the OOM killer or a reboot would
        proc.wait()
    final = subprocess.run(args, cwd=ROOT, env={**os.environ, **EPOCH}, capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    assert lines(out) == lines(reference)
    assert not list(out.rglob("*.tmp"))


def test_sigterm_finishes_the_shard_in_hand_and_exits_cleanly(corpus: Path, small_shards: Path, reference: Path,
                                                             tmp_path: Path):
    out = tmp_path / "out"
    args = [sys.executable, str(ROOT / "cli.py"), "run", str(corpus), "-o", str(out), "--config", str(small_shards),
            "--workers", "1"]
    proc = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **EPOCH}, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list((out / STATE_DIR / "staged").glob("part-*.jsonl")) and time.monotonic() < deadline:
        time.sleep(0.05)  # the first shard is committed: the run is under way
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    if report["status"] == "done":  # the machine was fast enough to finish first (the signal may then
        assert proc.returncode in (0, -signal.SIGTERM)  # land after the run, before the process exits)
    else:
        assert proc.returncode == 128 + signal.SIGTERM, err
        assert report["status"] == "interrupted" and "interrupted" in err
    assert not list(out.rglob("*.tmp"))
    assert cli("run", str(corpus), "-o", str(out), "--config", str(small_shards)).returncode == 0
    assert lines(out) == lines(reference)


def test_second_run_on_same_output_exits_75_or_waits(corpus: Path, tmp_path: Path):
    out = tmp_path / "out"
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.txt").write_bytes((SEEDS_RAW / "001_92dcaf02a642ec9d.txt").read_bytes())
    with run_lock(out / STATE_DIR):
        started = time.monotonic()
        proc = cli("run", str(raw), "-o", str(out))
        assert proc.returncode == 75 and "in use" in proc.stderr and "--wait" in proc.stderr
        assert time.monotonic() - started < 30  # at once, not after a timeout
        assert not (out / "documents").exists()
    # with --wait, the second run blocks until the first releases the lock, then runs
    holder = threading.Event()

    def hold() -> None:
        with run_lock(out / STATE_DIR):
            holder.set()
            time.sleep(2.0)

    thread = threading.Thread(target=hold)
    thread.start()
    holder.wait()
    proc = cli("run", str(raw), "-o", str(out), "--wait")
    thread.join()
    assert proc.returncode == 0, proc.stderr
    assert len(ids(out, "documents")) == 1


def test_bad_inputs_become_rejects_and_error_rate_sets_exit_code(tmp_path: Path, monkeypatch):
    raw = tmp_path / "raw"
    raw.mkdir()
    for n, seed in enumerate(sorted(SEEDS_RAW.glob("*.txt"))):
        (raw / f"good{n}.txt").write_bytes(seed.read_bytes())
    good = (SEEDS_RAW / "002_b241d0af29c2cc30.txt").read_bytes()
    (raw / "truncated.txt.gz").write_bytes(gzip.compress(good)[:-200])
    (raw / "binary.txt").write_bytes(os.urandom(4096))
    with open(raw / "huge.txt", "wb") as handle:  # 1 GB, sparse: rejected by its size, never read
        handle.truncate(1024**3)
    (raw / "locked.txt").write_bytes(good)
    (raw / "vanishing.txt").write_bytes(good)
    import pipeline.state.run as state_module

    real_sha1 = state_module.file_sha1

    def sha1(path: Path) -> str:
        if path.name == "locked.txt":
            raise PermissionError(13, "Permission denied", str(path))
        if path.name == "vanishing.txt":
            path.unlink()  # gone between the listing and the read
        return real_sha1(path)

    monkeypatch.setattr(state_module, "file_sha1", sha1)
    config = load_config(max_error_rate=0.5)
    result = run_corpus(raw, tmp_path / "out", config, workers=0, progress=False)
    reasons = {Path(json.loads(line)["metadata"]["source_path"]).name: json.loads(line)["metadata"]["filter_reason"]
               for line in lines(tmp_path / "out")["rejects"]}
    assert reasons == {"truncated.txt.gz": "bad_gzip", "binary.txt": "binary", "huge.txt": "too_large",
                       "locked.txt": "unreadable", "vanishing.txt": "unreadable"}
    assert result.exit_code == 0 and result.failures == 5  # 5 of 10 pages: not above 50 %
    assert result.report["inputs"]["failed"] == 2
    strict = run_corpus(raw, tmp_path / "strict", load_config(max_error_rate=0.05), workers=0, progress=False)
    assert strict.exit_code == 1
    # the unreadable input is tried again next run; once readable, its reject gives way to its document
    monkeypatch.setattr(state_module, "file_sha1", real_sha1)
    (raw / "vanishing.txt").write_bytes(good)
    again = run_corpus(raw, tmp_path / "out", config, workers=0, progress=False)
    assert again.report["inputs"]["new"] == 0 and again.report["inputs"]["changed"] == 2
    reasons = [json.loads(line)["metadata"]["filter_reason"] for line in lines(tmp_path / "out")["rejects"]]
    assert sorted(reasons) == ["bad_gzip", "binary", "too_large"]


def test_kill_between_dedup_and_commit_then_rerun(corpus: Path, small_shards: Path, reference: Path,
                                                 tmp_path: Path, monkeypatch):
    """The dedup step's files are published and the index's new band run written, then the process dies
    before the state records them: the rerun resumes every task, and the unnamed run is swept."""
    from pipeline import dedup

    out = tmp_path / "out"
    config = load_config(small_shards, max_error_rate=0.2)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH["SOURCE_DATE_EPOCH"])

    class Killed(BaseException):
        pass

    real_finish = dedup.index._RunWriter.finish

    def die(self):
        real_finish(self)  # the run's files are in place, named in a transaction that never commits
        raise Killed

    monkeypatch.setattr(dedup.index._RunWriter, "finish", die)
    with pytest.raises(Killed):
        run_corpus(corpus, out, config, workers=2, progress=False)
    # every step finished and left its marker (the filtered files already in the output's format, gzip JSON lines:
    # the step's workers compress them, the commit only moves them); nothing reached documents/ or duplicates/
    assert list((out / STATE_DIR / "dedup").glob("round-*/filtered/documents/part-*.jsonl.gz"))
    assert not shard_files(out / "documents")
    orphans = list((out / STATE_DIR / "index").glob("run-*"))
    assert len(orphans) == 1
    monkeypatch.setattr(dedup.index._RunWriter, "finish", real_finish)
    again = run_corpus(corpus, out, config, workers=2, progress=False)
    assert again.exit_code == 0
    assert again.report["dedup"]["tasks"]["run"] == 0 and again.report["dedup"]["tasks"]["resumed"] > 0
    # the rerun cleaned no page: what it published was the killed run's, and counts never go negative
    assert again.report["documents"] == 0 and again.report["duplicates"] == 0
    earlier = again.report["dedup"]["from_earlier_runs"]
    assert earlier["duplicates"] == len(ids(reference, "duplicates")) > 0
    assert [p.name for p in (out / STATE_DIR / "index").iterdir()] == [orphans[0].name]  # rewritten, named now
    assert earlier["documents"] == len(ids(reference, "documents"))
    assert lines(out) == lines(reference)
    assert not list((out / STATE_DIR / "dedup").glob("round-*"))


def test_kill_between_dedup_commit_and_install_then_rerun(corpus: Path, small_shards: Path, reference: Path,
                                                        tmp_path: Path, monkeypatch):
    """The state says the shards are final, the process dies before the filtered files are moved into place:
    the next run moves them before anything else (and `dedup --rebuild` would too)."""
    from pipeline.dedup import driver as dedup_driver

    out = tmp_path / "out"
    config = load_config(small_shards, max_error_rate=0.2)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH["SOURCE_DATE_EPOCH"])

    class Killed(BaseException):
        pass

    real_install = dedup_driver.install_rounds

    def die(*args):  # the round's, after its commit (the run's start-up check is batch's own)
        raise Killed

    monkeypatch.setattr(dedup_driver, "install_rounds", die)
    with pytest.raises(Killed):
        run_corpus(corpus, out, config, workers=2, progress=False)
    assert not shard_files(out / "documents")
    monkeypatch.setattr(dedup_driver, "install_rounds", real_install)
    again = run_corpus(corpus, out, config, workers=2, progress=False)
    assert again.exit_code == 0 and again.report["inputs"]["skipped"] == 45 and again.report["dedup"] == {}
    assert lines(out) == lines(reference)


def test_full_reprocesses_everything(corpus: Path, small_shards: Path, reference: Path, tmp_path: Path):
    out = tmp_path / "out"
    assert cli("run", str(corpus), "-o", str(out), "--config", str(small_shards)).returncode == 0
    proc = cli("run", str(corpus), "-o", str(out), "--config", str(small_shards), "--full")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["inputs"]["new"] == 45 and report["duplicates"] > 0
    assert lines(out) == lines(reference)
    stats = cli("stats", str(out))
    assert stats.returncode == 0 and "history:" in stats.stdout
    assert [line.split()[3] for line in stats.stdout.splitlines() if line.startswith("  run ")] == ["done", "done"]


def test_dedup_rebuild_after_changing_parameters(corpus: Path, small_shards: Path, reference: Path, tmp_path: Path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("000_d2de09946bceaf6b.txt", "001_92dcaf02a642ec9d.txt", "003_dd8aa30334888c44.txt",
                 "zz_copy_of_000.txt", "zz_syndicated_003.txt"):
        (raw / name).write_bytes((corpus / name).read_bytes())
    out = tmp_path / "out"
    assert cli("run", str(raw), "-o", str(out)).returncode == 0
    before = {s: sorted(ids(out, s)) for s in ("documents", "duplicates")}
    assert len(before["duplicates"]) == 2
    other = tmp_path / "other.toml"
    other.write_text("[dedup]\nnum_perm = 64\nbands = 16\nrows = 4\nthreshold = 0.95\n", encoding="utf-8")
    (raw / "002_b241d0af29c2cc30.txt").write_bytes((corpus / "002_b241d0af29c2cc30.txt").read_bytes())
    refused = cli("run", str(raw), "-o", str(out), "--config", str(other))
    assert refused.returncode == 2 and f"pagewash dedup --rebuild -o {out}" in refused.stderr  # a command that works
    rebuilt = cli("dedup", "--rebuild", "-o", str(out), "--config", str(other))
    assert rebuilt.returncode == 0, rebuilt.stderr
    after = {s: sorted(ids(out, s)) for s in ("documents", "duplicates")}
    # the same records, the same clusters (both copies are exact once cleaned), now under the new parameters
    assert after == before
    assert all(json.loads(line)["metadata"]["similarity"] == 1.0 for line in lines(out)["duplicates"])
    assert cli("run", str(raw), "-o", str(out), "--config", str(other)).returncode == 0  # the new input
    stats = json.loads(cli("stats", str(out), "--json").stdout)
    assert stats["last_run"]["totals"]["documents"] == len(ids(out, "documents")) == len(after["documents"]) + 1


def test_next_run_sends_only_new_near_copies_to_duplicates(corpus: Path, tmp_path: Path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("000_d2de09946bceaf6b.txt", "001_92dcaf02a642ec9d.txt"):
        (raw / name).write_bytes((corpus / name).read_bytes())
    out = tmp_path / "out"
    assert cli("run", str(raw), "-o", str(out)).returncode == 0
    kept = sorted(ids(out, "documents"))
    assert len(kept) == 2 and not ids(out, "duplicates")  # two reports of one event are not duplicates
    # tonight's crawl: the same story syndicated elsewhere, longer (an extra paragraph) and with a footer
    seed0 = (corpus / "000_d2de09946bceaf6b.txt").read_text(encoding="utf-8")
    lead = next(line for line in seed0.splitlines() if line.startswith("In a decisive effort"))
    added = ("The visit was reported by several regional newspapers, which carried the agency's account of the "
             "talks in full on their front pages the following morning.")
    copy = seed0.replace(lead, lead + "\n\n" + added) + "\n\nDistributed by Wire Agency.\n"
    (raw / "syndicated.txt").write_text(copy, encoding="utf-8")
    assert cli("run", str(raw), "-o", str(out)).returncode == 0
    assert sorted(ids(out, "documents")) == kept  # the earlier document stays, although the copy is longer
    dups = [json.loads(line) for line in lines(out)["duplicates"]]
    assert [Path(d["metadata"]["source_path"]).name for d in dups] == ["syndicated.txt"]
    assert dups[0]["metadata"]["duplicate_of"] in kept and 0.6 <= dups[0]["metadata"]["similarity"] < 1.0


def _one_story(tmp_path: Path) -> tuple[Path, Path, Path]:
    """raw/ holding one seed dump as story.txt, and an output folder: (raw, story, out)."""
    raw = tmp_path / "raw"
    raw.mkdir()
    story = raw / "story.txt"
    story.write_bytes((SEEDS_RAW / "001_92dcaf02a642ec9d.txt").read_bytes())
    return raw, story, tmp_path / "out"


def test_input_changed_after_a_run_killed_before_dedup(tmp_path: Path, monkeypatch):
    """The staged shard held only the changed input's documents: its retraction empties it."""
    from pipeline.run import batch

    raw, story, out = _one_story(tmp_path)

    class Killed(BaseException):
        pass

    def die(self):
        raise Killed

    real_dedup = batch.BatchRun.dedup
    monkeypatch.setattr(batch.BatchRun, "dedup", die)
    with pytest.raises(Killed):
        run_corpus(raw, out, load_config(), workers=0, progress=False)
    monkeypatch.setattr(batch.BatchRun, "dedup", real_dedup)
    story.write_bytes((SEEDS_RAW / "004_57d7f56e55303209.txt").read_bytes())
    result = run_corpus(raw, out, load_config(), workers=0, progress=False)
    assert result.exit_code == 0 and result.report["inputs"]["changed"] == 1
    docs = [json.loads(line) for line in lines(out)["documents"]]
    assert len(docs) == 1 and docs[0]["metadata"]["source_path"].endswith("story.txt")
    assert docs[0]["metadata"]["title"] == json.loads(
        (SHARED / "seeds" / "gold" / "004_57d7f56e55303209.json").read_text(encoding="utf-8"))["title"]


def test_driver_peak_is_its_own_not_its_parents(tmp_path):
    """ru_maxrss survives execve: a driver started by a parent holding 300 MB reported 300 MB. The report's
    driver peak is the driver's own (VmHWM)."""
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.txt").write_text("\n".join(ARTICLE), encoding="utf-8")
    script = ("import subprocess, sys\n"
              "ballast = bytearray(300 * 1024 * 1024)\n"
              "for k in range(0, len(ballast), 4096): ballast[k] = 1\n"
              f"sys.exit(subprocess.run([sys.executable, {str(ROOT / 'cli.py')!r}, '-q', 'run', {str(raw)!r}, "
              f"'-o', {str(tmp_path / 'out')!r}, '--workers', '1', '--no-progress']).returncode)\n")
    subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT)
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert 0 < report["peak_rss_mb"]["driver"] < 250


def test_retraction_tells_nested_inputs_with_the_same_name_apart(tmp_path: Path):
    """`a/x.jsonl` and `x.jsonl` hold the same URL (one id) in one shard; when `x.jsonl` changes, only its
    record is retracted: the one from `a/x.jsonl`, whose path also ends in `/x.jsonl`, stays."""
    from pipeline.records import from_input as _from_input

    assert _from_input("/data/raw/a/x.jsonl:1", "x.jsonl")  # alone, a suffix match
    assert not _from_input("/data/raw/a/x.jsonl:1", "x.jsonl", ["a/x.jsonl"])
    assert _from_input("/data/raw/x.jsonl:1", "x.jsonl", ["a/x.jsonl"])
    assert _from_input("/data/raw/a/x.jsonl@40", "a/x.jsonl", ["x.jsonl"])

    raw = tmp_path / "raw"
    (raw / "a").mkdir(parents=True)
    story = SEEDS_RAW / "001_92dcaf02a642ec9d.txt"
    line = json.dumps({"url": "https://example.org/story", "text": story.read_text(encoding="utf-8")}) + "\n"
    (raw / "a" / "x.jsonl").write_text(line, encoding="utf-8")
    (raw / "x.jsonl").write_text(line, encoding="utf-8")
    out = tmp_path / "out"
    assert run_corpus(raw, out, load_config(), workers=0, progress=False).exit_code == 0
    before = [json.loads(text) for stream in ("documents", "duplicates") for text in lines(out)[stream]]
    assert sorted(r["metadata"]["source_path"].split(str(raw))[1] for r in before) == ["/a/x.jsonl:1", "/x.jsonl:1"]

    other = SEEDS_RAW / "004_57d7f56e55303209.txt"
    (raw / "x.jsonl").write_text(json.dumps({"url": "https://example.org/other",
                                             "text": other.read_text(encoding="utf-8")}) + "\n", encoding="utf-8")
    result = run_corpus(raw, out, load_config(), workers=0, progress=False)
    assert result.exit_code == 0 and result.report["inputs"]["changed"] == 1
    after = [json.loads(text) for stream in ("documents", "duplicates") for text in lines(out)[stream]]
    paths = sorted(r["metadata"]["source_path"].split(str(raw))[1] for r in after)
    assert paths == ["/a/x.jsonl:1", "/x.jsonl:1"]
    urls = {r["metadata"]["source_path"].split(str(raw))[1]: r["metadata"]["url"] for r in after}
    assert urls == {"/a/x.jsonl:1": "https://example.org/story", "/x.jsonl:1": "https://example.org/other"}


def _change_and_kill_retraction(story: Path, raw: Path, out: Path, monkeypatch) -> None:
    """Change `story`, then run and die after its old records left the shard files, before the state forgot
    them (`_count_rows` runs inside that transaction)."""
    from pipeline.run import retract

    class Killed(BaseException):
        pass

    def die(rows):
        raise Killed

    story.write_bytes((SEEDS_RAW / "004_57d7f56e55303209.txt").read_bytes())
    monkeypatch.setattr(retract, "_count_rows", die)
    with pytest.raises(Killed):
        run_corpus(raw, out, load_config(), workers=0, progress=False)
    monkeypatch.undo()


def test_retraction_killed_half_way_then_input_reverts(tmp_path: Path, monkeypatch):
    """Killed after the shard files lost an input's records but before the state forgot them, and the input
    then put back as it was (same bytes, same mtime): the next run must not skip it, or its record is lost."""
    raw, story, out = _one_story(tmp_path)
    original, stamp = story.read_bytes(), story.stat().st_mtime_ns
    assert run_corpus(raw, out, load_config(), workers=0, progress=False).exit_code == 0
    first = lines(out)["documents"]
    assert len(first) == 1

    _change_and_kill_retraction(story, raw, out, monkeypatch)
    assert not lines(out)["documents"]  # the kill came after the record left the files
    story.write_bytes(original)
    os.utime(story, ns=(stamp, stamp))
    result = run_corpus(raw, out, load_config(), workers=0, progress=False)
    assert result.exit_code == 0
    assert Counter(_without_stamp(line) for line in lines(out)["documents"].elements()) == Counter(
        _without_stamp(line) for line in first.elements())


def test_retraction_when_the_input_root_is_named_like_a_subfolder(tmp_path: Path):
    """Root `.../a` holding `x.jsonl` and `a/x.jsonl`: both records' paths end in `/a/x.jsonl`; the path
    under this run's root decides whose each is."""
    from pipeline.records import from_input as _from_input

    root = Path("/data/a")
    assert _from_input("/data/a/x.jsonl:1", "x.jsonl", ["a/x.jsonl"], root)
    assert not _from_input("/data/a/a/x.jsonl:1", "x.jsonl", ["a/x.jsonl"], root)
    assert _from_input("/data/a/a/x.jsonl:1", "a/x.jsonl", ["x.jsonl"], root)
    assert not _from_input("/data/a/x.jsonl:1", "a/x.jsonl", ["x.jsonl"], root)

    raw = tmp_path / "a"
    (raw / "a").mkdir(parents=True)
    story = (SEEDS_RAW / "001_92dcaf02a642ec9d.txt").read_text(encoding="utf-8")
    line = json.dumps({"url": "https://example.org/story", "text": story}) + "\n"
    (raw / "a" / "x.jsonl").write_text(line, encoding="utf-8")
    (raw / "x.jsonl").write_text(line, encoding="utf-8")
    out = tmp_path / "out"
    assert run_corpus(raw, out, load_config(), workers=0, progress=False).exit_code == 0
    other = (SEEDS_RAW / "004_57d7f56e55303209.txt").read_text(encoding="utf-8")
    (raw / "x.jsonl").write_text(json.dumps({"url": "https://example.org/other", "text": other}) + "\n",
                                 encoding="utf-8")
    assert run_corpus(raw, out, load_config(), workers=0, progress=False).exit_code == 0
    after = [json.loads(text) for stream in ("documents", "duplicates") for text in lines(out)[stream]]
    urls = sorted((r["metadata"]["source_path"][len(str(raw)):], r["metadata"]["url"]) for r in after)
    assert urls == [("/a/x.jsonl:1", "https://example.org/story"), ("/x.jsonl:1", "https://example.org/other")]


def test_dedup_rebuild_refuses_while_a_retraction_is_unfinished(tmp_path: Path, monkeypatch):
    from pipeline.config import ConfigError
    from pipeline.dedup.rebuild import rebuild_dedup

    raw, story, out = _one_story(tmp_path)
    assert run_corpus(raw, out, load_config(), workers=0, progress=False).exit_code == 0

    _change_and_kill_retraction(story, raw, out, monkeypatch)
    with pytest.raises(ConfigError, match="run it again first"):
        rebuild_dedup(LocalStore(out), out / STATE_DIR, load_config())
    assert run_corpus(raw, out, load_config(), workers=0, progress=False).exit_code == 0
    rebuild_dedup(LocalStore(out), out / STATE_DIR, load_config())  # finished: allowed again


def test_deleted_and_renamed_inputs_are_retracted(tmp_path: Path):
    """A deleted input's record left documents/; a renamed one's old record stays no more, and the new name
    is a document, not a duplicate of the vanished file; the report and the summary count them."""
    raw = tmp_path / "raw"
    raw.mkdir()
    seeds = sorted(SEEDS_RAW.glob("*.txt"))
    for name, seed in zip(("keep.txt", "delete.txt", "rename.txt"), seeds, strict=False):
        (raw / name).write_bytes(seed.read_bytes())
    out = tmp_path / "out"
    assert run_corpus(raw, out, load_config(), workers=0, progress=False).exit_code == 0
    assert len(ids(out, "documents")) == 3
    (raw / "delete.txt").unlink()
    (raw / "rename.txt").rename(raw / "renamed.txt")
    proc = cli("run", str(raw), "-o", str(out), "--workers", "1", "--no-progress")
    assert proc.returncode == 0 and "1 new, 0 changed, 0 resumed, 1 unchanged, 2 deleted" in proc.stderr
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["inputs"]["deleted"] == 2 and report["duplicates"] == 0
    sources = {stream: sorted(Path(json.loads(line)["metadata"]["source_path"]).name for line in found)
               for stream, found in lines(out).items()}
    assert sources == {"documents": ["keep.txt", "renamed.txt"], "duplicates": [], "rejects": []}
    third = run_corpus(raw, out, load_config(), workers=0, progress=False)
    assert third.report["inputs"] == {**third.report["inputs"], "new": 0, "deleted": 0, "skipped": 2}
    assert third.report["pages"] == 0


def test_another_root_into_the_same_output_retracts_nothing(tmp_path: Path):
    """Keys are relative to their root: a run over another RAW does not take the first root's inputs for
    deleted; a run over the first root retracts only its own missing input; an empty RAW retracts nothing
    (an unmounted volume looks like that)."""
    first, second, empty = tmp_path / "first", tmp_path / "second", tmp_path / "empty"
    for folder in (first, second, empty):
        folder.mkdir()
    seeds = sorted(SEEDS_RAW.glob("*.txt"))
    (first / "a.txt").write_bytes(seeds[0].read_bytes())
    (first / "b.txt").write_bytes(seeds[1].read_bytes())
    (second / "c.txt").write_bytes(seeds[2].read_bytes())
    out = tmp_path / "out"
    run_corpus(first, out, load_config(), workers=0, progress=False)
    assert run_corpus(second, out, load_config(), workers=0, progress=False).report["inputs"]["deleted"] == 0
    assert len(ids(out, "documents")) == 3
    assert run_corpus(empty, out, load_config(), workers=0, progress=False).report["inputs"]["deleted"] == 0
    assert len(ids(out, "documents")) == 3
    (first / "b.txt").unlink()
    assert run_corpus(first, out, load_config(), workers=0, progress=False).report["inputs"]["deleted"] == 1
    names = sorted(Path(json.loads(line)["metadata"]["source_path"]).name for line in lines(out)["documents"])
    assert names == ["a.txt", "c.txt"]


def test_deleted_input_retraction_killed_half_way_then_rerun(tmp_path: Path, monkeypatch):
    """Killed after a deleted input's records left the shard files, before the state forgot them: the next
    run finishes the retraction, and the one after is a no-op."""
    from pipeline.run import retract

    raw, story, out = _one_story(tmp_path)
    (raw / "other.txt").write_bytes((SEEDS_RAW / "004_57d7f56e55303209.txt").read_bytes())
    assert run_corpus(raw, out, load_config(), workers=0, progress=False).exit_code == 0
    story.unlink()

    class Killed(BaseException):
        pass

    def die(rows):
        raise Killed

    monkeypatch.setattr(retract, "_count_rows", die)
    with pytest.raises(Killed):
        run_corpus(raw, out, load_config(), workers=0, progress=False)
    monkeypatch.undo()
    again = run_corpus(raw, out, load_config(), workers=0, progress=False)
    assert again.report["inputs"]["deleted"] == 1
    assert [Path(json.loads(line)["metadata"]["source_path"]).name for line in lines(out)["documents"]] == [
        "other.txt"]
    last = run_corpus(raw, out, load_config(), workers=0, progress=False)
    assert last.report["inputs"]["deleted"] == 0 and last.report["pages"] == 0


def _clusters(out: Path) -> dict[str, tuple]:
    """(id, source_path) -> (stream, duplicate_of, dup_cluster) of every document and duplicate of an output."""
    found = {}
    for stream in ("documents", "duplicates"):
        for line in lines(out)[stream].elements():
            record = json.loads(line)
            meta = record["metadata"]
            found[(record["id"], meta["source_path"])] = (stream, meta["duplicate_of"], meta["dup_cluster"])
    return found


def test_run_dedup_and_rebuild_give_the_same_clusters(reference: Path, tmp_path: Path):
    """One engine: `pagewash dedup` over the records a run cleaned, and `dedup --rebuild` of either output,
    decide as the run did."""
    expected = _clusters(reference)
    assert any(stream == "duplicates" for stream, _, _ in expected.values())
    export = tmp_path / "cleaned.jsonl"
    with open(export, "w", encoding="utf-8") as handle:
        for stream in ("documents", "duplicates"):
            for line in sorted(lines(reference)[stream].elements()):
                record = json.loads(line)
                for key in ("duplicate_of", "similarity", "dup_cluster"):
                    del record["metadata"][key]
                handle.write(json.dumps(record) + "\n")
    dedup_out = tmp_path / "dedup"
    proc = cli("dedup", str(export), "-o", str(dedup_out), "--workers", "2", "--progress")
    assert proc.returncode == 0, proc.stderr
    assert "pagewash: dedup buckets: 16 tasks in" in proc.stderr and "2 duplicates of " in proc.stderr
    assert _clusters(dedup_out) == expected
    run_out = tmp_path / "run"
    shutil.copytree(reference, run_out)
    from pipeline.dedup.rebuild import rebuild_dedup

    for out in (run_out, dedup_out):  # in this process: `dedup --rebuild` through the CLI is tested elsewhere
        rebuild_dedup(LocalStore(out), out / STATE_DIR, load_config())
        assert _clusters(out) == expected
    assert lines(run_out) == lines(reference)  # byte for byte
    assert not list((run_out / STATE_DIR / "staged").glob("*.jsonl"))


def test_a_rebuild_killed_after_staging_is_finished_by_the_next(reference: Path, tmp_path: Path, monkeypatch):
    from pipeline.dedup import rebuild as dedup_driver

    out = tmp_path / "out"
    shutil.copytree(reference, out)
    other = dataclasses.replace(load_config(), dedup=dataclasses.replace(load_config().dedup, ngram=3))

    class Killed(BaseException):
        pass

    def die(*args, **kwargs):
        raise Killed

    real_round = dedup_driver.run_round
    monkeypatch.setattr(dedup_driver, "run_round", die)
    with pytest.raises(Killed):
        dedup_driver.rebuild_dedup(LocalStore(out), out / STATE_DIR, other)
    assert not shard_files(out / "documents")  # staged again, not yet decided
    monkeypatch.setattr(dedup_driver, "run_round", real_round)
    dedup_driver.rebuild_dedup(LocalStore(out), out / STATE_DIR, other)
    fresh = tmp_path / "fresh"
    shutil.copytree(reference, fresh)
    dedup_driver.rebuild_dedup(LocalStore(fresh), fresh / STATE_DIR, other)
    assert lines(out) == lines(fresh)
    assert _clusters(out) == _clusters(reference)


def _capture(raw: Path, name: str, seed: str, url: str = "https://example.org/home") -> None:
    text = (SEEDS_RAW / seed).read_text(encoding="utf-8")
    (raw / name).write_text(json.dumps({"url": url, "text": text}) + "\n", encoding="utf-8")


@pytest.mark.parametrize("recapture", ["update", "versions"])
def test_a_later_capture_of_a_url_updates_or_adds_a_version(tmp_path: Path, recapture: str):
    """Issue 16: a 2017 capture of a page was dropped as a copy of the 2014 one (similarity 0.18). Now a later
    capture with other text replaces the earlier record (moved to duplicates, `superseded_by`), or with
    `recapture = "versions"` stands beside it; the same text again is a duplicate; a rebuild agrees."""
    from pipeline.dedup.rebuild import rebuild_dedup
    from pipeline.state import RunState

    raw, out = tmp_path / "raw", tmp_path / "out"
    raw.mkdir()
    config = dataclasses.replace(load_config(), dedup=dataclasses.replace(load_config().dedup, recapture=recapture))

    def run() -> None:  # in this process (workers 0): the CLI's part is tested elsewhere
        assert run_corpus(raw, out, config, workers=0, progress=False).exit_code == 0

    _capture(raw, "crawl-2014.jsonl", "000_d2de09946bceaf6b.txt")
    run()
    _capture(raw, "crawl-2017.jsonl", "001_92dcaf02a642ec9d.txt")
    run()
    docs = [json.loads(line) for line in lines(out)["documents"]]
    dups = [json.loads(line) for line in lines(out)["duplicates"]]
    sources = sorted(Path(d["metadata"]["source_path"]).name for d in docs)
    if recapture == "update":
        assert sources == ["crawl-2017.jsonl:1"]
        [old] = dups
        meta = old["metadata"]
        assert Path(meta["source_path"]).name == "crawl-2014.jsonl:1" and meta["superseded_by"] == "crawl-2017.jsonl"
        assert meta["duplicate_of"] == old["id"] == docs[0]["id"] and meta["similarity"] < 0.5
        report = json.loads((out / "report.json").read_text(encoding="utf-8"))
        assert report["dedup"]["superseded_earlier"] == 1
    else:
        assert sources == ["crawl-2014.jsonl:1", "crawl-2017.jsonl:1"] and not dups
    _capture(raw, "crawl-2018.jsonl", "001_92dcaf02a642ec9d.txt")  # unchanged since 2017: a duplicate
    run()
    again = [json.loads(line) for line in lines(out)["duplicates"]
             if json.loads(line)["metadata"]["source_path"].endswith("crawl-2018.jsonl:1")]
    assert len(again) == 1 and again[0]["metadata"]["similarity"] == 1.0
    assert again[0]["metadata"]["superseded_by"] is None
    state = RunState(out / STATE_DIR, readonly=True)
    totals = state.totals()
    state.close()
    assert (totals["documents"], totals["duplicates"]) == (len(lines(out)["documents"]), len(lines(out)["duplicates"]))
    before = lines(out)
    rebuild_dedup(LocalStore(out), out / STATE_DIR, config)
    assert lines(out) == before


def test_a_page_is_tokenised_once_for_its_content_hash_and_signature(monkeypatch):
    """Issue 17: the content hash (in Finalise) and the dedup signature (in the worker, by hand) each
    tokenised the article; the Fingerprint stage makes both from one tokenisation, and the worker sends
    what it made."""
    from pipeline import dedup
    from pipeline.document import RawPage
    from pipeline.rules import load_rules
    from pipeline.run.worker import Worker

    calls = []
    real = dedup.minhash._words
    monkeypatch.setattr(dedup.minhash, "_words", lambda text: calls.append(1) or real(text))
    config = load_config()
    worker = Worker(config, load_rules(), "stamp")
    data = ("Harbour plan approved\n\n" + "\n\n".join(ARTICLE)).encode()
    [result] = worker([("in", RawPage(source_path="a.txt", rel_path="a.txt", data=data))])
    assert result.rejected is None
    assert len(calls) == 1
    exact, sig, shingles = dedup.fingerprint(result.record["text"], config.dedup)
    assert (result.exact, result.sig, result.shingles) == (exact, sig, shingles)
    assert result.record["metadata"]["content_hash"] == exact
