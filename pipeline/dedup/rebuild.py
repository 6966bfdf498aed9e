"""`pagewash dedup --rebuild`: every record of `documents/` and `duplicates/` staged again with the current
`[dedup]` parameters and an empty index, then decided in one round (`driver.run_round`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ..config import Config, ConfigError, DedupConfig
from ..io.store import LocalStore, Store, bind
from ..io.writer import ShardSet, shard_name, shard_seq
from ..records import from_input
from ..state import (
    DEDUP_DB,
    STATE_DB,
    RunState,
)
from .decisions import stage_as_kept
from .driver import REBUILD_KEY, run_round, steps_executor, sweep
from .index import DedupIndex
from .jsonl import open_state, pending_row
from .rounds import install_rounds
from .tasks import STAGED


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
    state = open_state(state_dir, name, store)
    store.fmt = state.output_format()  # the shards it rewrites keep the output's format
    executor = None
    try:
        if run_output:
            bind(store, state_dir, state.state_id(), bool(state.shard_status()), full=False)
        install_rounds(store, state_dir, state.dedup)  # a call killed between its commit and moving the files
        sweep(store, staged, state)
        if state.any_retracting():
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
    for counts in state.final_counts():
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
    tables = state.dedup
    status = state.shard_status()
    seqs = sorted({seq for stream in ("documents", "duplicates") for name in store.names(stream)
                   if (seq := shard_seq(Path(name))) is not None and status.get(seq) == "final"}
                  | {seq for seq, st in status.items() if st == "staged"})
    with state.transaction():
        tables.clear_pending()
    for seq in seqs:
        inputs: dict[str, list[str]] = {}
        for doc_id, key in tables.shard_outputs(seq):
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
        with state.transaction():
            tables.add_pending(pending)
    index = DedupIndex(state.db, cfg, rebuild=True)  # its schema first: executescript commits
    with state.transaction() as tx:
        index.reset()
        tables.restage(seqs)
        state.set_setting(REBUILD_KEY, "1", tx)


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


