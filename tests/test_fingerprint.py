"""A rerun with other settings than those that made the output (config, rules, library versions) is refused,
naming what changed, unless it starts over (--full) or accepts mixing (--accept-mixed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SEEDS_RAW

from pipeline.config import ConfigError, load_config
from pipeline.fingerprint import changes, settings_fingerprint
from pipeline.rules import load_rules
from pipeline.run.corpus import run_corpus

RULE = '[[rule]]\nid = "local.newsletter"\naction = "drop"\ndescription = "{description}"\nexact = ["{phrase}"]\n'


@pytest.fixture()
def raw(tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    raw.mkdir()
    for seed in sorted(SEEDS_RAW.glob("*.txt"))[:2]:
        (raw / seed.name).write_bytes(seed.read_bytes())
    return raw


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), "run", *args, "--workers", "1"],
                          capture_output=True, text=True, cwd=ROOT, env=os.environ)


def test_changed_clean_setting_is_refused_then_full_or_accept_mixed_go_on(raw: Path, tmp_path: Path):
    out = tmp_path / "out"
    assert run_corpus(raw, out, load_config(), workers=0, progress=False).exit_code == 0
    config = tmp_path / "pagewash.toml"
    config.write_text("[clean]\ngood_min_words = 10\n", encoding="utf-8")
    refused = run(str(raw), "-o", str(out), "--config", str(config))
    assert refused.returncode == 2, refused.stderr
    assert "config clean.good_min_words: 8 -> 10" in refused.stderr
    assert "--full" in refused.stderr and "--accept-mixed" in refused.stderr and "Traceback" not in refused.stderr
    history = subprocess.run([sys.executable, str(ROOT / "cli.py"), "stats", str(out), "--json"],
                             capture_output=True, text=True, cwd=ROOT)
    assert len(json.loads(history.stdout)["history"]) == 1  # a refused run leaves no trace in the history

    changed = load_config(config)
    mixed = run_corpus(raw, out, changed, workers=0, progress=False, accept_mixed=True)
    assert mixed.exit_code == 0 and mixed.report["settings_changed"] == ["config clean.good_min_words: 8 -> 10"]
    assert mixed.report["inputs"]["skipped"] == 2  # the earlier records are kept as they are
    # the new settings are now the output's
    assert run_corpus(raw, out, changed, workers=0, progress=False).report["settings_changed"] == []

    with pytest.raises(ConfigError):  # back to the defaults: a change again
        run_corpus(raw, out, load_config(), workers=0, progress=False)
    full = run_corpus(raw, out, load_config(), workers=0, progress=False, full=True)
    assert full.exit_code == 0 and full.report["inputs"]["new"] == 2
    assert full.report["settings_changed"] == ["config clean.good_min_words: 10 -> 8"]


def test_rule_changes_are_named_and_a_description_edit_is_not_one(raw: Path, tmp_path: Path):
    rules = tmp_path / "rules"
    rules.mkdir()
    out = tmp_path / "out"
    config = load_config()
    assert run_corpus(raw, out, config, workers=0, progress=False).exit_code == 0
    (rules / "local.toml").write_text(RULE.format(description="a", phrase="sign up"), encoding="utf-8")
    with_rules = load_config(rules_dirs=[str(rules)])
    with pytest.raises(ConfigError, match="rule local.newsletter: added"):
        run_corpus(raw, out, with_rules, workers=0, progress=False)
    assert run_corpus(raw, out, with_rules, workers=0, progress=False, accept_mixed=True).exit_code == 0
    (rules / "local.toml").write_text(RULE.format(description="reworded", phrase="sign up"), encoding="utf-8")
    assert run_corpus(raw, out, with_rules, workers=0, progress=False).exit_code == 0
    (rules / "local.toml").write_text(RULE.format(description="reworded", phrase="subscribe"), encoding="utf-8")
    with pytest.raises(ConfigError, match="rule local.newsletter: changed"):
        run_corpus(raw, out, with_rules, workers=0, progress=False)


def test_library_upgrade_is_a_change(raw: Path, tmp_path: Path, monkeypatch):
    from pipeline import fingerprint

    out = tmp_path / "out"
    assert run_corpus(raw, out, load_config(), workers=0, progress=False).exit_code == 0
    real = fingerprint._version
    monkeypatch.setattr(fingerprint, "_version",
                        lambda name: "99.0" if name == "trafilatura" else real(name))
    with pytest.raises(ConfigError, match=r"library trafilatura: \S+ -> 99.0"):
        run_corpus(raw, out, load_config(), workers=0, progress=False)


def test_a_change_of_pagewash_code_is_a_change(raw: Path, tmp_path: Path, monkeypatch):
    """The version number is not bumped for every change that alters records; the code's digest is."""
    from pipeline import fingerprint

    out = tmp_path / "out"
    assert run_corpus(raw, out, load_config(), workers=0, progress=False).exit_code == 0
    monkeypatch.setattr(fingerprint, "code_digest", lambda: "0123456789ab")
    with pytest.raises(ConfigError, match=r"pagewash code: \w{12} -> 0123456789ab"):
        run_corpus(raw, out, load_config(), workers=0, progress=False)


def test_full_records_the_new_settings_with_the_emptied_state(raw: Path, tmp_path: Path, monkeypatch):
    """The new fingerprint goes in with the emptied state, in one transaction: a --full run killed before
    that leaves the old records under the old settings, never under the new ones."""
    from pipeline.run.corpus import SETTINGS_KEY
    from pipeline.state import STATE_DIR, RunState

    out = tmp_path / "out"
    assert run_corpus(raw, out, load_config(), workers=0, progress=False).exit_code == 0

    class Killed(BaseException):
        pass

    def die(*args, **kwargs):
        raise Killed

    monkeypatch.setattr(RunState, "begin_run", die)  # between the check of the settings and the reset
    with pytest.raises(Killed):
        run_corpus(raw, out, load_config(language_seed=5), workers=0, progress=False, full=True)
    monkeypatch.undo()
    state = RunState(out / STATE_DIR)
    try:
        assert not state.is_empty()
        assert json.loads(state.setting(SETTINGS_KEY))["config language_seed"] == "0"
    finally:
        state.close()
    with pytest.raises(ConfigError):  # so the old records are still defended against the new settings
        run_corpus(raw, out, load_config(language_seed=5), workers=0, progress=False)


def test_what_only_changes_how_a_run_goes_is_not_a_change():
    rules = load_rules()
    base = settings_fingerprint(load_config(), rules)
    other = load_config(run={"workers": 3}, shard_pages=7, max_error_rate=0.5, extract_timeout=5.0, memory_limit_mb=0)
    assert settings_fingerprint(other, rules) == base
    assert changes(base, settings_fingerprint(load_config(max_input_bytes=10), rules)) == [
        "config max_input_bytes: 16777216 -> 10"]
    assert any(key.startswith("library trafilatura") for key in base) and "unicode" in base


def test_a_state_from_before_fingerprints_adopts_the_current_settings(raw: Path, tmp_path: Path):
    from pipeline.run.corpus import SETTINGS_KEY
    from pipeline.state import STATE_DIR, RunState

    out = tmp_path / "out"
    assert run_corpus(raw, out, load_config(), workers=0, progress=False).exit_code == 0
    state = RunState(out / STATE_DIR)
    with state.transaction() as db:
        db.execute("DELETE FROM settings WHERE key = ?", (SETTINGS_KEY,))
    state.close()
    config = load_config(language_seed=4)
    assert run_corpus(raw, out, config, workers=0, progress=False).exit_code == 0  # adopted, not refused
    with pytest.raises(ConfigError):
        run_corpus(raw, out, load_config(), workers=0, progress=False)


def test_only_full_clears_the_dedup_rounds(raw: Path, tmp_path: Path):
    """--full forgets every dedup round (none may be resumed or installed); recording a new fingerprint
    (a first run, --accept-mixed) leaves an interrupted run's round to be resumed."""
    from pipeline.dedup.tasks import ROUNDS
    from pipeline.state import STATE_DIR

    out = tmp_path / "out"
    assert run_corpus(raw, out, load_config(), workers=0, progress=False).exit_code == 0
    stale = out / STATE_DIR / ROUNDS / "round-stale"
    stale.mkdir(parents=True)
    mixed = run_corpus(raw, out, load_config(language_seed=3), workers=0, progress=False, accept_mixed=True)
    assert mixed.report["settings_changed"] and stale.is_dir()
    assert run_corpus(raw, out, load_config(), workers=0, progress=False, full=True).exit_code == 0
    assert not stale.exists()


def test_a_vocabulary_change_is_named(raw: Path, tmp_path: Path):
    """The header's words (rules/vocabulary.toml, a --rules folder's [vocabulary]) decide titles, bylines and
    dates: adding one is a change, named, like a rule's."""
    rules = tmp_path / "rules"
    rules.mkdir()
    out = tmp_path / "out"
    assert run_corpus(raw, out, load_config(), workers=0, progress=False).exit_code == 0
    (rules / "words.toml").write_text('[vocabulary]\nauthor_joiners = ["und"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="vocabulary author_joiners: changed"):
        run_corpus(raw, out, load_config(rules_dirs=[str(rules)]), workers=0, progress=False)


def test_the_code_digest_covers_the_sub_packages():
    """The dedup engine's modules (pipeline/dedup/) make records' content hashes: their code is in the digest."""
    from importlib import resources

    from pipeline import fingerprint

    names = [name for name, _module in fingerprint._modules(resources.files("pipeline"))]
    assert "dedup/minhash.py" in names and "stages/decode.py" in names and "executor/pool.py" in names
    assert not any("__pycache__" in name for name in names)
