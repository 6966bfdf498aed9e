"""The executor contract and the serial executor: map the per-page work over a stream of tasks, in order,
with bounded memory.

The interface is one method, `map(chunks) -> result lists in chunk order`, where a chunk is a list of
items. An executor is given a `factory`: each worker process calls it once and gets its worker, an object
called with a chunk that returns one result per item (the run's `run.worker.Worker`). So a distributed
engine can take the place of the local process pool without the run changing. Results come back in the order the
tasks went in, whatever the number of workers, which keeps the output byte-identical across worker
counts. At most `window` tasks are in flight, so the input stream is never read far ahead.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

Item = Any
Result = Any
Chunk = list
Factory = Callable[[], Callable[[Chunk], list]]  # run once in each worker process: the worker, called per chunk


def no_worker() -> Callable[[Chunk], list]:
    """The factory of workers for `run` tasks only (the dedup steps): they map no chunk."""
    return _no_chunks


def _no_chunks(chunk: Chunk) -> list:
    raise RuntimeError("this executor's workers were made for run() tasks, not for chunks")


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

    def __init__(self, factory: Factory) -> None:
        self._worker = factory()

    def map(self, chunks: Iterable[Chunk]) -> Iterator[list[Result]]:
        for chunk in chunks:
            yield self._worker(chunk)

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
