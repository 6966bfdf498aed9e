"""Executors: map the per-page work over a stream of tasks, in order, with bounded memory.

The interface is one method, `map(chunks) -> result lists in chunk order`, where a chunk is a list of
items and `work(chunk)` returns one result per item, so a distributed engine can take
the place of the local process pool without the runner changing. Results come back in the order the
tasks went in, whatever the number of workers, which keeps the output byte-identical across worker
counts. At most `window` tasks are in flight, so the input stream is never read far ahead.
"""

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
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Protocol

Item = Any
Result = Any
Chunk = list


class Executor(Protocol):
    def map(self, chunks: Iterable[Chunk]) -> Iterator[list[Result]]: ...

    def run(self, fn: Callable[..., Result], tasks: Iterable[tuple]) -> Iterator[Result]:
        """`fn(*args)` for each args tuple (a dedup step's tasks), results in task order; a task that fails
        (after the engine's retries) raises here."""
        ...

    def close(self, now: bool = False) -> None: ...


def default_workers() -> int:
    """All cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class SerialExecutor:
    """Everything in this process: no pickling, easiest to debug (`run_corpus(workers=0)`); the time limit is only the
    in-process one (timelimit.py)."""

    def __init__(self, init: Callable[[], None], work: Callable[[Chunk], list[Result]]) -> None:
        init()
        self._work = work

    def map(self, chunks: Iterable[Chunk]) -> Iterator[list[Result]]:
        for chunk in chunks:
            yield self._work(chunk)

    def run(self, fn: Callable[..., Result], tasks: Iterable[tuple]) -> Iterator[Result]:
        for args in tasks:
            yield fn(*args)

    def close(self, now: bool = False) -> None:
        pass


def _windowed(chunks: Iterable[Chunk], window: int, submit: Callable[[Chunk], Any]) -> Iterator[tuple]:
    """(chunk, handle, the handles still in flight), oldest first, with at most `window` submitted ahead;
    the caller may empty the in-flight deque (to resubmit those chunks another way)."""
    pending: deque[tuple[Chunk, Any]] = deque()
    stream = iter(chunks)
    exhausted = False
    while True:
        while not exhausted and len(pending) < window:
            chunk = next(stream, None)
            if chunk is None:
                exhausted = True
                break
            pending.append((chunk, submit(chunk)))
        if not pending:
            return
        chunk, handle = pending.popleft()
        yield chunk, handle, pending


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


_IN_WORKER: dict = {}  # per pool worker process, set by `_worker_init`: its page table and row (never in the driver)


def _worker_init(init: Callable[[], None], memory_limit: int, driver: int, table: _PageTable | None,
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
        _IN_WORKER["pages"] = (table, table.claim())
    init()


def _timed_work(work: Callable[[Iterable[Item]], list[Result]], serial: int, limit: float,
                chunk: Chunk) -> list[Result]:
    """`work` over `chunk`, each item entered in the page table, with its deadline, as `work` takes it."""
    table, row = _IN_WORKER["pages"]

    def timed() -> Iterator[Item]:
        try:
            for index, item in enumerate(chunk):
                table.start(row, serial, index, time.monotonic() + limit)
                yield item
        finally:
            table.finish(row)

    return work(timed())


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
    """A local process pool; each worker runs `init` once, then `work` on each task it is given.

    Workers die with the driver (PR_SET_PDEATHSIG) and close their copies of `private_files` (the run's
    lock), so a killed driver leaves neither workers nor a held lock behind.

    With `page_limit` > 0 every item has a hard deadline of `page_limit` + `GRACE` seconds from the moment
    `work` takes it (`work` must take a chunk's items one at a time, as it processes them): a worker past it
    is killed (SIGKILL: the limit holds while C code runs, which a signal handler cannot interrupt), its item
    becomes `on_timeout(item)` and the other items in flight are run again in a fresh pool. The grace lets
    the worker's own soft limit (timelimit.py), a cleaner reject, act first when it can.

    A worker that dies otherwise (a crash in C code, the OOM killer) breaks the pool: the items in flight
    are then run again one at a time in a fresh pool, and an item that breaks that pool too gets
    `on_crash(item)`.
    """

    GRACE = 2.0  # seconds
    POLL = 0.25  # seconds between two looks at the page table while waiting for a result

    def __init__(self, workers: int, init: Callable[[], None], work: Callable[[Iterable[Item]], list[Result]],
                 on_crash: Callable[[Item], Result], memory_limit: int = 0, window: int = 0,
                 page_limit: float = 0.0, on_timeout: Callable[[Item], Result] | None = None,
                 private_files: Iterable[str | os.PathLike] = ()) -> None:
        if page_limit > 0 and on_timeout is None:
            raise ValueError("a page_limit needs on_timeout")
        self.workers = workers
        self._init = init
        self._work = work
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
                                   initargs=(self._init, self._memory_limit, self._driver, self._table,
                                             self._private))

    def map(self, chunks: Iterable[Chunk]) -> Iterator[list[Result]]:
        def start(chunk: Chunk) -> _InFlight:
            return self._start(_InFlight(chunk, [_TODO] * len(chunk)))

        for _chunk, head, pending in _windowed(chunks, self._window, start):
            while head.future is not None:
                self._wait(head.future)
                try:
                    head.future.result()  # raises what `work` raised, or BrokenProcessPool
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
            return self._call(_timed_work, (self._work, serial, self._page_limit, chunk))
        return self._call(self._work, (chunk,))

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

    def renew(self, init: Callable[[], None]) -> None:
        """Replace the workers by fresh ones that run `init`: a phase that needs nothing the last one loaded
        (the dedup steps after cleaning) then starts from the driver's footprint, not on top of the
        memory the cleaning pipeline left in each worker."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._init = init
        self._pool = self._new_pool()

    def close(self, now: bool = False) -> None:
        """Let the workers finish their tasks and go, or, `now`, kill them (a run stopped at once, or failing:
        nothing waits for what they are doing)."""
        if now:
            self._abort()
        else:
            self._pool.shutdown(wait=True, cancel_futures=True)


# --- Ray core tasks (optional: `pip install pagewash[ray]`) ------------------------------------------------

_RAY_READY: dict = {}  # per Ray worker process: the run tokens whose `init` has run there


def _ray_chunk(token: str, setup: tuple, chunk: Chunk) -> list[Result]:
    init, work = setup
    if token not in _RAY_READY:
        init()
        _RAY_READY[token] = True
    return work(chunk)


class RayExecutor:
    """Ray core tasks, one per chunk, behind the same `map` (no Ray Data): results in input order, at most
    `window` tasks in flight. Ray retries a task whose worker died or which raised (`max_retries`); a chunk
    that still fails is run item by item, and an item that fails alone gets `on_crash(item)`.

    Without `address`, a local Ray is started (`address="local"`) with `num_cpus` CPUs and its temporary
    files under `temp_dir`; with one, the run joins that cluster (the inputs and the output must then be on
    storage every node sees).
    """

    def __init__(self, init: Callable[[], None], work: Callable[[Chunk], list[Result]],
                 on_crash: Callable[[Item], Result], address: str | None = None, num_cpus: int | None = None,
                 temp_dir: str | None = None, window: int = 0, max_retries: int = 3) -> None:
        try:
            import ray
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError("the Ray executor needs Ray: pip install 'pagewash[ray]'") from exc
        import uuid

        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(address="local", num_cpus=num_cpus, _temp_dir=temp_dir, include_dashboard=False,
                         log_to_driver=False)
            self._started = True
        self._token = uuid.uuid4().hex
        self._setup = ray.put((init, work))
        self._task = ray.remote(max_retries=max_retries, retry_exceptions=True)(_ray_chunk)
        self._max_retries = max_retries
        self._on_crash = on_crash
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self._window = window or 4 * max(1, cpus)

    def _submit(self, chunk: Chunk):
        return self._task.remote(self._token, self._setup, chunk)

    def map(self, chunks: Iterable[Chunk]) -> Iterator[list[Result]]:
        for chunk, ref, _pending in _windowed(chunks, self._window, self._submit):
            try:
                yield self._ray.get(ref)
            except self._ray.exceptions.RayError:
                yield [self._run_alone(item) for item in chunk]

    def run(self, fn: Callable[..., Result], tasks: Iterable[tuple]) -> Iterator[Result]:
        """One Ray task per args tuple, retried by Ray (`max_retries`) when it raises or its worker dies."""
        remote = self._ray.remote(max_retries=self._max_retries, retry_exceptions=True)(fn)
        for _args, ref, _pending in _windowed(tasks, self._window, lambda args: remote.remote(*args)):
            yield self._ray.get(ref)

    def _run_alone(self, item: Item) -> Result:
        try:
            return self._ray.get(self._submit([item]))[0]
        except self._ray.exceptions.RayError:
            return self._on_crash(item)

    def close(self, now: bool = False) -> None:
        """Shuts down the local Ray this executor started (its tasks with it); a cluster's is left as it is."""
        if self._started:
            self._ray.shutdown()
