"""Whole runs: parallel, streaming, incremental, crash-safe, one at a time per output folder.

A run has two phases.

1. Clean (parallel). Inputs are found and triaged against the state (new, changed, half done by a killed
   run, or done and skipped), read lazily and sent in small chunks to the executor, whose results come
   back in input order. Every `shard_pages` pages make a shard: its rejects go straight to
   `rejects/part-N.jsonl`, its documents to `_state/staged/part-N.jsonl`, their MinHash signatures to the
   state's `pending` table, all published (temp file, fsync, rename) and then recorded in one SQLite
   transaction together with how far each input got. A kill at any moment loses at most the shard in hand,
   which the next run redoes; files the state does not name are leftovers and are removed first.
2. Dedup (the executor's workers; see pipeline/dedup/steps.py). The staged shards go through four steps,
   signatures → buckets (a file-based band shuffle) → components → filter, each task leaving a completion
   marker, so a killed run resumes at the step it reached. Every pending document is decided together
   against the persistent index, so the outcome does not depend on shard boundaries, worker counts or
   where an earlier run was killed. The driver then commits the index, the shards' status and the records'
   streams in one transaction and moves the filtered files into `documents/` and `duplicates/`; a kill
   before that commit leaves the round to be resumed, a kill after it leaves the move to the next run.

Shard boundaries depend only on the order of the inputs, never on the number of workers, so the output is
byte-identical for any `--workers` (with SOURCE_DATE_EPOCH pinning `processed_at`).
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import resource
import shutil
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..config import Config, ConfigError
from ..dedup import DedupIndex, stage_as_kept
from ..dedup.driver import every_stream, no_init, run_round, sweep, tell
from ..dedup.steps import ROUNDS, STAGED, install_rounds
from ..document import Document, RawPage, Rejected
from ..executor import LocalPoolExecutor, RayExecutor, SerialExecutor, default_workers
from ..io.sources import discover, read_inputs, walk_inputs
from ..io.store import LocalStore, Store, StoreError, bind, open_output, replace_lines
from ..io.writer import ShardSet, shard_name, to_json
from ..records import FAILURE_REASONS, Counters, document_id, from_input, processed_at, record_of
from ..rules import RuleSet, load_rules
from ..state import LOCK_FILE, STREAMS, InputFile, RunState, root_id, run_lock

log = logging.getLogger("pagewash")

CHUNK_PAGES = 16
SETTINGS_KEY = "settings_fingerprint"  # in the state's settings: what made the output's records
SEEN_BATCH = 1000  # input keys noted in the state at a time during the walk
EXIT_OK, EXIT_FAILURES, EXIT_BUSY = 0, 1, 75


# --- the work one worker does --------------------------------------------------------------------------

@dataclass(slots=True)
class PageResult:
    key: str  # the input file it came from
    record: dict
    reason: str | None  # None: a kept document
    counters: Counters  # of this page alone
    exact: str | None = None
    sig: bytes | None = None
    shingles: int = 0


@dataclass(slots=True)
class EndOfInput:
    key: str
    failed: bool = False  # could not be read: not done, tried again next run


_WORKER: dict = {}  # per worker process: the pipeline built once by `init_worker` (never shared)


def init_worker(config: Config, rules: RuleSet, stamp: str) -> None:
    from ..stages.runner import Pipeline  # imported by the driver only once there is work (see BatchRun.executor)

    _WORKER["pipeline"] = Pipeline(config, rules)
    _WORKER["stamp"] = stamp


def work(chunk: Iterable) -> list:
    """The results of a chunk's items, each processed before the next is taken (the local pool times each
    page from the moment it is taken: see executor.LocalPoolExecutor)."""
    from ..stages.html import release_caches

    results = [_work_one(item) for item in chunk]
    release_caches()
    return results


def _work_one(item):
    if isinstance(item, EndOfInput):
        return item
    key, page = item
    pipeline = _WORKER["pipeline"]
    counters = Counters()
    outcome = pipeline.process(page, counters)
    doc = outcome.document
    if outcome.reject_reason is None:
        exact, sig, shingles = doc.fingerprint  # the Fingerprint stage's, for the dedup steps
        return PageResult(key, record_of(doc, _WORKER["stamp"]), None, counters, exact, sig, shingles)
    return PageResult(key, record_of(doc, _WORKER["stamp"]), outcome.reject_reason, counters)


def crash_result(stamp: str, item, reason: str = "crash",
                 detail: str = "the worker processing this page died") -> object:
    """What a page whose worker died (a segfault, the OOM killer; `timeout`: killed at the page's deadline)
    becomes: a reject."""
    if isinstance(item, EndOfInput):
        return item
    key, page = item
    doc = Document(id=document_id(page.rel_path, page.meta.get("url")), text="", metadata={
        "source_path": page.source_path, "url": page.meta.get("url"), "filter_reason": reason,
        "filter_detail": detail, "filter_stage": "worker"})
    counters = Counters(pages=1, rejects=Counter({reason: 1}), stage_rejects=Counter(worker=1))
    return PageResult(key, record_of(doc, stamp), reason, counters)


# --- counters and the report ---------------------------------------------------------------------------

@dataclass
class RunCounters(Counters):
    inputs: Counter = field(default_factory=Counter)  # files: seen, new, changed, resumed, skipped, failed, deleted
    duplicates: int = 0
    bytes_read: int = 0
    records_skipped: Counter = field(default_factory=Counter)  # archive records that are not pages, by why

    @property
    def failures(self) -> int:
        return sum(n for reason, n in self.rejects.items() if reason in FAILURE_REASONS)


def _sorted_counts(counter: Counter) -> dict:
    return dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


@dataclass
class RunResult:
    counters: RunCounters
    failures: int
    error_rate: float
    exit_code: int
    report: dict


# --- the run -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Engine:
    """Where the per-page work runs: `local` (a process pool of `workers`; 0 = in this process) or `ray`
    (Ray core tasks on the cluster at `address`, or on a local Ray with `workers` CPUs)."""

    kind: str = "local"
    workers: int = 0
    address: str | None = None


@dataclass(frozen=True)
class RunContext:
    """What one run is asked to do, built once by `run_corpus` (from the CLI's arguments) and only read after:
    by the run, and, its config, rules and stamp, by its workers."""

    raw: Path  # the input folder (or file)
    store: Store  # the output's record streams and report
    state_dir: Path  # the output's state (local)
    config: Config
    rules: RuleSet
    engine: Engine
    stamp: str  # processed_at of every record of the run
    started: float  # time.time() at the start
    progress: bool  # a progress bar on stderr
    full: bool  # --full: reprocess every input
    accept_mixed: bool  # --accept-mixed: keep earlier records made with other settings


def _ray_temp_dir(state_dir: Path) -> str:
    """Ray's session files under the run's state, unless that path is too long for its unix sockets."""
    import tempfile

    folder = (state_dir / "ray").resolve()
    if len(str(folder)) <= 40:
        folder.mkdir(parents=True, exist_ok=True)
        return str(folder)
    return tempfile.mkdtemp(prefix="pw-ray-")


class StoppedAtOnce(BaseException):
    """A second SIGINT/SIGTERM: the run stops where it is (as safe as a kill: the next run goes on)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _Stop:
    """SIGINT/SIGTERM: the first asks the run to finish the shard in hand; a second one stops at once."""

    def __init__(self) -> None:
        self.signum = 0
        self._previous: dict = {}

    def __enter__(self) -> _Stop:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame) -> None:
        if self.signum:
            raise StoppedAtOnce(signum)
        self.signum = signum
        log.warning("%s: finishing the shard in hand, then stopping (again to stop at once)",
                    signal.Signals(signum).name)

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class BatchRun:
    """One run over `raw` into the output `store`, with its state in `state_dir`; see the module docstring
    for the phases."""

    def __init__(self, ctx: RunContext, state: RunState, run_id: int, stop: _Stop) -> None:
        self.ctx, self.state, self.run_id, self.stop = ctx, state, run_id, stop
        self.staged = LocalStore(ctx.state_dir)  # the STAGED stream
        self.workers = ctx.engine.workers
        self.counters = RunCounters()
        try:
            self.index = DedupIndex(state.db, ctx.config.dedup)
        except ValueError as exc:
            raise ConfigError(f"{ctx.store}: {exc}; rerun with --full, or `pagewash dedup --rebuild -o {ctx.store}`") \
                from exc
        self.files: dict[str, InputFile] = {}  # inputs in flight: key -> file
        self.first_seq = 0  # the first shard this run writes (set when cleaning starts)
        self.pages_done: Counter = Counter()  # pages of each in-flight input in committed or current shards
        self.dedup_report: dict = {}
        self._executor = None
        self.clean_peak_kb = 0  # the driver's peak before the dedup phase started measuring its own
        self._bar = _progress_bar(ctx.raw) if ctx.progress else None

    # inputs ---------------------------------------------------------------------------------------------

    def items(self) -> Iterator:
        """Pages to clean, in input order, then an end marker per input; stops early on a signal. Once the
        walk has seen every entry, the inputs that are gone are retracted (`_retract_gone`)."""
        max_bytes = self.ctx.config.max_input_bytes
        root = root_id(self.ctx.raw)
        whole = not self.ctx.raw.is_file()  # a folder's inputs can go; a file given as RAW is there (or refused)
        self.state.begin_walk()
        seen: list[str] = []  # keys not yet noted in the state
        unread: list[str] = []  # folders that could not be read: what they hold is not known to be gone
        for found in walk_inputs(self.ctx.raw, self.own_folders()):
            if self.stop.signum:
                return
            path, key = found.path, found.key
            self.counters.inputs["seen"] += 1
            seen.append(key)
            if len(seen) >= SEEN_BATCH:
                self.state.saw(seen)
                seen.clear()
            if found.error is not None:
                if found.folder:
                    unread.append("" if key == "./" else key)
                yield from self._unreadable(path, key, root, found.error)
                continue
            try:
                file = self.state.triage(path, key, root)
            except OSError as exc:  # vanished, permission denied: a reject, and tried again next run
                yield from self._unreadable(path, key, root, str(exc.strerror or exc))
                continue
            if file is None:
                self.counters.inputs["skipped"] += 1
                self._advance(path)
                continue
            if file.retract:
                self.counters.inputs["changed"] += 1
                self._retract(key)
            elif file.resume_at:
                self.counters.inputs["resumed"] += 1
            else:
                self.counters.inputs["new"] += 1
            self.files[key] = file
            self.pages_done[key] = file.resume_at
            complete, failed, n = True, False, 0
            pages = read_inputs(path, self.ctx.raw, max_bytes, self.counters.records_skipped)
            while True:
                try:
                    page = next(pages, None)
                except Exception as exc:  # a reader bug or a pathological file: a reject, the run goes on
                    detail = f"{path}: reading stopped: {type(exc).__name__}: {exc}"
                    page = RawPage(str(path), f"{key}#error", b"", reject=Rejected("error", detail))
                    failed = True
                if page is None:
                    break
                n += 1
                # an input that could not be read to its end is redone whole next run, not resumed
                failed = failed or (page.reject is not None and page.reject.reason == "unreadable")
                if n > file.resume_at or failed:
                    self.counters.bytes_read += len(page.data)
                    yield (key, page)
                if failed:
                    break
                if self.stop.signum:
                    complete = False
                    break
            if failed:
                self.counters.inputs["failed"] += 1
                yield EndOfInput(key, failed=True)
            elif complete:
                yield EndOfInput(key)
        self.state.saw(seen)
        if whole and not self.stop.signum:
            self._retract_gone(root, unread)

    def own_folders(self) -> list[Path]:
        """The folders this run writes (its output's streams, made now, and its state), never read as input
        even when they lie under RAW."""
        folders = [self.ctx.state_dir]
        if isinstance(self.ctx.store, LocalStore):
            for stream in STREAMS:
                (self.ctx.store.root / stream).mkdir(parents=True, exist_ok=True)
                folders.append(self.ctx.store.root / stream)
        return folders

    def _unreadable(self, path: Path, key: str, root: str, detail: str) -> Iterator:
        """An input (or folder) that cannot be read: one reject in place of its earlier records, tried again
        next run."""
        self.counters.inputs["failed"] += 1
        if self.state.outputs_of(key):
            self._retract(key)
        self.files[key] = InputFile(path, key, root, 0, 0, "")
        page = RawPage(str(path), key, b"", reject=Rejected("unreadable", f"{path}: {detail}"))
        yield (key, page)
        yield EndOfInput(key, failed=True)

    def _retract_gone(self, root: str, unread: list[str]) -> None:
        """Retract the records of the inputs of this root that the walk did not find (deleted, renamed away,
        no longer an input), before the dedup phase, so that a renamed input is not a duplicate of its old
        self. Not those under a folder that could not be read; and none at all when the walk found nothing,
        which looks more like an unmounted volume than the deletion of every input."""
        gone = [key for key in self.state.gone_inputs(root) if not any(key.startswith(folder) for folder in unread)]
        if not gone:
            return
        if not self.counters.inputs["seen"]:
            log.warning("%s holds no input: the records of the %d inputs earlier runs found there are kept "
                        "(an unmounted volume?); `--full` empties the output", self.ctx.raw, len(gone))
            return
        for key in gone:
            self._retract(key, gone=True)
            if not key.endswith("/"):  # a folder that could not be read before: its reject goes, it is no input
                self.counters.inputs["deleted"] += 1

    def _advance(self, path: Path) -> None:
        if self._bar is not None:
            try:
                self._bar.update(path.stat().st_size)
            except OSError:
                pass

    # phase 1: clean ---------------------------------------------------------------------------------------

    @property
    def executor(self):
        """The engine's executor, started on first use and kept for both phases (`close` ends it)."""
        if self._executor is None:
            # The pipeline's modules (trafilatura, dateparser, language models) are imported here, once there
            # is work, not at start-up (a rerun with nothing new never needs them), and before the pool
            # forks, so that its workers share those pages instead of importing them each.
            from ..stages import html, runner  # noqa: F401

            init = functools.partial(init_worker, self.ctx.config, self.ctx.rules, self.ctx.stamp)
            on_crash = functools.partial(crash_result, self.ctx.stamp)
            if self.ctx.engine.kind == "ray":
                self._executor = RayExecutor(init, work, on_crash, address=self.ctx.engine.address,
                                             num_cpus=self.workers, temp_dir=_ray_temp_dir(self.ctx.state_dir))
            elif self.workers <= 0:
                self._executor = SerialExecutor(init, work)
            else:
                limit = self.ctx.config.extract_timeout
                on_timeout = functools.partial(
                    crash_result, self.ctx.stamp, reason="timeout",
                    detail=f"processing took longer than extract_timeout = {limit}s: its worker was killed")
                self._executor = LocalPoolExecutor(self.workers, init, work, on_crash,
                                                   memory_limit=self.ctx.config.memory_limit_mb * 1024 * 1024,
                                                   page_limit=limit, on_timeout=on_timeout,
                                                   private_files=[self.ctx.state_dir / LOCK_FILE])
        return self._executor

    def close(self, now: bool = False) -> None:
        """End the executor: its workers finish their tasks, or, `now`, are killed at once."""
        if self._executor is not None:
            self._executor.close(now)
            self._executor = None

    def clean(self) -> None:
        chunks = _chunked(self.items(), CHUNK_PAGES)
        self.first_seq = self.state.next_seq()
        shard = self._shard(self.first_seq)
        try:
            first = next(chunks, None)  # no work (a rerun with nothing new): no executor, no pipeline imported
            for results in self.executor.map(itertools.chain([first], chunks)) if first is not None else ():
                for result in results:
                    if isinstance(result, EndOfInput):
                        shard.ended[result.key] = result.failed
                        if self._bar is not None:
                            self._bar.update(self.files[result.key].size)
                        continue
                    shard.add(result)
                    self.pages_done[result.key] += 1
                    self.counters.merge(result.counters)
                    if self._bar is not None:
                        self._bar.set_postfix_str(f"{self.counters.pages} pages", refresh=False)
                    if shard.pages >= self.ctx.config.shard_pages:
                        self._commit(shard)
                        shard = self._shard(shard.seq + 1)
            self._commit(shard)
        except BaseException:
            shard.files.abort()
            raise
        finally:
            if self._bar is not None:
                self._bar.close()

    def _shard(self, seq: int) -> _Shard:
        return _Shard(seq, ShardSet(self.ctx.store, seq, {STAGED: self.staged}), self.ctx.config.dedup.enabled)

    def _commit(self, shard: _Shard) -> None:
        if not shard.pages and not shard.ended and not shard.touched:
            return
        shard.files.publish()
        inputs = []
        for key in sorted(shard.touched | set(shard.ended)):
            file = self.files[key]
            if key in shard.ended:
                failed = shard.ended[key]
                inputs.append((file, "failed" if failed else "done", self.pages_done[key]))
                del self.files[key]
                self.pages_done.pop(key, None)
            else:
                inputs.append((file, "partial", self.pages_done[key]))
        status = "staged" if shard.pending else "final"
        self.state.commit_shard(shard.seq, self.run_id, status, shard.files.counts, inputs, shard.outputs,
                                shard.pending)
        log.debug("shard %d: %d pages, %s", shard.seq, shard.pages, shard.files.counts)

    # changed inputs -------------------------------------------------------------------------------------

    def _retract(self, key: str, gone: bool = False) -> None:
        """Remove every record an earlier version of input `key` left, so the new version replaces it (or,
        when the input is `gone`, so that nothing of it stays, the state forgetting it too).

        Idempotent: the shard files are rewritten first, then the state forgets the records in one
        transaction; a kill in between makes the next run rewrite nothing and forget them then.
        """
        rows = self.state.outputs_of(key)
        # first of all, the state learns that this input's records are going: killed before the state
        # forgets them, the next run must process the input again even if it has reverted to the very
        # content the state remembers (its records are half gone from the files by then)
        self.state.mark_retracting(key)
        by_seq: dict[int, set[str]] = {}
        for doc_id, _stream, seq in rows:
            by_seq.setdefault(seq, set()).add(doc_id)
        root = self.ctx.raw.parent if self.ctx.raw.is_file() else self.ctx.raw  # input keys are relative to it
        for seq, ids in sorted(by_seq.items()):
            rivals = self.state.other_inputs(seq, key, ids)
            for store, stream in every_stream(self.ctx.store, self.staged):
                _rewrite_without(store, stream, shard_name(seq), ids, key, rivals, root)
        status = self.state.shard_status()
        kept = sorted({doc_id for doc_id, stream, seq in rows if stream == "documents" and status.get(seq) == "final"})
        with self.state.transaction() as db:
            for seq, stream, n in _count_rows(rows):
                self.state.change_counts(db, seq, functools.partial(_fewer, stream, n))
            self.state.forget(db, key, gone)
            self.index.forget(kept)  # an id kept from two inputs is impossible: the later is a duplicate
        log.info("%s %s: %d earlier records retracted", key, "gone" if gone else "changed", len(rows))

    # phase 2: dedup -------------------------------------------------------------------------------------

    def dedup(self) -> None:
        """The staged shards through one round of the four dedup steps (pipeline/dedup/driver.py) on the
        run's executor; the driver holds task results, never signatures."""
        if not any(status == "staged" for status in self.state.shard_status().values()):
            return
        self.clean_peak_kb, rss_before = _own_kb(), _own_kb("VmRSS")
        own_peak = _reset_peak()
        if isinstance(self._executor, LocalPoolExecutor):  # the steps need no pipeline: fresh, lean workers
            self._executor.renew(no_init)
        done = run_round(self.state, self.ctx.state_dir, self.ctx.store, self.ctx.config.dedup, self.executor,
                         stopped=lambda: bool(self.stop.signum), progress=tell if self.ctx.progress else None)
        if done is None:
            return
        # duplicates among documents an interrupted earlier run cleaned: not this run's pages
        earlier = sum(n for seq, n in done.duplicates.items() if seq < self.first_seq)
        duplicates = sum(done.duplicates.values())
        self.counters.duplicates = duplicates - earlier
        resolved = done.report["resolved"]
        self.dedup_report = {
            **done.report,
            "from_earlier_runs": {"documents": max(0, resolved - self.counters.documents - earlier),
                                  "duplicates": earlier},
            # what the driver itself holds while deduplicating (tasks run in the workers unless --workers 0)
            "driver_rss_mb": {"before": round(rss_before / 1024, 1),
                              "peak": round(_own_kb() / 1024, 1) if own_peak else None}}


@dataclass
class _Shard:
    seq: int
    files: ShardSet
    dedup: bool  # dedup is on: records are staged with the kept decision
    pages: int = 0
    outputs: list = field(default_factory=list)  # (doc_id, input key, stream)
    pending: list = field(default_factory=list)  # rows of the pending table
    ended: dict = field(default_factory=dict)  # input key -> failed
    touched: set = field(default_factory=set)  # inputs with pages in this shard

    def add(self, result: PageResult) -> None:
        self.pages += 1
        self.touched.add(result.key)
        record = result.record
        if result.reason is None:
            # staged even when dedup is off, so that documents/ is written in one place; with the kept decision
            # when on, which the filter step then copies for most records (`stage_as_kept`)
            self.files.write(STAGED, stage_as_kept(record) if self.dedup else record)
            self.outputs.append((record["id"], result.key, "documents"))
            self.pending.append((record["id"], result.key, self.seq, len(self.pending), len(record["text"]),
                                 record["metadata"].get("date"), result.exact, result.sig, result.shingles))
        else:
            self.files.write("rejects", record)
            self.outputs.append((record["id"], result.key, "rejects"))


def _chunked(items: Iterator, size: int) -> Iterator[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _fewer(stream: str, n: int, counts: dict) -> None:
    counts[stream] = max(0, counts.get(stream, 0) - n)


def _count_rows(rows: list) -> list[tuple[int, str, int]]:
    counts = Counter((seq, stream) for _doc, stream, seq in rows)
    return [(seq, stream, n) for (seq, stream), n in sorted(counts.items())]


def _rewrite_without(store: Store, stream: str, name: str, ids: set[str], key: str,
                     rivals: dict[str, list[str]] | None = None, root: Path | None = None) -> None:
    """Drop from the shard file `stream/name` the records of `ids` that input `key` left (`rivals`: id ->
    other inputs' keys with a record of that id in the shard; `root`: see `from_input`)."""
    rivals = rivals or {}
    kept, dropped = [], 0
    for line in store.lines(stream, name):
        record = json.loads(line)
        doc_id = record["id"]
        if doc_id in ids and from_input(record["metadata"].get("source_path") or "", key,
                                         rivals.get(doc_id, ()), root):
            dropped += 1
        else:
            kept.append(line)
    if dropped:
        replace_lines(store, stream, name, kept)


def _progress_bar(raw: Path):
    """A tqdm bar over input bytes (so ETA is meaningful for one big WARC as for many small pages)."""
    from tqdm import tqdm

    total = 0
    for path in discover(raw):
        try:
            total += path.stat().st_size
        except OSError:
            pass
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc="pagewash", file=sys.stderr,
                dynamic_ncols=True, smoothing=0.1)


def _own_kb(field: str = "VmHWM") -> int:
    """This process's peak (`VmHWM`) or current (`VmRSS`) resident memory, kB.

    Linux's VmHWM belongs to the process's own memory; `ru_maxrss` is carried across execve, so a driver
    started by a large parent (a benchmark holding its corpus) would report the parent's peak as its own.
    """
    found = _proc_kb("/proc/self/status", field)
    return found if found is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB, Linux and BSD


def _proc_kb(path: str, field: str) -> int | None:
    """A `Field:  N kB` figure of a /proc file (`/proc/self/status`, `/proc/meminfo`); None where there is none."""
    try:
        with open(path, encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _reset_peak() -> bool:
    """Start VmHWM afresh (Linux 4.0+), so that a phase's own peak can be read; False where impossible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mb(earlier_peak_kb: int = 0) -> dict:
    # workers are forked, never exec'd: their ru_maxrss is their own
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    driver_kb = max(_own_kb(), earlier_peak_kb)
    return {"driver": round(driver_kb / 1024, 1), "largest_worker": round(children_kb / 1024, 1)}


WORKER_BUDGET_MB = 300  # what a cleaning worker holds at its peak (~140 MB measured by bench/speed.py), with room


def cap_workers(requested: int) -> int:
    """At most four workers a core and as many as the available memory holds at WORKER_BUDGET_MB each: a
    pool far beyond that (`--workers 500`) swaps the machine to a halt instead of running faster."""
    cores = default_workers()
    limit = 4 * cores
    available_mb = (_proc_kb("/proc/meminfo", "MemAvailable") or 0) // 1024
    if available_mb:
        limit = min(limit, available_mb // WORKER_BUDGET_MB)
    limit = max(1, limit)
    if requested > limit:
        log.warning("%d workers capped to %d: this machine has %d cores and %s MB of memory available (~%d MB a "
                    "worker)", requested, limit, cores, available_mb or "unknown", WORKER_BUDGET_MB)
        return limit
    return requested


def run_corpus(raw: Path, out: Path | str, config: Config, *, rules: RuleSet | None = None, full: bool = False,
               wait: bool = False, workers: int | None = None, progress: bool | None = None,
               executor: str = "local", address: str | None = None, state_dir: Path | str | None = None,
               accept_mixed: bool = False) -> RunResult:
    """Clean what is new under `raw` into `out` (a folder, or an fsspec URL with `state_dir`: see
    pipeline/store.py); raises LockBusy if another run holds its state."""
    started = time.time()
    stamp = processed_at(started)
    rules = rules if rules is not None else load_rules(config.rules_dirs)  # bad rules: refused before any input
    workers = cap_workers(workers if workers is not None else (config.workers or default_workers()))
    engine = Engine(executor, workers, address)
    progress = sys.stderr.isatty() if progress is None else progress
    store, state_dir = open_output(str(out), str(state_dir) if state_dir else None)
    state_dir.mkdir(parents=True, exist_ok=True)
    ctx = RunContext(raw, store, state_dir, config, rules, engine, stamp, started, progress, full, accept_mixed)
    with run_lock(state_dir, wait=wait), _Stop() as stop:
        state = RunState(state_dir)
        try:
            return _run_locked(ctx, state, stop)
        finally:
            state.close()


def check_settings(state: RunState, config: Config, rules: RuleSet, *, full: bool,
                   accept_mixed: bool) -> tuple[list[str], str | None]:
    """Refuse (ConfigError) a run whose settings differ from those that made the output's records, unless it
    starts over (`--full`) or the user accepts mixing (`--accept-mixed`). Returns what changed and the
    fingerprint to record (None: the recorded one stands); `--full` records it in the transaction that
    empties the state, so that a kill between the two cannot leave old records under new settings. A state
    from before fingerprints adopts the current one."""
    from ..fingerprint import changes, settings_fingerprint

    now = settings_fingerprint(config, rules)
    stored = state.setting(SETTINGS_KEY)
    changed = changes(json.loads(stored), now) if stored is not None else []
    if changed and not full and not state.is_empty():
        if not accept_mixed:
            listed = "".join(f"\n  {line}" for line in changed[:20])
            more = f"\n  … and {len(changed) - 20} more" if len(changed) > 20 else ""
            raise ConfigError(
                f"the settings differ from those that made the records in this output:{listed}{more}\n"
                "rerun with --full to reprocess every input with the new settings, or with --accept-mixed to keep "
                "the earlier records and clean only new or changed inputs with the new settings")
        log.warning("settings changed (%s); --accept-mixed: earlier records are kept as they are", "; ".join(changed))
    return changed, json.dumps(now, sort_keys=True) if stored is None or changed else None


def _run_locked(ctx: RunContext, state: RunState, stop: _Stop) -> RunResult:
    raw, store, state_dir, config, stamp, full = ctx.raw, ctx.store, ctx.state_dir, ctx.config, ctx.stamp, ctx.full
    changed, fingerprint = check_settings(state, config, ctx.rules, full=full, accept_mixed=ctx.accept_mixed)
    run_id = state.begin_run(stamp)
    if full:  # the state and the index are emptied together, so neither outlives the other
        DedupIndex.create_schema(state.db)
        with state.transaction() as db:
            DedupIndex.clear(db)
            state.reset(db)
            if fingerprint is not None:
                state.set_setting(SETTINGS_KEY, fingerprint, db)
        shutil.rmtree(state_dir / ROUNDS, ignore_errors=True)  # no earlier round may be resumed or installed
    elif fingerprint is not None:
        state.set_setting(SETTINGS_KEY, fingerprint)
    bind(store, state_dir, state, full=full)
    batch = BatchRun(ctx, state, run_id, stop)
    install_rounds(store, state_dir, state.db)  # a run killed between its dedup commit and the files' move
    removed = sweep(store, batch.staged, state)  # after --full the state names no shard: every shard file goes
    if removed:
        log.info("removed %d shard files the state does not name (an interrupted run, or --full)", removed)
    status = "failed"
    try:
        try:
            batch.clean()
            if not stop.signum:
                batch.dedup()
        except BaseException:  # stopped at once, or failing: nothing waits for the workers' tasks any more
            batch.close(now=True)
            raise
        batch.close()
        status = "interrupted" if stop.signum else "done"
    except StoppedAtOnce:
        status = "interrupted"
        raise
    finally:
        c = batch.counters
        failures = c.failures
        error_rate = failures / c.pages if c.pages else 0.0
        seconds = time.time() - ctx.started
        report = {
            "pipeline_version": __version__,
            "run_id": run_id,
            "status": status,
            "processed_at": stamp,
            "input": str(raw),
            "output": str(store),
            "workers": ctx.engine.workers,
            "executor": ctx.engine.kind,
            "settings_changed": changed,
            "inputs": {k: c.inputs[k] for k in ("seen", "new", "changed", "resumed", "skipped", "failed", "deleted")},
            "pages": c.pages,
            "records_skipped": _sorted_counts(c.records_skipped),
            "documents": c.documents - c.duplicates,
            "duplicates": c.duplicates,
            "rejects": dict(sorted(c.rejects.items())),
            "failures": failures,
            "error_rate": round(error_rate, 4),
            "max_error_rate": config.max_error_rate,
            "lines_in": c.lines_in,
            "lines_kept": c.lines_kept,
            "rules_hit": _sorted_counts(c.rules_hit),
            "languages": _sorted_counts(c.languages),
            "stages": {name: {"seconds": round(c.stage_seconds[name], 3), "rejected": c.stage_rejects[name]}
                       for name in c.stage_seconds},
            "dedup": batch.dedup_report,
            "throughput": {"pages_per_s": round(c.pages / seconds, 1) if seconds else 0.0,
                           "mb_per_s": round(c.bytes_read / 1e6 / seconds, 2) if seconds else 0.0},
            "peak_rss_mb": _peak_rss_mb(batch.clean_peak_kb),
            "seconds": round(seconds, 3),
            "totals": state.totals(),
        }
        try:
            store.write_text("report.json", to_json(report, indent=2) + "\n")
        except StoreError as exc:  # the run's own failure, if any, is the one to raise; the state keeps the report
            log.error("report.json not written: %s", exc)
        state.end_run(run_id, status, processed_at(), report)
    if stop.signum:
        exit_code = 128 + stop.signum
    else:
        exit_code = EXIT_FAILURES if error_rate > config.max_error_rate else EXIT_OK
    return RunResult(batch.counters, failures, error_rate, exit_code, report)


__all__ = ["BatchRun", "RunContext", "RunResult", "run_corpus", "EXIT_BUSY"]
