"""The executors: results in input order whatever the workers, a crashing item isolated, the memory guard,
an item stuck in C code killed at its deadline, the driver's lock not held by workers."""

from __future__ import annotations

import hashlib
import os
import signal
import time

import pytest

from pipeline.executor import LocalPoolExecutor, SerialExecutor
from pipeline.state import LOCK_FILE, run_lock


def _factory(work):
    """An executor's factory whose workers are the plain function `work`."""
    return lambda: work


def _square(chunk: list) -> list:
    return [x * x for x in chunk]


def _dies_on_13(chunk: list) -> list:
    if 13 in chunk:
        os.kill(os.getpid(), signal.SIGKILL)  # a segfault in C code, the OOM killer
    return [x * x for x in chunk]


def _stalls_in_c(x: int) -> int:
    if x == 13:  # a minute or more in one C call: no Python signal handler (the soft time limit) runs meanwhile
        hashlib.pbkdf2_hmac("sha256", b"pagewash", b"salt", 100_000_000)
    return x * x


def _stalls_on_13(chunk) -> list:
    return [_stalls_in_c(x) for x in chunk]


def _dies_on_3(x: int) -> int:
    if x == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return _stalls_in_c(x)


def _dies_on_3_stalls_on_13(chunk) -> list:
    return [_dies_on_3(x) for x in chunk]


def _holds_file(chunk) -> list:
    """For each path, whether this worker has a descriptor open on it."""
    mine = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            found = os.fstat(int(name))
        except OSError:
            continue
        mine.add((found.st_dev, found.st_ino))
    return [(os.stat(path).st_dev, os.stat(path).st_ino) in mine for path in chunk]


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
    pool = LocalPoolExecutor(workers, _factory(_square), on_crash=lambda item: None, window=3)
    try:
        flat = [x for result in pool.map(iter(_chunks(200, 7))) for x in result]
    finally:
        pool.close()
    assert flat == [x * x for x in range(200)]
    serial = SerialExecutor(_factory(_square))
    assert [x for result in serial.map(_chunks(200, 7)) for x in result] == flat


def test_a_crashing_item_is_isolated_and_the_rest_completes():
    crashed = []

    def on_crash(item):
        crashed.append(item)
        return "crash"

    pool = LocalPoolExecutor(2, _factory(_dies_on_13), on_crash=on_crash, window=4)
    try:
        flat = [x for result in pool.map(_chunks(40, 5)) for x in result]
    finally:
        pool.close()
    assert crashed == [13]
    assert flat == [("crash" if x == 13 else x * x) for x in range(40)]


def test_an_item_stuck_in_c_code_is_killed_at_its_deadline():
    timed_out, crashed = [], []

    def on_timeout(item):
        timed_out.append(item)
        return "timeout"

    def on_crash(item):
        crashed.append(item)
        return "crash"

    pool = LocalPoolExecutor(2, _factory(_stalls_on_13), on_crash=on_crash, window=4, page_limit=1.0,
                             on_timeout=on_timeout)
    started = time.monotonic()
    try:
        flat = [x for result in pool.map(_chunks(40, 5)) for x in result]
    finally:
        pool.close()
    assert time.monotonic() - started < 20  # 1 s + the grace, generously: not the minute the item needs
    assert timed_out == [13] and crashed == []
    assert flat == [("timeout" if x == 13 else x * x) for x in range(40)]


def test_an_item_stuck_while_items_run_alone_after_a_crash_is_a_timeout_not_a_crash():
    pool = LocalPoolExecutor(2, _factory(_dies_on_3_stalls_on_13), on_crash=lambda item: "crash", window=4,
                             page_limit=1.0, on_timeout=lambda item: "timeout")
    try:
        flat = [x for result in pool.map(_chunks(20, 10)) for x in result]  # 3 and 13 in flight together
    finally:
        pool.close()
    assert flat == [{3: "crash", 13: "timeout"}.get(x, x * x) for x in range(20)]


def test_workers_do_not_hold_the_drivers_lock(tmp_path):
    """A flock is shared with forked children: workers close their copy, so only the driver holds it."""
    state = tmp_path / "_state"
    with run_lock(state):
        lock = str(state / LOCK_FILE)
        pool = LocalPoolExecutor(2, _factory(_holds_file), on_crash=lambda item: None, private_files=[lock])
        plain = LocalPoolExecutor(1, _factory(_holds_file), on_crash=lambda item: None)
        try:
            assert [x for result in pool.map([[lock]] * 4) for x in result] == [False] * 4
            assert [x for result in plain.map([[lock]]) for x in result] == [True]  # what the check sees otherwise
        finally:
            pool.close()
            plain.close()


def test_memory_guard_turns_a_huge_allocation_into_memory_error():
    pool = LocalPoolExecutor(1, _factory(_allocates), on_crash=lambda item: "crash", memory_limit=1024 * 1024 * 1024)
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
    pool = LocalPoolExecutor(2, _factory(_square), on_crash=lambda item: None, window=3)
    try:
        marker = str(tmp_path / "died-once")
        assert list(pool.run(_task, [(marker, n) for n in range(12)])) == [n * 10 for n in range(12)]
        assert os.path.exists(marker)
        with pytest.raises(RuntimeError, match="killed its worker twice"):
            list(pool.run(_always_dies, [(n,) for n in range(4)]))
        assert list(pool.run(_task, [(marker, n) for n in range(3)])) == [0, 10, 20]  # the pool was renewed
    finally:
        pool.close()
    serial = SerialExecutor(_factory(_square))
    assert list(serial.run(_task, [(marker, n) for n in range(6)])) == [n * 10 for n in range(6)]
