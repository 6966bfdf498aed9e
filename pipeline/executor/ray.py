"""Ray core tasks (optional: `pip install pagewash[ray]`), behind the same `map` as the local pool."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator

from .base import Chunk, Factory, Item, Result, _windowed

_IN_PROCESS: dict[str, Callable[[Chunk], list]] = {}  # in a Ray worker process only: each run's worker, by token


def _ray_chunk(token: str, factory: Factory, chunk: Chunk) -> list[Result]:
    """A Ray worker process keeps the worker of each run (token) it has served: a task cannot reach its process
    but through the module, as in a local pool (`pool._InProcess`)."""
    worker = _IN_PROCESS.get(token)
    if worker is None:
        worker = _IN_PROCESS[token] = factory()
    return worker(chunk)


class RayExecutor:
    """Ray core tasks, one per chunk, behind the same `map` (no Ray Data): results in input order, at most
    `window` tasks in flight. Ray retries a task whose worker died or which raised (`max_retries`); a chunk
    that still fails is run item by item, and an item that fails alone gets `on_crash(item)`.

    Without `address`, a local Ray is started (`address="local"`) with `num_cpus` CPUs and its temporary
    files under `temp_dir`; with one, the run joins that cluster (the inputs and the output must then be on
    storage every node sees).
    """

    def __init__(self, factory: Factory, on_crash: Callable[[Item], Result], address: str | None = None,
                 num_cpus: int | None = None, temp_dir: str | None = None, window: int = 0,
                 max_retries: int = 3) -> None:
        try:
            import ray
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError("the Ray executor needs Ray: pip install 'pagewash[ray]'") from exc

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
        self._setup = ray.put(factory)
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
