"""Executors: where the per-page work runs. `base` holds the contract (`Executor`: `map` chunks to result lists in
order, `run` tasks) and the serial executor; `pool` the local process pool; `ray` Ray core tasks. The package
imports nothing else of pagewash."""

from .base import Chunk, Executor, Factory, SerialExecutor, default_workers, no_worker
from .pool import LocalPoolExecutor
from .ray import RayExecutor

__all__ = ["Chunk", "Executor", "Factory", "LocalPoolExecutor", "RayExecutor", "SerialExecutor", "default_workers",
           "no_worker"]
