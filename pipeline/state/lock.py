"""The output folder's lock: one writer (`run`, `dedup`) at a time."""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..layout import LOCK_FILE


class LockBusy(RuntimeError):
    """Another run holds the output folder."""


@contextmanager
def run_lock(state_dir: Path, wait: bool = False) -> Iterator[None]:
    """An exclusive lock on the output folder (flock: released by the kernel when the holder dies).

    A flock belongs to the open file description, which forked children share: a process forked while it is
    held must close its copy (the pool's workers do), or it holds the lock for as long as it lives.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / LOCK_FILE
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            handle.seek(0)
            holder = handle.read().strip() or "another run"
            raise LockBusy(f"{state_dir.parent} is in use by {holder}") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


