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


def seed_names() -> list[str]:
    return sorted(p.stem for p in SEEDS_GOLD.glob("*.json"))


@pytest.fixture(scope="session")
def pipeline():
    from pipeline.config import load_config
    from pipeline.runner import Pipeline

    return Pipeline(load_config())


def load_gold(name: str) -> dict:
    return json.loads((SEEDS_GOLD / f"{name}.json").read_text(encoding="utf-8"))
