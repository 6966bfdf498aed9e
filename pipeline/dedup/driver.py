"""The one dedup engine, driven three ways: a run's dedup phase, `pagewash dedup IN.jsonl…` and `dedup --rebuild`.

All three stage documents the same way (records in `_state/staged/part-N.jsonl`, their signatures in the
state's `pending` table, the shard marked `staged`, in one transaction) and then decide them in one round of
the four shard-parallel steps of pipeline/dedup/steps.py (`run_round`), which commits the index, the shards'
status and the records' streams in one transaction and moves the filtered files into place. A call killed at
any moment leaves staged shards that the next call (of any of the three) finishes first; `sweep` removes the
files the state does not name.

- `run` stages the documents it cleans (pipeline/run/batch.py), in the state `_state/state.sqlite`.
- `dedup_jsonl` (pipeline/dedup/jsonl.py) stages the records of JSONL files that already hold `id` and `text`,
  in `_state/dedup.sqlite` (the same schema); an input file already read (same content) is skipped, a half-read
  one resumed.
- `rebuild_dedup` (pipeline/dedup/rebuild.py) stages every record of `documents/` and `duplicates/` again, with
  an empty index.
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..config import DedupConfig
from ..executor import LocalPoolExecutor, SerialExecutor, no_worker
from ..io.store import LocalStore, Store
from ..io.writer import shard_name, shard_seq, write_atomic
from ..state import (
    LOCK_FILE,
    STREAMS,
    Connection,
    RunState,
)
from .clusters import components, filter_shard
from .index import DedupIndex
from .rounds import duplicates_of, install_rounds, kept_rows, replaced_docs, round_dir, superseded_docs
from .steps import buckets, signatures, versions
from .tasks import ROUNDS, STAGED, DedupJob

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
    folder = round_dir(state_dir, state.dedup, cfg)
    for other in sorted((state_dir / ROUNDS).glob("round-*")):
        if other != folder:  # a round of another pending set, never committed: its results are stale
            shutil.rmtree(other)
    write_atomic(folder / "job.json", json.dumps({"seqs": staged}))
    job = DedupJob(str(state_dir), str(folder), cfg, tuple(staged), state.name, store.fmt)
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
        pending = state.dedup.pending_count()
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
    tables = state.dedup
    with state.transaction() as db:
        replaced: set[str] = set()  # ids whose indexed document a newer capture replaces when kept
        if cfg.enabled:
            superseded = _supersede(state, db, index, job, staged)
            if cfg.recapture == "versions":
                replaced = {row[1] for row in index.docs_where("doc", replaced_docs(job), fields=("doc", "id"))}
        run = index.begin_run() if cfg.enabled else None  # one band run for the round's kept documents
        for seq, result in zip(staged, filtered, strict=True):
            per_shard[seq] = 0
            if cfg.enabled:
                rows = kept_rows(job, seq)
                index.forget([doc_id for doc_id in rows.ids if doc_id in replaced])
                run.add(*index.stage_rows(rows))
                del rows
                dups = duplicates_of(job, seq)
                tables.mark_duplicates(seq, dups)
                per_shard[seq] = len(dups)
            state.change_counts(db, seq, functools.partial(_filtered_counts, result["counts"]), status="final")
        if run is not None:
            run.finish()
        resolved = tables.pending_count()
        tables.clear_pending()
        tables.add_round(folder.name)
        state.drop_setting(REBUILD_KEY, db)  # a rebuild's shards are decided too
    install_rounds(store, state_dir, tables)
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


def _supersede(state: RunState, db: Connection, index: DedupIndex, job: DedupJob, staged: list[int]) -> int:
    """Inside the round's commit: the kept documents a newer capture superseded leave the index, their
    records move to `duplicates` in the state (stream, shard counts) and in `moves`, which `apply_moves`
    carries out on the files after the commit. Returns how many."""
    found = superseded_docs(job)
    if not found:
        return 0
    ids = dict(index.docs_where("doc", sorted(doc for doc, _sim, _by in found), fields=("doc", "id")))
    index.forget(ids.values())
    round_shards = set(staged)
    for doc, similarity, by in found:
        doc_id = ids[doc]
        for row, seq in index.tables.kept_outputs(doc_id):
            if seq in round_shards:
                continue
            index.tables.move_output(row)
            state.change_counts(db, seq, _moved_to_duplicates)
            index.tables.add_move(doc_id, seq, similarity, by)
    return len(found)
