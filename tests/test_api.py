"""The Python API (pipeline/api.py): a string in, the record `pagewash extract` prints out; a reusable, small
pickle of a Cleaner; the time limit's thread rule said, not hidden."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import threading

import pytest
from conftest import ARTICLE, ROOT, SEEDS_RAW

from pipeline import Cleaner, clean_html, clean_text
from pipeline.config import load_config
from pipeline.schema import FIELDS

SEED = sorted(SEEDS_RAW.glob("*.txt"))[0]
HTML = ("<html><head><title>Council Approves Harbour Plan</title></head><body><nav>Home | News</nav><article>"
        + "".join(f"<p>{line}</p>" for line in ARTICLE) + "</article></body></html>")


def _extract(path, *args: str) -> dict:
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000"}
    proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "extract", str(path), *args], capture_output=True,
                          text=True, env=env, check=True)
    return json.loads(proc.stdout)


def test_clean_text_gives_the_record_extract_prints(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    record = clean_text(SEED.read_text(encoding="utf-8"), url=None)
    printed = _extract(SEED)
    assert list(record) == [name for name, _t, _h in FIELDS]
    for r in (record, printed):
        r["metadata"].pop("source_path")
        r.pop("id")  # of the name: the file's name there, "page" here
    assert record == printed
    assert record["metadata"]["title"] and record["metadata"]["language"] == "en"


def test_clean_html_reads_markup_and_a_url_names_the_record():
    record = clean_html(HTML, url="https://example.com/harbour")
    assert record["metadata"]["source_format"] == "html" and "Home | News" not in record["text"]
    assert ARTICLE[1][:40] in record["text"]
    assert record["metadata"]["hostname"] == "example.com"
    sniffed = Cleaner().clean(HTML.encode("utf-8"), url="https://example.com/harbour")  # kind from the content
    assert sniffed["text"] == record["text"] and sniffed["id"] == record["id"]
    with pytest.raises(ValueError, match="kind must be one of"):
        Cleaner().clean("x", kind="pdf")


def test_pages_without_url_or_name_get_distinct_stable_ids():
    cleaner = Cleaner()
    one, two = SEED.read_text(encoding="utf-8"), sorted(SEEDS_RAW.glob("*.txt"))[1].read_text(encoding="utf-8")
    assert cleaner.clean_text(one)["id"] != cleaner.clean_text(two)["id"]
    assert cleaner.clean_text(one)["id"] == clean_text(one)["id"]


def test_a_page_without_an_article_is_a_record_with_its_reason():
    record = clean_text("Home\nAbout\nContact\n")
    assert record["metadata"]["filter_reason"] in ("no_article", "too_short")


def test_a_cleaner_is_reused_and_pickles_small_and_whole():
    cleaner = Cleaner(load_config(), source="crawl-1")
    first = cleaner.clean_text(SEED.read_bytes(), url="https://example.com/a")
    data = pickle.dumps(cleaner)
    assert len(data) < 200_000, len(data)  # the pipeline (models, stop lists: ~4.7 MB) is not in it
    again = pickle.loads(data).clean_text(SEED.read_bytes(), url="https://example.com/a")
    assert again["source"] == "crawl-1"
    assert {**again, "added": None, "metadata": {**again["metadata"], "processed_at": None}} == {
        **first, "added": None, "metadata": {**first["metadata"], "processed_at": None}}


def test_off_the_main_thread_the_time_limit_is_said_not_to_apply(caplog):
    cleaner = Cleaner()
    assert cleaner.time_limited
    found = {}

    def work():
        found["limited"] = cleaner.time_limited
        found["record"] = cleaner.clean_text(SEED.read_bytes())
        cleaner.clean_text(SEED.read_bytes())

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert found["limited"] is False and found["record"]["text"]
    assert caplog.text.count("extract_timeout") == 1  # said once per cleaner
