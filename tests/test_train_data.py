"""bench/train_data.py: line labels by alignment to the gold, determinism, the line oracle (bs4 only: the
renderers of the `train` extra are not needed here)."""

from __future__ import annotations

import gzip
import importlib.util
import json
import sys

import pytest
from conftest import ARTICLE, ROOT

from pipeline.evaluate import word_f1

_SPEC = importlib.util.spec_from_file_location("train_data", ROOT / "bench" / "train_data.py")
train_data = importlib.util.module_from_spec(_SPEC)
sys.modules["train_data"] = train_data
_SPEC.loader.exec_module(train_data)

TITLE = "Harbour plan approved after two years of debate"
MENU = ["Home", "News", "Sport", "Contact us"]
HTML = (
    f"<html><head><title>{TITLE} | Daily Paper</title><script>var x = 1;</script></head><body>"
    "<nav><ul>" + "".join(f"<li><a href='#'>{m}</a></li>" for m in MENU) + "</ul></nav>"
    f"<article><h1>{TITLE}</h1><p class=byline>By Jane Doe</p><p class=date>March 3, 2024</p>"
    + "".join(f"<p>{p}</p>" for p in ARTICLE)
    + "<p>Readers told the news desk they would follow the story.</p>"
    "</article><footer><p>Copyright 2024 Daily Paper. All rights reserved.</p>"
    "<p>Share this on social media</p></footer></body></html>"
)
GOLD = {
    "title": TITLE, "author": "Jane Doe", "date": "2024-03-03",
    "text": "\n\n".join(ARTICLE + ["Readers told the news desk they would follow the story."]),
}


def _labelled(habits):
    lines = train_data.apply_habits(train_data.render_bs4(HTML, habits), habits)
    return lines, train_data.label_lines(lines, GOLD)


def _by_text(lines, labels):
    return {line.strip(): label for line, (label, _in_gold) in zip(lines, labels, strict=True)}


def test_labels_of_a_synthetic_page():
    lines, labels = _labelled(train_data.Habits("", "keep", 0))
    by_text = _by_text(lines, labels)
    for paragraph in ARTICLE:
        assert by_text[paragraph] == "body"
    for item in MENU:  # "news" is in the article too: a lone menu word does not align
        assert by_text[item] == "boilerplate"
    assert by_text["Copyright 2024 Daily Paper. All rights reserved."] == "boilerplate"
    assert by_text[TITLE] == "title"
    assert by_text[f"{TITLE} | Daily Paper"] == "title"
    assert by_text["By Jane Doe"] == "author"
    assert by_text["March 3, 2024"] == "date"
    assert "var x = 1;" not in by_text


def test_only_the_first_title_lines_are_titles():
    """A one-word title is in many lines of a documentation page: the <title> and the headline are titles."""
    lines = ["pacman | Wiki", "Home", "pacman", "Run pacman to install.", "pacman", "Use pacman -Syu"]
    labels = [label for label, _in_gold in train_data.label_lines(lines, {"title": "pacman", "text": "x"})]
    assert labels == ["title", "boilerplate", "title", "boilerplate", "boilerplate", "boilerplate"]


def test_pieces_of_a_wrapped_paragraph_are_all_body():
    lines, labels = _labelled(train_data.Habits("* ", "none", 40))
    by_text = _by_text(lines, labels)
    pieces = [line for line in lines if line in ARTICLE[0] and len(line.split()) > 2]
    assert len(pieces) >= 4
    assert all(by_text[line] == "body" for line in pieces)
    assert by_text["Harbour plan approved after two years of"] == by_text["debate"] == "title"
    assert by_text["* Home"] == "boilerplate"


def test_blocks_in_another_order_than_the_gold_are_body():
    """A table column or floated box rendered before the text the gold puts first still aligns."""
    lines = ["Home", ARTICLE[3], "News", ARTICLE[0], ARTICLE[1], "Contact us"]
    gold = {"text": "\n\n".join(ARTICLE[:2] + ARTICLE[3:4])}
    labels = [label for label, _in_gold in train_data.label_lines(lines, gold)]
    assert labels == ["boilerplate", "body", "boilerplate", "body", "body", "boilerplate"]


def test_oracle_of_a_perfect_labelling_scores_one():
    lines, labels = _labelled(train_data.Habits("", "keep", 0))
    record = [[line, label, int(in_gold)] for line, (label, in_gold) in zip(lines, labels, strict=True)]
    assert word_f1(train_data.oracle_text(record), GOLD["text"]).f1 == 1.0


def _corpus(tmp_path):
    """A shared/ of two train pages (one in windows-1252) and one wcxb-dev page."""
    train, dev = tmp_path / "bench" / "train", tmp_path / "bench" / "wcxb-dev"
    for folder in (train / "gold", train / "html", dev / "gold", dev / "html"):
        folder.mkdir(parents=True)
    for page_id, source, encoding in (("dragnet-1", "dragnet", "windows-1252"), ("wcxb-list-1", "wcxb", "utf-8")):
        html = HTML.replace("Jane Doe", "Jane Doé")
        meta = {"html_is_utf8": encoding == "utf-8", "declared_charset": encoding}
        gold = {"id": page_id, "source": source, "url": "https://www.example.org/a", "text": GOLD["text"],
                "meta": meta}
        (train / "gold" / f"{page_id}.json").write_text(json.dumps(gold))
        (train / "html" / f"{page_id}.html.gz").write_bytes(gzip.compress(html.encode(encoding)))
    (dev / "gold" / "0001.json").write_text(json.dumps(dict(GOLD, domain="example.com")))
    (dev / "html" / "0001.html.gz").write_bytes(gzip.compress(HTML.encode()))
    return tmp_path


def test_same_inputs_same_bytes_and_a_perfect_oracle(tmp_path):
    shared = _corpus(tmp_path)
    rows = train_data.build(shared, tmp_path / "a", ["bs4"])
    train_data.build(shared, tmp_path / "b", ["bs4"])
    for name in ("bs4.jsonl.gz", "quality.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert [(r["source"], r["pages"], r["f1"]) for r in rows] == [
        ("dragnet", 1, 1.0), ("wcxb", 1, 1.0), ("wcxb-dev", 1, 1.0)]
    records = [json.loads(line) for line in gzip.open(tmp_path / "a" / "bs4.jsonl.gz", "rt", encoding="utf-8")]
    assert [(r["id"], r["domain"]) for r in records] == [
        ("dragnet-1", "example.org"), ("wcxb-list-1", "example.org"), ("wcxb-dev-0001", "example.com")]
    assert any(line[0].strip() == "By Jane Doé" for line in records[0]["lines"])  # decoded as declared


def test_source_selection(tmp_path):
    shared = _corpus(tmp_path)
    assert [p.id for p in train_data.iter_pages(shared, ["wcxb"])] == ["wcxb-list-1", "wcxb-dev-0001"]
    assert [p.id for p in train_data.iter_pages(shared, ["dragnet"])] == ["dragnet-1"]


def test_a_missing_extra_is_named(monkeypatch):
    monkeypatch.setitem(train_data._EXTRA, "inscriptis", "no_such_module_for_pagewash")
    with pytest.raises(SystemExit, match="optional extra `train`"):
        train_data._check_extras(["bs4", "inscriptis"])
