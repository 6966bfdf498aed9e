"""One run's work once its context is set (`BatchRun`): the walk over the inputs, cleaning on the executor's
workers, shard assembly and commit, then the dedup round. `run/corpus.py` sets it up and reports it."""

from __future__ import annotations

import functools
import itertools
import logging
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..config import ConfigError
from ..dedup import DedupIndex, stage_as_kept
from ..dedup.driver import run_round, tell
from ..dedup.tasks import STAGED
from ..document import RawPage, Rejected
from ..executor import LocalPoolExecutor, RayExecutor, SerialExecutor, no_worker
from ..io.sources import discover, read_inputs, walk_inputs
from ..io.store import LocalStore
from ..io.writer import ShardSet
from ..state import LOCK_FILE, STREAMS, InputFile, RunState, root_id
from .context import RunContext, Stop
from .probes import own_kb, reset_peak
from .report import RunCounters
from .retract import retract
from .worker import EndOfInput, PageResult, Worker, crash_result

log = logging.getLogger("pagewash")

CHUNK_PAGES = 16
SEEN_BATCH = 1000  # input keys noted in the state at a time during the walk


def _ray_temp_dir(state_dir: Path) -> str:
    """Ray's session files under the run's state, unless that path is too long for its unix sockets."""
    folder = (state_dir / "ray").resolve()
    if len(str(folder)) <= 40:
        folder.mkdir(parents=True, exist_ok=True)
        return str(folder)
    return tempfile.mkdtemp(prefix="pw-ray-")


class BatchRun:
    """One run over `raw` into the output `store`, with its state in `state_dir`; see the module docstring
    for the phases."""

    def __init__(self, ctx: RunContext, state: RunState, run_id: int, stop: Stop) -> None:
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
        self._last_beat = time.monotonic()

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
        limit, taken = self.ctx.select.limit, 0  # --limit: pages yielded
        for found in walk_inputs(self.ctx.raw, self.own_folders(), self.counters.files_skipped):
            if self.stop.signum:
                return
            path, key = found.path, found.key
            if not found.folder and not self.ctx.select.takes(key):
                self.counters.files_skipped["left out by --glob/--exclude"] += 1
                continue
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
            pages = read_inputs(path, self.ctx.raw, max_bytes, self.counters.records_skipped, self.ctx.config.input,
                                self.counters.input_kinds)
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
                    taken += 1
                    yield (key, page)
                if limit and taken >= limit:  # --limit: the rest of this input is for the next run
                    complete = False
                    break
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
            if limit and taken >= limit:
                log.info("--limit %d: %d pages taken; the next run goes on from here", limit, taken)
                break
        self.state.saw(seen)
        if whole and not self.stop.signum and not self.ctx.select.partial:
            self._retract_gone(root, unread)
        elif whole and self.ctx.select.partial:
            log.info("a selective run (--glob, --exclude, --limit): inputs not seen are not taken for deleted")

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

            factory = functools.partial(Worker, self.ctx.config, self.ctx.rules, self.ctx.stamp, self.ctx.source)
            on_crash = functools.partial(crash_result, self.ctx.stamp, source=self.ctx.source)
            if self.ctx.engine.kind == "ray":
                self._executor = RayExecutor(factory, on_crash, address=self.ctx.engine.address,
                                             num_cpus=self.workers, temp_dir=_ray_temp_dir(self.ctx.state_dir))
            elif self.workers <= 0:
                self._executor = SerialExecutor(factory)
            else:
                limit = self.ctx.config.extract_timeout
                on_timeout = functools.partial(
                    crash_result, self.ctx.stamp, reason="timeout", source=self.ctx.source,
                    detail=f"processing took longer than extract_timeout = {limit}s: its worker was killed")
                self._executor = LocalPoolExecutor(self.workers, factory, on_crash,
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
                    self._heartbeat()
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

    def _heartbeat(self) -> None:
        """A progress line on stderr every `heartbeat` seconds (cron: no terminal, no bar)."""
        if not self.ctx.heartbeat:
            return
        now = time.monotonic()
        if now - self._last_beat < self.ctx.heartbeat:
            return
        self._last_beat = now
        elapsed = time.time() - self.ctx.started
        c = self.counters
        tell(f"{c.pages:,} pages in {elapsed / 60:.1f} min ({c.pages / elapsed:.1f} pages/s): {c.documents:,} "
             f"documents, {sum(c.rejects.values()):,} rejects; {c.inputs['seen']:,} inputs seen so far "
             f"(ETA unknown until the walk ends)")

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
        root = self.ctx.raw.parent if self.ctx.raw.is_file() else self.ctx.raw  # input keys are relative to it
        retract(self.state, self.index, self.ctx.store, self.staged, root, key, gone)

    # phase 2: dedup -------------------------------------------------------------------------------------

    def dedup(self) -> None:
        """The staged shards through one round of the four dedup steps (pipeline/dedup/driver.py) on the
        run's executor; the driver holds task results, never signatures."""
        if not any(status == "staged" for status in self.state.shard_status().values()):
            return
        self.clean_peak_kb, rss_before = own_kb(), own_kb("VmRSS")
        own_peak = reset_peak()
        if isinstance(self._executor, LocalPoolExecutor):  # the steps need no pipeline: fresh, lean workers
            self._executor.renew(no_worker)
        done = run_round(self.state, self.ctx.state_dir, self.ctx.store, self.ctx.config.dedup, self.executor,
                         stopped=lambda: bool(self.stop.signum),
                         progress=tell if self.ctx.progress or self.ctx.heartbeat else None)
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
                              "peak": round(own_kb() / 1024, 1) if own_peak else None}}


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
        if result.rejected is None:
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
