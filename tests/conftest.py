"""Shared fixtures: the seed dumps and their gold live in ../shared (read in place, never copied)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PAGEWASH_SHARED", ROOT.parent / "shared"))
SEEDS_RAW = SHARED / "seeds" / "raw"
SEEDS_GOLD = SHARED / "seeds" / "gold"


# A synthetic news article shared by the stage tests.
ARTICLE = [
    "The city council voted on Tuesday to approve a new plan for the old harbour district, ending a debate "
    "that had lasted for more than two years and divided residents along familiar lines.",
    "Supporters of the plan argue that the district has been neglected for decades and that the new housing, "
    "parks and workshops will bring people and jobs back to an area that many have simply given up on.",
    "Critics, however, say that the council has not explained how the work will be paid for, and they worry "
    "that rents in the surrounding streets will rise faster than the wages of the families who live there now.",
    "The mayor said in a statement that the first phase of the work would begin in the spring, and that the "
    "council would publish a detailed budget before the end of the year so that residents could follow it.",
    "Local business owners were cautiously optimistic, telling reporters that they would wait to see whether "
    "the promised improvements actually arrive before they decide to invest any of their own money there.",
]


def shard_files(folder: Path) -> list[Path]:
    """The shard files of one stream folder of an output, in any format (`part-000001.jsonl.gz`), in order."""
    from pipeline.io.formats import format_of

    return sorted(p for p in folder.glob("part-*") if format_of(p.name))


def shard_lines(path: Path) -> list[str]:
    """The JSON lines of a shard file (without their newlines), whatever its format."""
    from pipeline.io.formats import decode, format_of

    with open(path, "rb") as handle:
        return [line.rstrip("\n") for line in decode(handle, format_of(path.name) or "jsonl")]


def shard_text(path: Path) -> str:
    """The JSON lines of the shard `path` names by its logical name (`OUT/documents/part-000001.jsonl`), in
    whichever format it was written."""
    from pipeline.io.formats import variants

    for name in variants(path.name):
        if (path.parent / name).is_file():
            return "".join(line + "\n" for line in shard_lines(path.parent / name))
    raise FileNotFoundError(path)


def shard_exists(path: Path) -> bool:
    """A shard named by its logical name exists, in any format."""
    from pipeline.io.formats import variants

    return any((path.parent / name).is_file() for name in variants(path.name))


def stream_records(folder: Path) -> list[dict]:
    """Every record of one stream folder of an output, shard by shard."""
    return [json.loads(line) for path in shard_files(folder) for line in shard_lines(path)]


def seed_corpus(folder: Path) -> Path:
    """A small corpus in `folder` (made): the five seed dumps, a copy of the first (a duplicate) and a binary file
    (a reject), so that every stream gets records."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    seeds = sorted(SEEDS_RAW.glob("*.txt"))
    for seed in seeds:
        shutil.copy(seed, folder / seed.name)
    shutil.copy(seeds[0], folder / "copy.txt")
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 8)
    return folder


def seed_names() -> list[str]:
    return sorted(p.stem for p in SEEDS_GOLD.glob("*.json"))


@pytest.fixture(scope="session")
def pipeline():
    from pipeline.config import load_config
    from pipeline.stages.runner import Pipeline

    return Pipeline(load_config())


def load_gold(name: str) -> dict:
    return json.loads((SEEDS_GOLD / f"{name}.json").read_text(encoding="utf-8"))


def decide(items, cfg=None, kept=(), workers: int = 0):
    """The dedup engine's decisions (`pipeline.dedup.Decision`, in input order) for `items`
    (`pipeline.dedup.DedupItem`s: signatures, sizes, dates; no text needed), against an index already holding
    `kept`: one shard staged as a run stages it, then one round of the four steps (dedup.driver.run_round)."""
    import tempfile

    from pipeline.config import DedupConfig
    from pipeline.dedup import Decision, DedupIndex
    from pipeline.dedup.driver import run_round, steps_executor
    from pipeline.dedup.tasks import STAGED
    from pipeline.io.store import LocalStore
    from pipeline.state import STATE_DIR, RunState

    cfg = cfg or DedupConfig()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        state_dir = out / STATE_DIR
        state = RunState(state_dir)
        try:
            index = DedupIndex(state.db, cfg)  # its schema first: executescript commits
            if kept:
                with state.transaction():
                    index.stage(list(kept), [Decision(it.id, None, None, it.id) for it in kept])
            staged = state_dir / STAGED / "part-000000.jsonl"
            staged.parent.mkdir(parents=True, exist_ok=True)
            staged.write_text("".join(json.dumps({"id": it.id, "text": "", "metadata": {"n": k}}) + "\n"
                                      for k, it in enumerate(items)), encoding="utf-8")
            pending = [(it.id, "in", 0, k, it.text_len, it.date, it.exact, it.sig, it.shingles)
                       for k, it in enumerate(items)]
            state.commit_shard(0, 1, "staged", {STAGED: len(items)}, [], [(it.id, "in", "documents") for it in items],
                               pending)
            executor = steps_executor(workers, state_dir)
            try:
                run_round(state, state_dir, LocalStore(out), cfg, executor)
            finally:
                executor.close()
        finally:
            state.close()
        records = [json.loads(line) for stream in ("documents", "duplicates")
                   for path in [out / stream / "part-000000.jsonl"] if path.exists()
                   for line in path.read_text(encoding="utf-8").splitlines()]
    records.sort(key=lambda r: r["metadata"]["n"])
    return [Decision(r["id"], r["metadata"]["duplicate_of"], r["metadata"]["similarity"], r["metadata"]["dup_cluster"],
                     r["metadata"]["superseded_by"]) for r in records]
