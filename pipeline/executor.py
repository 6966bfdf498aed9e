"""Executors: map the per-page work over a stream of tasks, in order, with bounded memory.

The interface is one method, `map(chunks) -> result lists in chunk order`, where a chunk is a list of
items and `work(chunk)` returns one result per item, so a distributed engine can take
the place of the local process pool without the runner changing. Results come back in the order the
tasks went in, whatever the number of workers, which keeps the output byte-identical across worker
counts. At most `window` tasks are in flight, so the input stream is never read far ahead.
"""

from __future__ import annotations

import os
import resource
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
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

    def close(self) -> None: ...


def default_workers() -> int:
    """All cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class SerialExecutor:
    """Everything in this process: one worker, no pickling, easiest to debug (`--workers 1`)."""

    def __init__(self, init: Callable[[], None], work: Callable[[Chunk], list[Result]]) -> None:
        init()
        self._work = work

    def map(self, chunks: Iterable[Chunk]) -> Iterator[list[Result]]:
        for chunk in chunks:
            yield self._work(chunk)

    def run(self, fn: Callable[..., Result], tasks: Iterable[tuple]) -> Iterator[Result]:
        for args in tasks:
            yield fn(*args)

    def close(self) -> None:
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


def _worker_init(init: Callable[[], None], memory_limit: int) -> None:
    # the driver handles SIGINT/SIGTERM (it finishes the shard in hand); workers must not die first
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a TERM to the whole process group is the driver's to handle
    if memory_limit > 0:  # a page that needs more raises MemoryError in its worker, not an OOM kill
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = memory_limit if hard == resource.RLIM_INFINITY else min(memory_limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    init()


class LocalPoolExecutor:
    """A local process pool; each worker runs `init` once, then `work` on each task it is given.

    A worker that dies (a crash in C code, a kill) breaks the pool: the items in flight are then run again
    one at a time in a fresh pool, and an item that breaks that pool too gets `on_crash(item)`.
    """

    def __init__(self, workers: int, init: Callable[[], None], work: Callable[[Chunk], list[Result]],
                 on_crash: Callable[[Item], Result], memory_limit: int = 0, window: int = 0) -> None:
        self.workers = workers
        self._init = init
        self._work = work
        self._on_crash = on_crash
        self._memory_limit = memory_limit
        self._window = window or 4 * workers
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.workers, initializer=_worker_init, initargs=(self._init, self._memory_limit))

    def map(self, chunks: Iterable[Chunk]) -> Iterator[list[Result]]:
        # after a broken pool, one item at a time, so only the culprit breaks the pool again
        yield from self._results(_windowed(chunks, self._window, self._submit),
                                 lambda chunk: [self._run_alone(item) for item in chunk])

    def run(self, fn: Callable[..., Result], tasks: Iterable[tuple]) -> Iterator[Result]:
        """A task whose worker dies is run once more in a fresh pool; dying again, it raises."""
        yield from self._results(_windowed(tasks, self._window, lambda args: self._call(fn, args)),
                                 lambda args: self._call_again(fn, args))

    def _results(self, submitted: Iterator[tuple], again: Callable[[Any], Result]) -> Iterator[Result]:
        """The results of `_windowed` handles in order; when the pool breaks, the failed task and those in
        flight go through `again`, in a fresh pool."""
        for task, future, pending in submitted:
            try:
                yield future.result()
            except BrokenProcessPool:
                retry = [task] + [t for t, _ in pending]
                pending.clear()
                self._restart()
                for t in retry:
                    yield again(t)

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

    def _submit(self, chunk: Chunk) -> Future:
        return self._call(self._work, (chunk,))

    def _restart(self) -> None:
        # the pool's survivors ignore SIGTERM (the driver handles signals): killed, so that none of them
        # goes on with a task that is about to run again in the new pool
        for process in list((getattr(self._pool, "_processes", None) or {}).values()):
            process.kill()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()

    def _run_alone(self, item: Item) -> Result:
        try:
            return self._submit([item]).result()[0]
        except BrokenProcessPool:
            self._restart()
            return self._on_crash(item)

    def renew(self, init: Callable[[], None]) -> None:
        """Replace the workers by fresh ones that run `init`: a phase that needs nothing the last one loaded
        (the dedup steps after cleaning) then starts from the driver's footprint, not on top of the
        memory the cleaning pipeline left in each worker."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._init = init
        self._pool = self._new_pool()

    def close(self) -> None:
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

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()
