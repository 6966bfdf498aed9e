"""Kills and hard limits (pipeline/executor.py): a driver SIGKILLed alone, as the OOM killer picks one process,
leaves no worker and no held lock behind; a page stuck in C code is killed at its deadline; a timed-out page
leaves an excerpt in its reject, not the input."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ARTICLE, ROOT, shard_files
from test_batch import EPOCH, corpus, lines, small_shards  # noqa: F401 - the whole-run tests' corpus and config

from pipeline.config import load_config
from pipeline.document import RawPage
from pipeline.stages.runner import REJECT_TEXT_CHARS, Pipeline
from pipeline.state import STATE_DIR


def _session(sid: int) -> list[int]:
    """The live (not zombie) processes of session `sid`: a run started with start_new_session, its workers."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text(encoding="ascii")
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()  # state, ppid, pgrp, session, ...
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append(int(name))
    return found


def _gone_within(sid: int, seconds: float) -> list[int]:
    """The processes of session `sid` still alive after `seconds` (or as soon as none is)."""
    deadline = time.monotonic() + seconds
    while (alive := _session(sid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


def _kill_all(sid: int) -> None:
    for pid in _session(sid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _under_way(out: Path) -> bool:
    """A run has committed its first shard (so it holds the lock and its workers are busy)."""
    return any((out / STATE_DIR / "staged").glob("part-*.jsonl")) or any(shard_files(out / "rejects"))


@pytest.fixture(scope="module")
def big_corpus(corpus: Path, tmp_path_factory) -> Path:  # noqa: F811 - the fixture imported above
    """The whole-run corpus and a few pages whose results are larger than a pipe's buffer (64 kB), so that a
    worker may be blocked writing one into the result pipe when the driver dies."""
    raw = tmp_path_factory.mktemp("big") / "raw"
    shutil.copytree(corpus, raw)
    for n in range(6):
        paragraphs = [f"{ARTICLE[i % len(ARTICLE)]} Paragraph {i} of report {n}." for i in range(1500)]
        (raw / f"big_{n}.txt").write_text("\n\n".join(paragraphs), encoding="utf-8")
    return raw


@pytest.fixture(scope="module")
def big_reference(big_corpus: Path, small_shards: Path, tmp_path_factory) -> Path:  # noqa: F811
    out = tmp_path_factory.mktemp("big_reference") / "out"
    proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "run", str(big_corpus), "-o", str(out), "--config",
                           str(small_shards), "--workers", "2"], cwd=ROOT, env={**os.environ, **EPOCH},
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_sigkill_of_the_driver_alone_leaves_no_process_and_no_lock(big_corpus: Path, small_shards: Path,  # noqa: F811
                                                                   big_reference: Path, tmp_path: Path, seed: int):
    """Twice: the driver alone is killed at a random moment once its first shard is in, first after being
    stopped for a second (its workers then block writing large results nobody reads); none of its processes
    may outlive it, and the next run must start at once (not exit 75) and finally give the uninterrupted
    output."""
    rng = random.Random(seed)
    out = tmp_path / "out"
    args = [sys.executable, str(ROOT / "cli.py"), "run", str(big_corpus), "-o", str(out), "--config",
            str(small_shards), "--workers", "2"]
    for stopped_first in (True, False):  # the stopped kill first, while the run has the most work in hand
        proc = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **EPOCH}, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while proc.poll() is None and not _under_way(out) and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.4))
            # under way, not refused with 75 by a lock left behind; the second, resuming the first, may be done
            assert proc.poll() is None if stopped_first else proc.poll() in (None, 0)
            if stopped_first:
                proc.send_signal(signal.SIGSTOP)
                time.sleep(1.0)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            survivors = _gone_within(proc.pid, 10)
            assert not survivors, f"processes of the killed run still alive: {survivors}"
        finally:
            _kill_all(proc.pid)  # leave nothing running if the test failed
    final = subprocess.run(args, cwd=ROOT, env={**os.environ, **EPOCH}, capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    assert lines(out) == lines(big_reference)


_STALLING_RUN = """
import hashlib, sys
from pathlib import Path
from pipeline.stages.decode import Decode
from pipeline.run.corpus import run_corpus
from pipeline.config import load_config

decode = Decode.process

def stalling(self, doc):
    if b"STALL" in doc.page.data:  # minutes in one C call: the soft limit's signal handler cannot run meanwhile
        hashlib.pbkdf2_hmac("sha256", b"pagewash", b"salt", 10**9)
    return decode(self, doc)

Decode.process = stalling  # before the pool forks, so its workers run it
config = load_config(extract_timeout=1, max_error_rate=1.0)
sys.exit(run_corpus(Path(sys.argv[1]), Path(sys.argv[2]), config, workers=2, progress=False).exit_code)
"""


def test_a_page_stuck_in_c_code_becomes_a_timeout_reject_at_its_deadline(tmp_path: Path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for n in range(6):
        (raw / f"page_{n}.txt").write_text(f"Report {n}\n\n" + "\n\n".join(ARTICLE[n % 5:] + ARTICLE[:n % 5]),
                                           encoding="utf-8")
    (raw / "page_3_stall.txt").write_text("STALL\n\n" + "\n\n".join(ARTICLE), encoding="utf-8")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", _STALLING_RUN, str(raw), str(out)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=45)  # the stalled page alone needs minutes; its limit is 1 s
    except subprocess.TimeoutExpired:
        pytest.fail("the run went on past the page's time limit")
    finally:
        _kill_all(proc.pid)
    assert proc.returncode == 0, err
    rejects = [json.loads(line) for line in lines(out)["rejects"].elements()]
    assert [(Path(r["metadata"]["source_path"]).name, r["metadata"]["filter_reason"]) for r in rejects] == [
        ("page_3_stall.txt", "timeout")]
    assert "extract_timeout = 1" in rejects[0]["metadata"]["filter_detail"]
    kept = [json.loads(line) for stream in ("documents", "duplicates") for line in lines(out)[stream].elements()]
    assert sorted(Path(r["metadata"]["source_path"]).name for r in kept) == [f"page_{n}.txt" for n in range(6)]


def test_a_timed_out_page_leaves_an_excerpt_not_the_input():
    """A page over its (soft) limit used to carry its whole decoded input (13.5 MB seen) as the reject's text."""
    huge = "<html><body>" + "<div><p>" + "<span>word</span> " * 200_000 + "</p></div></body></html>"
    outcome = Pipeline(load_config(extract_timeout=0.2)).process(RawPage("raw/slow.html", "slow.html", huge.encode()))
    assert outcome.reject_reason == "timeout"
    assert len(outcome.document.text) == REJECT_TEXT_CHARS and huge.startswith(outcome.document.text)
    assert outcome.document.metadata["text_chars"] == len(huge)
