"""The golden run (tests/golden.py): `run` over a fixed corpus of real pages (HTML, both dump renderings, the
seeds, a JSONL export, a WARC) writes the records pinned in tests/golden/run_records.json, field by field."""

from __future__ import annotations

from golden import FIXTURE, differences, golden_run, load_fixture


def test_run_writes_the_pinned_records(tmp_path):
    expected = load_fixture()
    pages, got, _lines = golden_run(tmp_path)
    assert pages == expected["pages"]
    changed = differences(expected["records"], got)
    shown = "; ".join(f"{key}: {', '.join(what)}" for key, what in list(changed.items())[:10])
    assert not changed, (f"{len(changed)} of {len(got)} records differ from {FIXTURE.name} ({shown}). If the change "
                         "means it, look at `.venv/bin/python tests/golden.py --diff`, then `--update`.")
