"""`pagewash dedup IN.jsonl…`: records of JSONL files (plain or gzip) that already hold `id` and `text`, staged
batch by batch in `_state/dedup.sqlite` and decided in one round (`driver.run_round`)."""

from __future__ import annotations

import gzip
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..config import ConfigError, DedupConfig
from ..io.store import LocalStore, Store
from ..io.writer import ShardSet, shard_name
from ..state import (
    DEDUP_DB,
    STATE_DIR,
    STREAMS,
    Connection,
    DedupTables,
    RunState,
    content_sha1,
)
from .decisions import stage_as_kept
from .driver import run_round, steps_executor, sweep
from .index import DedupIndex
from .minhash import fingerprint
from .rounds import install_rounds
from .tasks import STAGED


@dataclass
class _Batch:
    lines: list[tuple[str, int, str]]  # (source path, line number, line)
    progress: dict[str, tuple[str, int, bool]]  # sha1 -> (path, lines consumed, complete)


def _open_lines(path: Path):
    with open(path, "rb") as handle:
        gzipped = handle.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def _read_batches(inputs: list[Path], tables: DedupTables, batch_size: int, counts: Counter) -> Iterator[_Batch]:
    """Lines of the inputs in batches, skipping what committed batches already hold."""
    batch = _Batch([], {})
    seen: set[str] = set()
    for path in inputs:
        sha1 = content_sha1(path)
        row = tables.input_progress(sha1)
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


def _parse(source: str, lineno: int, line: str, keys: tuple[str, str] = ("id", "text")) -> tuple[dict, bool]:
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
    for envelope, name in zip(("id", "text"), keys, strict=True):  # --id-key, --text-key: into the envelope
        if name != envelope and name in record:
            record[envelope] = record.pop(name)
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
    tables = state.dedup
    legacy = tables.legacy_shards()
    if legacy is None:
        return
    with state.transaction():
        for seq, status in legacy:
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
            tables.adopt_legacy_shard(seq, counts)
        tables.drop_legacy_shards()


def open_state(state_dir: Path, name: str, store: Store) -> RunState:
    state = RunState(state_dir, name=name)
    if name == DEDUP_DB:
        state.dedup.create_jsonl_schema()
        _migrate_jsonl_state(state, Path(str(store)))
    return state


def dedup_jsonl(inputs: list[Path], out: Path, cfg: DedupConfig, workers: int = 0, batch_size: int = 10_000,
                fmt: str = "jsonl.gz", keys: tuple[str, str] = ("id", "text"),
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
    if fmt == "parquet":  # the records are the inputs' own: no one schema to write them with
        raise ConfigError("pagewash dedup writes JSON lines (--format jsonl, jsonl.gz or jsonl.zst): its records "
                          "keep whatever fields their inputs have, which Parquet's one schema cannot hold")
    store, staged = LocalStore(out, fmt), LocalStore(state_dir)
    for stream in STREAMS:  # every stream a folder, empty or not
        (out / stream).mkdir(parents=True, exist_ok=True)
    state = open_state(state_dir, DEDUP_DB, store)
    executor = None
    try:
        DedupIndex(state.db, cfg)  # refuses an index built with other parameters before any work
        state.adopt_format(fmt, False, str(out))
        run_id = state.begin_run(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        install_rounds(store, state_dir, state.dedup)
        sweep(store, staged, state)
        seq = first_seq = state.next_seq()
        for batch in _read_batches(inputs, state.dedup, batch_size, counts):
            _stage_batch(state, store, staged, seq, batch, cfg, run_id, counts, keys)
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
                 run_id: int, counts: Counter, keys: tuple[str, str] = ("id", "text")) -> None:
    """One batch as shard `seq`: rejects to `rejects/`, the rest staged with their signatures, committed
    together with the inputs' progress."""
    files = ShardSet(store, seq, {STAGED: staged})
    outputs, pending = [], []
    try:
        for source, lineno, line in batch.lines:
            record, ok = _parse(source, lineno, line, keys)
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

    def progress(db: Connection) -> None:
        DedupTables(db).set_input_progress(batch.progress)

    if files.counts:
        state.commit_shard(seq, run_id, "staged" if pending else "final", files.counts, [], outputs, pending,
                           also=progress)
    else:
        with state.transaction() as db:
            progress(db)
