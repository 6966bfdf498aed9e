"""Golden tests: `pagewash extract` on each seed dump against ../shared/seeds/gold."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT, SEEDS_GOLD, SEEDS_RAW, load_gold, seed_names

from pipeline.evaluate import fold, word_f1

SEEDS = seed_names()


def test_seeds_are_there():
    assert len(SEEDS) == 5, f"expected the five seed gold files in {SEEDS_GOLD}"


@pytest.fixture(scope="module", params=["heuristic", "model"])
def extracted(request, tmp_path_factory) -> dict[str, dict]:
    """Each seed through the real CLI, once a cleaner: `python cli.py extract FILE`, the default (heuristic) cleaner
    and the learned one (`[clean] method = "model"`, the packaged model): both pass the seeds' gold."""
    options = []
    if request.param != "heuristic":
        config = tmp_path_factory.mktemp("config") / "pagewash.toml"
        config.write_text(f'[clean]\nmethod = "{request.param}"\n', encoding="utf-8")
        options = ["--config", str(config)]
    records = {}
    for name in SEEDS:
        proc = subprocess.run(
            [sys.executable, str(ROOT / "cli.py"), "extract", *options, str(SEEDS_RAW / f"{name}.txt")],
            capture_output=True, text=True, check=True, cwd=ROOT,
        )
        records[name] = json.loads(proc.stdout)
    return records


@pytest.mark.parametrize("name", SEEDS)
@pytest.mark.parametrize("field,gold_key", [
    ("title", "title"), ("author", "author"), ("date", "published"), ("sitename", "site"), ("language", "language"),
])
def test_metadata_matches_gold(extracted, name, field, gold_key):
    gold = load_gold(name)
    assert fold(extracted[name]["metadata"].get(field)) == fold(gold[gold_key])


@pytest.mark.parametrize("name", SEEDS)
def test_text_word_f1(extracted, name):
    score = word_f1(extracted[name]["text"], load_gold(name)["text"])
    assert score.f1 >= 0.97, f"{name}: P={score.precision:.3f} R={score.recall:.3f} F1={score.f1:.3f}"


@pytest.mark.parametrize("name", SEEDS)
def test_boilerplate_strings_are_gone(extracted, name):
    text = extracted[name]["text"]
    for snippet in load_gold(name)["must_not_contain"]:
        assert snippet not in text, f"{name}: {snippet!r} survived"


@pytest.mark.parametrize("name", SEEDS)
def test_boilerplate_lines_are_gone(extracted, name):
    lines = {line.strip() for line in extracted[name]["text"].split("\n")}
    for line in load_gold(name)["must_not_have_lines"]:
        assert line not in lines, f"{name}: line {line!r} survived"


@pytest.mark.parametrize("name", SEEDS)
def test_every_drop_names_its_rule(pipeline, name):
    from pipeline.document import RawPage

    path = SEEDS_RAW / f"{name}.txt"
    outcome = pipeline.process(RawPage(str(path), path.name, path.read_bytes()))
    dropped = [v for v in outcome.document.lines.verdicts if not v.kept and v.label != "blank"]
    assert all(v.rule_id for v in dropped)
    rules_hit = outcome.document.metadata["cleaning"]["rules_hit"]
    assert sum(hit["lines"] for hit in rules_hit) == len(dropped)
    assert sum(hit["words"] for hit in rules_hit) == sum(len(v.text.split()) for v in dropped)
    assert [hit["rule"] for hit in rules_hit] == sorted({v.rule_id for v in dropped})
