"""The one dedup engine, driven three ways: a run's dedup phase, `pagewash dedup IN.jsonl…` and `dedup --rebuild`.

All three stage documents the same way (records in `_state/staged/part-N.jsonl`, their signatures in the
state's `pending` table, the shard marked `staged`, in one transaction) and then decide them in one round of
the four shard-parallel steps of pipeline/dedup/steps.py (`run_round`), which commits the index, the shards'
status and the records' streams in one transaction and moves the filtered files into place. A call killed at
any moment leaves staged shards that the next call (of any of the three) finishes first; `sweep` removes the
files the state does not name.

- `run` stages the documents it cleans (pipeline/batch.py), in the state `_state/state.sqlite`.
- `dedup_jsonl` stages the records of JSONL files that already hold `id` and `text`, in `_state/dedup.sqlite`
  (the same schema); an input file already read (same content) is skipped, a half-read one resumed.
- `rebuild_dedup` stages every record of `documents/` and `duplicates/` again, with an empty index.
"""

from __future__ import annotations

import functools
import gzip
import json
import logging
import shutil
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..config import Config, ConfigError, DedupConfig
from ..executor import LocalPoolExecutor, SerialExecutor, no_worker
from ..io.store import LocalStore, Store, bind
from ..io.writer import ShardSet, shard_name, shard_seq, write_atomic
from ..records import from_input
from ..state import DEDUP_DB, LOCK_FILE, STATE_DB, STATE_DIR, STREAMS, RunState, content_sha1, sql_key
from .decisions import stage_as_kept
from .index import DedupIndex
from .minhash import fingerprint
from .steps import (
    ROUNDS,
    STAGED,
    DedupJob,
    buckets,
    components,
    duplicates_of,
    filter_shard,
    install_rounds,
    kept_rows,
    replaced_docs,
    round_dir,
    signatures,
    superseded_docs,
    versions,
)

log = logging.getLogger("pagewash")

REBUILD_KEY = "dedup_rebuild"  # in the state's settings from a rebuild's staging to the next round's commit
HEARTBEAT_S = 30.0  # seconds between two progress lines of a dedup step


def tell(message: str) -> None:
    """A progress line on stderr (`--progress`)."""
    print(f"pagewash: {message}", file=sys.stderr, flush=True)


def every_stream(store: Store, staged: LocalStore) -> list[tuple[Store, str]]:
    """(store, stream) of every shard stream: the records' in the output's store, STAGED in the state's."""
    return [(store, stream) for stream in STREAMS] + [(staged, STAGED)]


def sweep(store: Store, staged: LocalStore, state: RunState) -> int:
    """Remove what a killed run left: temp files, and shard files the state does not name (or names as
    not yet deduplicated, for documents/duplicates; or as done, for staged files). Returns files removed."""
    status = state.shard_status()
    removed = 0
    for where, stream in every_stream(store, staged):
        for name in where.names(stream):
            seq = shard_seq(Path(name))
            if name.endswith(".tmp"):
                stale = True
            elif seq is None:
                continue
            elif seq not in status:
                stale = True
            elif stream in ("documents", "duplicates"):
                stale = status[seq] == "staged"
            elif stream == STAGED:
                stale = status[seq] == "final"
            else:
                stale = False
            if stale:
                where.remove(stream, name)
                removed += 1
    if store.remote:  # the local halves of uploads a kill interrupted
        for path in sorted(store.scratch.rglob(".*.tmp")):
            path.unlink()
    return removed


# --- the round ---------------------------------------------------------------------------------------------

@dataclass
class Round:
    """What one round decided: duplicates per staged shard, and the report's figures."""

    duplicates: dict[int, int]  # shard -> records it sent to `duplicates`
    report: dict


def steps_executor(workers: int, state_dir: Path):
    """An executor for the steps alone (`dedup`, `--rebuild`): a fresh local pool, or this process (0)."""
    if workers <= 0:
        return SerialExecutor(no_worker)
    return LocalPoolExecutor(workers, no_worker, _no_crash, private_files=[state_dir / LOCK_FILE])


def _no_crash(item: object) -> object:  # the steps run through `Executor.run`, which raises on a dead worker
    raise RuntimeError("the dedup steps' executor takes tasks, not pages")


def run_round(state: RunState, state_dir: Path, store: Store, cfg: DedupConfig, executor,
              stopped: Callable[[], bool] = lambda: False,
              progress: Callable[[str], None] | None = None) -> Round | None:
    """Decide every staged shard of `state` in one round of the four steps on `executor`, commit and move
    the files into place. None when `stopped()` turned true between two steps (finished tasks keep their
    markers: the next round resumes from them); a Round with no shards when nothing was staged. Each step's
    end, and every `HEARTBEAT_S` within one, is told to `progress` (default: the log at INFO). The driver
    holds task results, never signatures."""
    say = progress or log.info
    started = time.perf_counter()
    staged = sorted(seq for seq, status in state.shard_status().items() if status == "staged")
    if not staged:
        return Round({}, {})
    index = DedupIndex(state.db, cfg)
    folder = round_dir(state_dir, state.db, cfg)
    for other in sorted((state_dir / ROUNDS).glob("round-*")):
        if other != folder:  # a round of another pending set, never committed: its results are stale
            shutil.rmtree(other)
    write_atomic(folder / "job.json", json.dumps({"seqs": staged}))
    job = DedupJob(str(state_dir), str(folder), cfg, tuple(staged), state.name)
    tasks, seconds = Counter(), {}

    def step(name: str, fn, args: list[tuple]) -> list[dict] | None:
        if stopped():
            return None
        begun = last = time.perf_counter()
        results = []
        for result in executor.run(fn, args):
            results.append(result)
            now = time.perf_counter()
            if now - last >= HEARTBEAT_S:
                last = now
                say(f"dedup {name}: {len(results)} of {len(args)} tasks, {now - begun:.0f}s")
        seconds[name] = round(time.perf_counter() - begun, 3)
        tasks.update("resumed" if r["resumed"] else "run" for r in results)
        say(f"dedup {name}: {len(results)} tasks in {seconds[name]:.1f}s")
        return results

    found = {"duplicates": 0, "clusters_with_duplicates": 0}
    links: Counter = Counter()
    if cfg.enabled:
        pending = state.db.execute("SELECT COUNT(*) FROM pending").fetchone()[0]
        say(f"dedup: {pending} documents in {len(staged)} staged shards, {cfg.partitions} partitions")
        for result in step("signatures", signatures, [(job, seq) for seq in staged]) or ():
            links.update(result.get("links", {}))
        step("versions", versions, [(job,)])
        for result in step("buckets", buckets, [(job, p) for p in range(cfg.partitions)]) or ():
            links.update(result.get("links", {}))
        found = (step("components", components, [(job,)]) or [found])[0]
    filtered = step("filter", filter_shard, [(job, seq, str(state_dir / STAGED / shard_name(seq))) for seq in staged])
    if filtered is None:
        return None
    per_shard = {}
    superseded = 0
    with state.transaction() as db:
        replaced: set[str] = set()  # ids whose indexed document a newer capture replaces when kept
        if cfg.enabled:
            superseded = _supersede(state, db, index, job, staged)
            if cfg.recapture == "versions":
                replaced = {row[1] for row in index._docs_where("doc", replaced_docs(job), fields="doc, id")}
        run = index.begin_run() if cfg.enabled else None  # one band run for the round's kept documents
        for seq, result in zip(staged, filtered, strict=True):
            per_shard[seq] = 0
            if cfg.enabled:
                rows = kept_rows(job, seq)
                index.forget([doc_id for doc_id in rows.ids if doc_id in replaced])
                run.add(*index.stage_rows(rows))
                del rows
                dups = duplicates_of(job, seq)
                # one row each: the same URL twice in one input has two rows, the later is the duplicate
                db.executemany("UPDATE outputs SET stream = 'duplicates' WHERE rowid = (SELECT rowid FROM outputs "
                               "WHERE doc_id = ? AND input = ? AND shard = ? AND stream = 'documents' "
                               "ORDER BY rowid DESC LIMIT 1)", [(d, sql_key(key), seq) for d, key in dups])
                per_shard[seq] = len(dups)
            state.change_counts(db, seq, functools.partial(_filtered_counts, result["counts"]), status="final")
        if run is not None:
            run.finish()
        resolved = db.execute("SELECT COUNT(*) FROM pending").fetchone()[0]
        db.execute("DELETE FROM pending")
        db.execute("INSERT OR REPLACE INTO dedup_rounds (name) VALUES (?)", (folder.name,))
        db.execute("DELETE FROM settings WHERE key = ?", (REBUILD_KEY,))  # a rebuild's shards are decided too
    install_rounds(store, state_dir, state.db)
    if cfg.enabled:
        say(f"dedup: {sum(per_shard.values())} duplicates of {resolved} documents in "
            f"{found['clusters_with_duplicates']} clusters ({time.perf_counter() - started:.1f}s)")
    report = {"resolved": resolved, "duplicates": sum(per_shard.values()), "superseded_earlier": superseded,
              "clusters_with_duplicates": found["clusters_with_duplicates"],
              "cluster_sizes": found.get("cluster_sizes", {}), "links": {k: n for k, n in sorted(links.items()) if n},
              "index_size": index.count(), "partitions": cfg.partitions,
              "tasks": {"run": tasks["run"], "resumed": tasks["resumed"]}, "steps": seconds,
              "seconds": round(time.perf_counter() - started, 3)}
    return Round(per_shard, report)


def _filtered_counts(filtered: dict, counts: dict) -> None:
    """A shard's counts once its staged records are filtered into documents and duplicates."""
    for stale in (STAGED, "_state/staged", "documents", "duplicates"):  # _state/staged: states before 0.2
        counts.pop(stale, None)
    counts.update(filtered)


def _moved_to_duplicates(counts: dict) -> None:
    counts["documents"] = max(0, counts.get("documents", 0) - 1)
    counts["duplicates"] = counts.get("duplicates", 0) + 1


def _supersede(state: RunState, db: sqlite3.Connection, index: DedupIndex, job: DedupJob, staged: list[int]) -> int:
    """Inside the round's commit: the kept documents a newer capture superseded leave the index, their
    records move to `duplicates` in the state (stream, shard counts) and in `moves`, which `apply_moves`
    carries out on the files after the commit. Returns how many."""
    found = superseded_docs(job)
    if not found:
        return 0
    ids = dict(index._docs_where("doc", sorted(doc for doc, _sim, _by in found), fields="doc, id"))
    index.forget(ids.values())
    round_shards = set(staged)
    for doc, similarity, by in found:
        doc_id = ids[doc]
        for rowid, seq in db.execute("SELECT rowid, shard FROM outputs WHERE doc_id = ? AND stream = 'documents'",
                                     (doc_id,)).fetchall():
            if seq in round_shards:
                continue
            db.execute("UPDATE outputs SET stream = 'duplicates' WHERE rowid = ?", (rowid,))
            state.change_counts(db, seq, _moved_to_duplicates)
            db.execute("INSERT INTO moves (doc_id, shard, similarity, superseded_by) VALUES (?, ?, ?, ?)",
                       (doc_id, seq, similarity, by))
    return len(found)


# --- `pagewash dedup IN.jsonl…` ----------------------------------------------------------------------------

_JSONL_STATE = """
CREATE TABLE IF NOT EXISTS dedup_inputs (  -- how far each input file (by content) is in committed shards
    sha1 TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    lines INTEGER NOT NULL,
    complete INTEGER NOT NULL
);
"""


@dataclass
class _Batch:
    lines: list[tuple[str, int, str]]  # (source path, line number, line)
    progress: dict[str, tuple[str, int, bool]]  # sha1 -> (path, lines consumed, complete)


def _open_lines(path: Path):
    with open(path, "rb") as handle:
        gzipped = handle.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def _read_batches(inputs: list[Path], db: sqlite3.Connection, batch_size: int, counts: Counter) -> Iterator[_Batch]:
    """Lines of the inputs in batches, skipping what committed batches already hold."""
    batch = _Batch([], {})
    seen: set[str] = set()
    for path in inputs:
        sha1 = content_sha1(path)
        row = db.execute("SELECT lines, complete FROM dedup_inputs WHERE sha1 = ?", (sha1,)).fetchone()
        if sha1 in seen or (row and row[1]):
            counts["inputs_skipped"] += 1
            continue
        seen.add(sha1)
        skip = row[0] if row else 0
        lineno = 0
        with _open_lines(path) as handle:
            for lineno, raw in enumerate(handle, 1):
                if lineno <= skip or not raw.strip():
                    continue
                batch.lines.append((str(path), lineno, raw.decode("utf-8", errors="replace")))
                batch.progress[sha1] = (str(path), lineno, False)
                if len(batch.lines) >= batch_size:
                    yield batch
                    batch = _Batch([], {})
        batch.progress[sha1] = (str(path), max(lineno, skip), True)
    if batch.lines or batch.progress:
        yield batch


def _parse(source: str, lineno: int, line: str) -> tuple[dict, bool]:
    """The record and whether it can be deduplicated; a bad line becomes a reject that keeps it whole and
    says why (`bad_record`, or `empty` for a blank `text`)."""
    try:
        record = json.loads(line)
    except ValueError as exc:
        record, why = None, f"not JSON: {exc}"
    else:
        why = "not a JSON object"
    if not isinstance(record, dict):
        return {"id": None, "text": None, "raw": line.rstrip("\r\n"),
                "metadata": {"filter_reason": "bad_record", "filter_detail": f"{source}:{lineno}: {why}",
                             "source_path": source, "line": lineno}}, False
    reason, why = "bad_record", None
    if not isinstance(record.get("id"), str):
        why = "needs a string `id`"
    elif not isinstance(record.get("text"), str):
        why = "needs a string `text`"
    elif not record["text"].strip():
        reason, why = "empty", "`text` is blank"
    meta = record.get("metadata")
    if meta is None or isinstance(meta, dict):
        record["metadata"] = dict(meta or {})
    else:  # a metadata value that cannot take our fields
        record["metadata"] = {"original_metadata": meta}
        why = why or "`metadata` is not an object"
    if why is not None:
        record["metadata"].update(filter_reason=reason, filter_detail=f"{source}:{lineno}: {why}",
                                  source_path=source, line=lineno)
    return record, why is None


def pending_row(record: dict, key: str, seq: int, pos: int, cfg: DedupConfig) -> tuple:
    """The `pending` row of a record with `id` and `text` (a string `metadata.date` breaks ties); sets the
    record's `content_hash`."""
    exact, sig, shingles = fingerprint(record["text"], cfg)
    meta = record.setdefault("metadata", {})
    meta["content_hash"] = exact
    date = meta.get("date")
    return (record["id"], key, seq, pos, len(record["text"]), date if isinstance(date, str) else None, exact, sig,
            shingles)


def _migrate_jsonl_state(state: RunState, out: Path) -> None:
    """A `dedup` state from before it ran the steps named its shards in `dedup_shards`: they become the state's
    final shards (a shard published but never committed is removed, as it was then)."""
    db = state.db
    if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'dedup_shards'").fetchone():
        return
    with state.transaction():
        for seq, status in db.execute("SELECT seq, status FROM dedup_shards ORDER BY seq").fetchall():
            if status != "done":
                for stream in STREAMS:
                    (out / stream / shard_name(seq)).unlink(missing_ok=True)
                continue
            counts = {}
            for stream in STREAMS:
                path = out / stream / shard_name(seq)
                if path.exists():
                    with open(path, "rb") as handle:
                        counts[stream] = sum(1 for _ in handle)
            db.execute("INSERT OR IGNORE INTO shards (seq, run_id, status, counts) VALUES (?, 0, 'final', ?)",
                       (seq, json.dumps(counts)))
        db.execute("DROP TABLE dedup_shards")


def _open_state(state_dir: Path, name: str, store: Store) -> RunState:
    state = RunState(state_dir, name=name)
    if name == DEDUP_DB:
        state.db.executescript(_JSONL_STATE)
        _migrate_jsonl_state(state, Path(str(store)))
    return state


def dedup_jsonl(inputs: list[Path], out: Path, cfg: DedupConfig, workers: int = 0, batch_size: int = 10_000,
                progress: Callable[[str], None] | None = None) -> dict:
    """Deduplicate JSONL files (plain or gzip) of records with `id` and `text` into OUT/{documents,duplicates,rejects}.

    The state and the index live in OUT/_state/dedup.sqlite, so a later call dedups its inputs against
    everything kept before; input files already done (same content) are skipped. Each batch of `batch_size`
    records is staged (a shard: files published, then committed with the inputs' progress), then all staged
    shards are decided in one round of the dedup steps (on `workers` processes; 0: this one). A call killed
    at any moment is simply made again: leftovers are swept, staged shards finished, half-read inputs resumed.
    A record whose id is already kept goes to duplicates with `duplicate_of` its own id.
    """
    started = time.perf_counter()
    counts: Counter = Counter()
    state_dir = out / STATE_DIR
    store, staged = LocalStore(out), LocalStore(state_dir)
    state = _open_state(state_dir, DEDUP_DB, store)
    executor = None
    try:
        DedupIndex(state.db, cfg)  # refuses an index built with other parameters before any work
        run_id = state.begin_run(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        install_rounds(store, state_dir, state.db)
        sweep(store, staged, state)
        seq = first_seq = state.next_seq()
        for batch in _read_batches(inputs, state.db, batch_size, counts):
            _stage_batch(state, store, staged, seq, batch, cfg, run_id, counts)
            seq += 1
            if progress is not None:
                progress(f"dedup: {counts['records']} records read and signed")
        executor = steps_executor(workers, state_dir)
        done = run_round(state, state_dir, store, cfg, executor, progress=progress)
        state.end_run(run_id, "done", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), done.report)
    finally:
        if executor is not None:
            executor.close()
        state.close()
    # this call's records (a killed call's staged shards, finished here too, are not counted)
    duplicates = sum(n for seq, n in done.duplicates.items() if seq >= first_seq)
    return {"records": counts["records"], "kept": counts["records"] - counts["rejects"] - duplicates,
            "duplicates": duplicates, "rejects": counts["rejects"], "inputs_skipped": counts["inputs_skipped"],
            "seconds": round(time.perf_counter() - started, 3)}


def _stage_batch(state: RunState, store: Store, staged: LocalStore, seq: int, batch: _Batch, cfg: DedupConfig,
                 run_id: int, counts: Counter) -> None:
    """One batch as shard `seq`: rejects to `rejects/`, the rest staged with their signatures, committed
    together with the inputs' progress."""
    files = ShardSet(store, seq, {STAGED: staged})
    outputs, pending = [], []
    try:
        for source, lineno, line in batch.lines:
            record, ok = _parse(source, lineno, line)
            counts["records"] += 1
            if not ok:
                counts["rejects"] += 1
                files.write("rejects", record)
                if isinstance(record.get("id"), str):
                    outputs.append((record["id"], source, "rejects"))
                continue
            pending.append(pending_row(record, source, seq, len(pending), cfg))
            files.write(STAGED, stage_as_kept(record) if cfg.enabled else record)
            outputs.append((record["id"], source, "documents"))
        files.publish()
    except BaseException:
        files.abort()
        raise

    def progress(db: sqlite3.Connection) -> None:
        db.executemany("INSERT OR REPLACE INTO dedup_inputs (sha1, path, lines, complete) VALUES (?, ?, ?, ?)",
                       [(sha1, path, lines, int(done)) for sha1, (path, lines, done) in batch.progress.items()])

    if files.counts:
        state.commit_shard(seq, run_id, "staged" if pending else "final", files.counts, [], outputs, pending,
                           also=progress)
    else:
        with state.transaction() as db:
            progress(db)


# --- `pagewash dedup --rebuild` ------------------------------------------------------------------------------

def rebuild_dedup(store: Store, state_dir: Path, config: Config, workers: int = 0,
                  progress: Callable[[str], None] | None = None) -> dict:
    """Recompute every cluster from the records on disk (`documents/` and `duplicates/`) with the current
    `[dedup]` parameters: every such shard is staged again (its records, their signatures recomputed) and
    the index emptied, in one transaction; then one round of the dedup steps decides them all. Killed half
    way, it is simply run again (a staged round is finished, not restarted). Works on the output of `run`
    and of `pagewash dedup` alike. The caller holds the lock."""
    started = time.perf_counter()
    run_output = (state_dir / STATE_DB).exists()
    name = STATE_DB if run_output else DEDUP_DB
    if not (state_dir / name).exists():
        raise ConfigError(f"{store}: no pagewash state in {state_dir}")
    cfg = config.dedup
    staged = LocalStore(state_dir)
    state = _open_state(state_dir, name, store)
    executor = None
    try:
        if run_output:
            bind(store, state_dir, state, full=False)
        install_rounds(store, state_dir, state.db)  # a call killed between its commit and moving the files
        sweep(store, staged, state)
        if state.db.execute("SELECT 1 FROM inputs WHERE status = 'retracting' LIMIT 1").fetchone():
            raise ConfigError(f"{store}: an interrupted run was removing a changed input's records; run it again first")
        executor = steps_executor(workers, state_dir)
        try:
            DedupIndex(state.db, cfg)
            same_params = True
        except ValueError:
            same_params = False
        if not (state.setting(REBUILD_KEY) is not None and same_params):
            _restage(state, store, staged, cfg)
            sweep(store, staged, state)  # the restaged shards' old documents/duplicates files
        # else a rebuild with these parameters was killed after staging: its round is finished here
        run_round(state, state_dir, store, cfg, executor, progress=progress)
        records, duplicates = _stream_totals(state)
        report = {"records": records, "kept": records - duplicates, "duplicates": duplicates,
                  "seconds": round(time.perf_counter() - started, 3)}
    finally:
        if executor is not None:
            executor.close()
        state.close()
    return report


def _stream_totals(state: RunState) -> tuple[int, int]:
    """Records in documents and duplicates over every final shard, and duplicates alone."""
    records = duplicates = 0
    for (counts,) in state.db.execute("SELECT counts FROM shards WHERE status = 'final'"):
        counts = json.loads(counts)
        records += counts.get("documents", 0) + counts.get("duplicates", 0)
        duplicates += counts.get("duplicates", 0)
    return records, duplicates


def _restage(state: RunState, store: Store, staged: LocalStore, cfg: DedupConfig) -> None:
    """Every shard with documents or duplicates staged again: its records (those of `documents/` and
    `duplicates/`, or of its staged file for a shard an interrupted run left staged) in a staged file and
    their signatures, made with `cfg`, in `pending` (shard by shard, memory bounded by one shard); then, in
    one transaction, the shards marked staged, their records' streams reset to `documents`, the index
    emptied and the rebuild noted (`REBUILD_KEY`). Killed before that transaction, nothing has changed but
    leftovers (the staged files of final shards are swept; `pending` is rewritten here)."""
    db = state.db
    status = state.shard_status()
    seqs = sorted({seq for stream in ("documents", "duplicates") for name in store.names(stream)
                   if (seq := shard_seq(Path(name))) is not None and status.get(seq) == "final"}
                  | {seq for seq, st in status.items() if st == "staged"})
    with state.transaction():
        db.execute("DELETE FROM pending")
    for seq in seqs:
        inputs: dict[str, list[str]] = {}
        for doc_id, key in db.execute("SELECT doc_id, input FROM outputs WHERE shard = ? AND stream != 'rejects' "
                                      "ORDER BY rowid", (seq,)):
            inputs.setdefault(doc_id, []).append(key)
        files = ShardSet(store, seq, {STAGED: staged})
        pending = []
        try:
            records = (_staged_records(staged, seq) if status[seq] == "staged" else _kept_and_duplicates(store, seq))
            for record in records:  # staged as kept (its old decision gone): the filter step writes the new one
                pending.append(pending_row(record, _input_of(record, inputs.get(record["id"], [])), seq,
                                           len(pending), cfg))
                files.write(STAGED, stage_as_kept(record) if cfg.enabled else record)
            files.publish()
        except BaseException:
            files.abort()
            raise
        with state.transaction() as tx:
            tx.executemany("INSERT INTO pending VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           ((row[0], sql_key(row[1]), *row[2:]) for row in pending))
    index = DedupIndex(db, cfg, rebuild=True)  # its schema first: executescript commits
    with state.transaction() as tx:
        index.reset()
        for seq in seqs:
            tx.execute("UPDATE shards SET status = 'staged' WHERE seq = ?", (seq,))
            tx.execute("UPDATE outputs SET stream = 'documents' WHERE shard = ? AND stream = 'duplicates'", (seq,))
        tx.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, '1')", (REBUILD_KEY,))


def _input_of(record: dict, keys: list[str]) -> str:
    """The input (a key of the state's `outputs`) a record came from: the only one with its id in its shard,
    or the one its `source_path` names; "" when the state does not know it (an output of an old `dedup`)."""
    if len(keys) <= 1:
        return keys[0] if keys else ""
    source = (record.get("metadata") or {}).get("source_path") or ""
    for key in keys:
        if from_input(source, key, [k for k in keys if k != key]):
            return key
    return keys[0]


def _staged_records(staged: LocalStore, seq: int) -> list[dict]:
    """The records of staged shard `seq` (read whole: the staged file is rewritten in its place)."""
    records = [json.loads(line) for line in staged.lines(STAGED, shard_name(seq))]
    for record in records:
        if not isinstance(record.get("metadata"), dict):
            record["metadata"] = {}
    return records


def _kept_and_duplicates(store: Store, seq: int) -> Iterator[dict]:
    """The records of shard `seq`'s documents and duplicates. A record met twice (a rebuild of an older
    version killed between moving it from one stream's file to the other's) is yielded once."""
    seen: set[tuple[str, str]] = set()
    for stream in ("documents", "duplicates"):
        for line in store.lines(stream, shard_name(seq)):
            record = json.loads(line)
            if not isinstance(record.get("metadata"), dict):
                record["metadata"] = {}
            mark = (record["id"], record["metadata"].get("source_path") or "")
            if mark not in seen:
                seen.add(mark)
                yield record


__all__ = ["Round", "dedup_jsonl", "rebuild_dedup", "run_round", "steps_executor", "sweep"]
