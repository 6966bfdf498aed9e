"""What one run is asked to do (`RunContext`, frozen, built once by `run_corpus`), where its per-page work runs
(`Engine`), and how it answers SIGINT/SIGTERM."""

from __future__ import annotations

import fnmatch
import logging
import signal
from dataclasses import dataclass
from pathlib import Path

from ..config import Config
from ..io.store import Store
from ..rules import RuleSet

log = logging.getLogger("pagewash")


@dataclass(frozen=True)
class Engine:
    """Where the per-page work runs: `local` (a process pool of `workers`; 0 = in this process) or `ray`
    (Ray core tasks on the cluster at `address`, or on a local Ray with `workers` CPUs)."""

    kind: str = "local"
    workers: int = 0
    address: str | None = None


@dataclass(frozen=True)
class Selection:
    """Which inputs a run takes: keys matching one of `globs` (all when none) and none of `excludes`
    (fnmatch patterns on the path under RAW), and at most `limit` pages (0: all). A selective run never takes
    the inputs it leaves out for deleted: their records stay."""

    globs: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    limit: int = 0

    @property
    def partial(self) -> bool:
        return bool(self.globs or self.excludes or self.limit)

    def takes(self, key: str) -> bool:
        return (not self.globs or any(fnmatch.fnmatch(key, g) for g in self.globs)) and not any(
            fnmatch.fnmatch(key, x) for x in self.excludes)


@dataclass(frozen=True)
class RunContext:
    """What one run is asked to do, built once by `run_corpus` (from the CLI's arguments) and only read after:
    by the run, and, its config, rules and stamp, by its workers."""

    raw: Path  # the input folder (or file)
    store: Store  # the output's record streams and report
    state_dir: Path  # the output's state (local)
    config: Config
    rules: RuleSet
    engine: Engine
    stamp: str  # processed_at of every record of the run
    started: float  # time.time() at the start
    progress: bool  # a progress bar on stderr
    full: bool  # --full: reprocess every input
    accept_mixed: bool  # --accept-mixed: keep earlier records made with other settings
    source: str  # the records' `source` (--source; default the input folder's name)
    select: Selection = Selection()  # --glob, --exclude, --limit
    heartbeat: float = 0.0  # seconds between progress lines on stderr when no bar is shown (0: none)


class StoppedAtOnce(BaseException):
    """A second SIGINT/SIGTERM: the run stops where it is (as safe as a kill: the next run goes on)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Stop:
    """SIGINT/SIGTERM: the first asks the run to finish the shard in hand; a second one stops at once."""

    def __init__(self) -> None:
        self.signum = 0
        self._previous: dict = {}

    def __enter__(self) -> Stop:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame) -> None:
        if self.signum:
            raise StoppedAtOnce(signum)
        self.signum = signum
        log.warning("%s: finishing the shard in hand, then stopping (again to stop at once)",
                    signal.Signals(signum).name)

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
