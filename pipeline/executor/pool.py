"""The local process pool: forked workers that die with the driver, per-page hard deadlines, crash recovery."""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import multiprocessing
import os
import resource
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from .base import Chunk, Factory, Item, Result, _windowed

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_driver(driver: int) -> None:
    """Have the kernel SIGKILL this worker when its driver dies, so that no worker outlives a killed driver
    (blocked writing a result into a pipe nobody reads, say).

    PR_SET_PDEATHSIG fires when the *thread* that forked the worker ends: a fork-context pool forks all its
    workers at its first submit (concurrent/futures/process.py, `_launch_processes`), in the thread that
    uses the executor (a run's main thread, which ends only with the driver). A driver that died before
    the call is caught by the parent check after it.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != driver:
        os._exit(1)


def _close_inherited(paths: tuple[str, ...]) -> None:
    """Close this worker's copies of the driver's descriptors of `paths` (the run's lock).

    A flock belongs to the open file description, which fork shares: a worker holding a copy would hold the
    driver's lock. Closed, never unlocked (LOCK_UN would release the driver's lock as well).
    """
    wanted = set()
    for path in paths:
        try:
            found = os.stat(path)
        except OSError:
            continue
        wanted.add((found.st_dev, found.st_ino))
    if not wanted:
        return
    for name in os.listdir("/proc/self/fd"):
        try:
            found = os.fstat(int(name))
        except OSError:  # the listing's own descriptor, closed by now
            continue
        if (found.st_dev, found.st_ino) in wanted:
            os.close(int(name))


class _PageTable:
    """Which page each worker of a pool is on, and until when: a row per worker in shared memory (pid, task
    serial, page index in the task, deadline on the system-wide monotonic clock), written by the worker as
    it takes each page and read by the driver, which kills a worker past its deadline. One table per pool,
    made before the pool forks and handed to its workers through the initializer.

    Rows are read without a lock (a worker killed holding one would block the driver): the worker zeroes
    the deadline before it rewrites the row, and the driver keeps a row only if the deadline it read
    before and after the other fields is the same.
    """

    _FIELDS = 4

    def __init__(self, context: multiprocessing.context.BaseContext, workers: int) -> None:
        self._rows = context.RawArray("d", workers * self._FIELDS)
        self._claimed = context.Value("i", 0)

    def claim(self) -> int:
        """A worker's own row (a pool forks exactly `workers` processes: it never replaces one)."""
        with self._claimed.get_lock():
            row = self._claimed.value
            self._claimed.value += 1
        self._rows[row * self._FIELDS] = os.getpid()
        return row

    def start(self, row: int, serial: int, index: int, deadline: float) -> None:
        base = row * self._FIELDS
        self._rows[base + 3] = 0.0
        self._rows[base + 1] = serial
        self._rows[base + 2] = index
        self._rows[base + 3] = deadline

    def finish(self, row: int) -> None:
        self._rows[row * self._FIELDS + 3] = 0.0

    def overdue(self, now: float) -> list[tuple[int, int, int, int]]:
        """(row, pid, task serial, page index) of each worker whose page's deadline is before `now`."""
        late = []
        for row in range(len(self._rows) // self._FIELDS):
            base = row * self._FIELDS
            deadline = self._rows[base + 3]
            if deadline and deadline < now:
                pid, serial, index = (int(x) for x in self._rows[base:base + 3])
                if self._rows[base + 3] == deadline:
                    late.append((row, pid, serial, index))
        return late


@dataclass
class _InProcess:
    """What one pool worker process holds between its tasks: its worker (built once by the executor's factory)
    and its row of the page table. Set by `_worker_init` in the worker process only, never in the driver:
    a process pool gives its tasks no other way to reach what their process loaded once."""

    worker: Callable[[Chunk], list] | None = None
    table: _PageTable | None = None
    row: int = -1


_IN_PROCESS = _InProcess()


def _worker_init(factory: Factory, memory_limit: int, driver: int, table: _PageTable | None,
                 private_files: tuple[str, ...]) -> None:
    _die_with_driver(driver)
    _close_inherited(private_files)
    # the driver handles SIGINT/SIGTERM (it finishes the shard in hand); workers must not die first
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a TERM to the whole process group is the driver's to handle
    if memory_limit > 0:  # a page that needs more raises MemoryError in its worker, not an OOM kill
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = memory_limit if hard == resource.RLIM_INFINITY else min(memory_limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    if table is not None:
        _IN_PROCESS.table, _IN_PROCESS.row = table, table.claim()
    _IN_PROCESS.worker = factory()


def _work(chunk: Chunk) -> list[Result]:
    return _IN_PROCESS.worker(chunk)


def _timed_work(serial: int, limit: float, chunk: Chunk) -> list[Result]:
    """The worker over `chunk`, each item entered in the page table, with its deadline, as the worker takes it."""
    table, row = _IN_PROCESS.table, _IN_PROCESS.row

    def timed() -> Iterator[Item]:
        try:
            for index, item in enumerate(chunk):
                table.start(row, serial, index, time.monotonic() + limit)
                yield item
        finally:
            table.finish(row)

    return _IN_PROCESS.worker(timed())


_TODO = object()  # a result not known yet


@dataclass
class _InFlight:
    """A chunk of `map`'s input: its results so far (`_TODO` where none yet), and the task computing the
    rest (`serial`, `positions`: which items of the chunk it was given)."""

    chunk: Chunk
    results: list
    serial: int = -1
    positions: list[int] = field(default_factory=list)
    future: Future | None = None

    def harvest(self) -> None:
        """Take the task's results if it finished well (then `future` is None)."""
        future = self.future
        if future is None or not future.done() or future.cancelled() or future.exception() is not None:
            return
        for position, result in zip(self.positions, future.result(), strict=True):
            self.results[position] = result
        self.future = None


class LocalPoolExecutor:
    """A local process pool; each worker process calls `factory` once, then its worker on each task it is given.

    Workers die with the driver (PR_SET_PDEATHSIG) and close their copies of `private_files` (the run's
    lock), so a killed driver leaves neither workers nor a held lock behind.

    With `page_limit` > 0 every item has a hard deadline of `page_limit` + `GRACE` seconds from the moment
    the worker takes it (a worker must take a chunk's items one at a time, as it processes them): a worker past it
    is killed (SIGKILL: the limit holds while C code runs, which a signal handler cannot interrupt), its item
    becomes `on_timeout(item)` and the other items in flight are run again in a fresh pool. The grace lets
    the worker's own soft limit (timelimit.py), a cleaner reject, act first when it can.

    A worker that dies otherwise (a crash in C code, the OOM killer) breaks the pool: the items in flight
    are then run again one at a time in a fresh pool, and an item that breaks that pool too gets
    `on_crash(item)`.
    """

    GRACE = 2.0  # seconds
    POLL = 0.25  # seconds between two looks at the page table while waiting for a result

    def __init__(self, workers: int, factory: Factory, on_crash: Callable[[Item], Result], memory_limit: int = 0,
                 window: int = 0, page_limit: float = 0.0, on_timeout: Callable[[Item], Result] | None = None,
                 private_files: Iterable[str | os.PathLike] = ()) -> None:
        if page_limit > 0 and on_timeout is None:
            raise ValueError("a page_limit needs on_timeout")
        self.workers = workers
        self._factory = factory
        self._on_crash = on_crash
        self._on_timeout = on_timeout
        self._page_limit = page_limit
        self._memory_limit = memory_limit
        self._window = window or 4 * workers
        self._private = tuple(os.fspath(path) for path in private_files)
        self._driver = os.getpid()
        self._context = multiprocessing.get_context("fork")  # workers share the driver's imports; see _die_with_driver
        self._serials = itertools.count()
        self._late: set[tuple[int, int]] = set()  # (task serial, item index) whose worker was killed
        self._table: _PageTable | None = None
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        self._table = _PageTable(self._context, self.workers) if self._page_limit > 0 else None
        return ProcessPoolExecutor(self.workers, mp_context=self._context, initializer=_worker_init,
                                   initargs=(self._factory, self._memory_limit, self._driver, self._table,
                                             self._private))

    def map(self, chunks: Iterable[Chunk]) -> Iterator[list[Result]]:
        def start(chunk: Chunk) -> _InFlight:
            return self._start(_InFlight(chunk, [_TODO] * len(chunk)))

        for _chunk, head, pending in _windowed(chunks, self._window, start):
            while head.future is not None:
                self._wait(head.future)
                try:
                    head.future.result()  # raises what the worker raised, or BrokenProcessPool
                except (BrokenProcessPool, CancelledError):  # cancelled: by a restart of the pool it was in
                    self._recover([head, *(entry for _chunk, entry in pending)])
                    continue
                head.harvest()
            yield head.results

    def _start(self, entry: _InFlight) -> _InFlight:
        """Submit what is left of `entry`, if anything."""
        entry.positions = [i for i, result in enumerate(entry.results) if result is _TODO]
        entry.future = None
        if entry.positions:
            entry.serial = next(self._serials)
            entry.future = self._submit(entry.serial, [entry.chunk[i] for i in entry.positions])
        return entry

    def _submit(self, serial: int, chunk: Chunk) -> Future:
        if self._page_limit > 0:
            return self._call(_timed_work, (serial, self._page_limit, chunk))
        return self._call(_work, (chunk,))

    def _wait(self, future: Future | None) -> None:
        """Until `future` is done, killing the workers past their page's deadline meanwhile."""
        if future is None:
            return
        while not wait([future], timeout=self.POLL if self._table is not None else None).done:
            for row, pid, serial, index in self._table.overdue(time.monotonic() - self.GRACE):
                self._late.add((serial, index))
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                self._table.finish(row)  # killed once: its pid is not signalled again (it could be reused)

    def _recover(self, window: list[_InFlight]) -> None:
        """The pool broke. If the driver killed workers past their deadline, their items become timeouts and
        the rest of the window is submitted again to a fresh pool; otherwise a worker died of its own and
        every item in flight is run alone, so that only the culprit breaks the pool again."""
        late, self._late = self._late, set()
        for entry in window:
            entry.harvest()
        self._restart()
        failed = [entry for entry in window if entry.future is not None]
        late &= {(entry.serial, index) for entry in failed for index in range(len(entry.positions))}
        for entry in failed:
            for index, position in enumerate(entry.positions):
                if not late:
                    entry.results[position] = self._run_alone(entry.chunk[position])
                elif (entry.serial, index) in late:
                    entry.results[position] = self._on_timeout(entry.chunk[position])
            self._start(entry)

    def _run_alone(self, item: Item) -> Result:
        serial = next(self._serials)
        try:
            future = self._submit(serial, [item])
            self._wait(future)
            return future.result()[0]
        except (BrokenProcessPool, CancelledError):
            late, self._late = self._late, set()
            self._restart()
            return self._on_timeout(item) if (serial, 0) in late else self._on_crash(item)

    def run(self, fn: Callable[..., Result], tasks: Iterable[tuple]) -> Iterator[Result]:
        """A task whose worker dies is run once more in a fresh pool; dying again, it raises."""
        for args, future, pending in _windowed(tasks, self._window, lambda args: self._call(fn, args)):
            try:
                yield future.result()
            except BrokenProcessPool:
                retry = [args] + [t for t, _ in pending]
                pending.clear()
                self._restart()
                for again in retry:
                    yield self._call_again(fn, again)

    def _call_again(self, fn: Callable[..., Result], args: tuple) -> Result:
        try:
            return self._pool.submit(fn, *args).result()
        except BrokenProcessPool as exc:
            self._restart()
            raise RuntimeError(f"{fn.__name__}: a task killed its worker twice") from exc

    def _call(self, fn: Callable[..., Result], args: tuple) -> Future:
        try:
            return self._pool.submit(fn, *args)
        except BrokenProcessPool:
            self._restart()
            return self._pool.submit(fn, *args)

    def _restart(self) -> None:
        self._abort()
        self._pool = self._new_pool()

    def _abort(self) -> None:
        # the pool's workers ignore SIGTERM (the driver handles signals): killed, so that none of them goes on
        # with a task that is about to run again in a new pool, or that nobody waits for any more
        for process in list((getattr(self._pool, "_processes", None) or {}).values()):
            process.kill()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def renew(self, factory: Factory) -> None:
        """Replace the workers by fresh ones made by `factory`: a phase that needs nothing the last one loaded
        (the dedup steps after cleaning) then starts from the driver's footprint, not on top of the
        memory the cleaning pipeline left in each worker."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._factory = factory
        self._pool = self._new_pool()

    def close(self, now: bool = False) -> None:
        """Let the workers finish their tasks and go, or, `now`, kill them (a run stopped at once, or failing:
        nothing waits for what they are doing)."""
        if now:
            self._abort()
        else:
            self._pool.shutdown(wait=True, cancel_futures=True)
