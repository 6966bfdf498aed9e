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


def seed_names() -> list[str]:
    return sorted(p.stem for p in SEEDS_GOLD.glob("*.json"))


@pytest.fixture(scope="session")
def pipeline():
    from pipeline.config import load_config
    from pipeline.runner import Pipeline

    return Pipeline(load_config())


def load_gold(name: str) -> dict:
    return json.loads((SEEDS_GOLD / f"{name}.json").read_text(encoding="utf-8"))
