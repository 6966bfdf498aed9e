"""The executors: results in input order whatever the workers, a crashing item isolated, the memory guard."""

from __future__ import annotations

import os
import signal

import pytest

from pipeline.executor import LocalPoolExecutor, SerialExecutor


def _noop() -> None:
    pass


def _square(chunk: list) -> list:
    return [x * x for x in chunk]


def _dies_on_13(chunk: list) -> list:
    if 13 in chunk:
        os.kill(os.getpid(), signal.SIGKILL)  # a segfault in C code, the OOM killer
    return [x * x for x in chunk]


def _allocates(chunk: list) -> list:
    results = []
    for megabytes in chunk:
        try:
            block = bytearray(megabytes * 1024 * 1024)
            results.append(len(block) // (1024 * 1024))
        except MemoryError:
            results.append("MemoryError")
    return results


def _chunks(n: int, size: int) -> list[list[int]]:
    return [list(range(i, min(n, i + size))) for i in range(0, n, size)]


@pytest.mark.parametrize("workers", [1, 2])
def test_results_come_back_in_input_order(workers: int):
    pool = LocalPoolExecutor(workers, _noop, _square, on_crash=lambda item: None, window=3)
    try:
        flat = [x for result in pool.map(iter(_chunks(200, 7))) for x in result]
    finally:
        pool.close()
    assert flat == [x * x for x in range(200)]
    serial = SerialExecutor(_noop, _square)
    assert [x for result in serial.map(_chunks(200, 7)) for x in result] == flat


def test_a_crashing_item_is_isolated_and_the_rest_completes():
    crashed = []

    def on_crash(item):
        crashed.append(item)
        return "crash"

    pool = LocalPoolExecutor(2, _noop, _dies_on_13, on_crash=on_crash, window=4)
    try:
        flat = [x for result in pool.map(_chunks(40, 5)) for x in result]
    finally:
        pool.close()
    assert crashed == [13]
    assert flat == [("crash" if x == 13 else x * x) for x in range(40)]


def test_memory_guard_turns_a_huge_allocation_into_memory_error():
    pool = LocalPoolExecutor(1, _noop, _allocates, on_crash=lambda item: "crash", memory_limit=1024 * 1024 * 1024)
    try:
        assert [x for result in pool.map([[1, 4096, 2]]) for x in result] == [1, "MemoryError", 2]
    finally:
        pool.close()


def _task(marker: str, n: int) -> int:
    """A dedup-step-like task: its worker dies the first time it runs task 5 (a kill, the OOM killer)."""
    if n == 5 and not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return n * 10


def _always_dies(n: int) -> int:
    if n == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return n


def test_run_gives_task_results_in_order_and_reruns_a_task_whose_worker_died(tmp_path):
    pool = LocalPoolExecutor(2, _noop, _square, on_crash=lambda item: None, window=3)
    try:
        marker = str(tmp_path / "died-once")
        assert list(pool.run(_task, [(marker, n) for n in range(12)])) == [n * 10 for n in range(12)]
        assert os.path.exists(marker)
        with pytest.raises(RuntimeError, match="killed its worker twice"):
            list(pool.run(_always_dies, [(n,) for n in range(4)]))
        assert list(pool.run(_task, [(marker, n) for n in range(3)])) == [0, 10, 20]  # the pool was renewed
    finally:
        pool.close()
    serial = SerialExecutor(_noop, _square)
    assert list(serial.run(_task, [(marker, n) for n in range(6)])) == [n * 10 for n in range(6)]
