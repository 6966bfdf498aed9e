"""The Ray executor (pagewash[ray], installed by `make test`): same output as the local pool, retried tasks."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from conftest import SEEDS_RAW, SHARED, shard_files

from pipeline.config import load_config
from pipeline.run.corpus import run_corpus

ray = pytest.importorskip("ray", reason="pagewash[ray] is installed by `make test`; this skip is for bare installs")

DEV_DUMPS = SHARED / "bench" / "wcxb-dev" / "dumps" / "bs4"


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    """One local Ray with 2 CPUs for the module (starting Ray costs seconds); runs join it."""
    import tempfile

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             _temp_dir=tempfile.mkdtemp(prefix="pw-ray-test-"))
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("ray") / "raw"
    raw.mkdir()
    for path in sorted(DEV_DUMPS.glob("*.txt.gz"))[100:124]:
        (raw / path.name).write_bytes(path.read_bytes())
    for seed in sorted(SEEDS_RAW.glob("*.txt")):
        (raw / seed.name).write_bytes(seed.read_bytes())
    (raw / "copy.txt.gz").write_bytes(gzip.compress((SEEDS_RAW / "002_b241d0af29c2cc30.txt").read_bytes()))
    (raw / "binary.txt").write_bytes(bytes(range(256)) * 8)
    return raw


def outputs(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes()
            for stream in ("documents", "duplicates", "rejects") for p in shard_files(out / stream)}


def test_ray_output_is_byte_identical_to_the_local_pool(raw: Path, tmp_path: Path, monkeypatch):
    """The local runs go first: a process pool must not fork a process in which Ray is running."""
    assert not ray.is_initialized()
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1760000000")
    config = load_config(max_error_rate=0.5)
    import dataclasses

    config = dataclasses.replace(config, shard_pages=7)
    results = {}
    for name, kwargs in {"local1": {"workers": 1}, "local2": {"workers": 2},
                         "ray": {"workers": 2, "executor": "ray"}}.items():
        run = run_corpus(raw, tmp_path / name, config, progress=False, **kwargs)
        assert run.exit_code == 0
        results[name] = outputs(tmp_path / name)
    assert not ray.is_initialized()  # the run started its own local Ray and shut it down
    assert results["ray"] == results["local1"] == results["local2"]
    assert any(key.startswith("duplicates/") for key in results["ray"])
    assert any(key.startswith("rejects/") for key in results["ray"])


def _fails_once(marker: str):
    """Work and init functions built here are pickled by value: Ray workers cannot import test modules."""

    def work(chunk: list) -> list:
        path = Path(marker)
        if 7 in chunk and not path.exists():
            path.write_text("failed once")
            raise RuntimeError("a worker hiccup")
        return [x * 10 for x in chunk]

    return work


def _factory(work):
    """An executor's factory whose workers are the plain function `work`."""
    return lambda: work


def test_a_task_that_fails_once_is_retried(tmp_path: Path, local_ray):
    from pipeline.executor import RayExecutor

    executor = RayExecutor(_factory(_fails_once(str(tmp_path / "marker"))), on_crash=lambda item: "crash")
    try:
        flat = [x for result in executor.map([[n, n + 1] for n in range(0, 20, 2)]) for x in result]
    finally:
        executor.close()
    assert flat == [x * 10 for x in range(20)]
    assert (tmp_path / "marker").exists()  # it did fail, and the retry gave the same result


def test_an_item_that_always_fails_becomes_on_crash(tmp_path: Path, local_ray):
    from pipeline.executor import RayExecutor

    def work(chunk: list) -> list:
        if 3 in chunk:
            raise RuntimeError("always")
        return chunk

    executor = RayExecutor(_factory(work), on_crash=lambda item: f"crash {item}", max_retries=1)
    try:
        flat = [x for result in executor.map([[0, 1], [2, 3], [4, 5]]) for x in result]
    finally:
        executor.close()
    assert flat == [0, 1, 2, "crash 3", 4, 5]


def _step_fails_once():
    """Built here so that it is pickled by value (see `_fails_once`)."""

    def step(marker: str, n: int) -> int:
        path = Path(marker)
        if n == 3 and not path.exists():
            path.write_text("failed once")
            raise RuntimeError("a worker hiccup")
        return n + 100

    return step


def test_a_dedup_step_task_that_fails_once_is_retried(tmp_path: Path, local_ray):
    from pipeline.executor import RayExecutor

    executor = RayExecutor(_factory(_fails_once(str(tmp_path / "unused"))), on_crash=lambda item: "crash")
    try:
        marker = str(tmp_path / "marker")
        assert list(executor.run(_step_fails_once(), [(marker, n) for n in range(8)])) == [n + 100 for n in range(8)]
    finally:
        executor.close()
    assert (tmp_path / "marker").exists()
