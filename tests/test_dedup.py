"""Near-duplicate dedup: syndicated copies of the seed stories cluster with them, different stories on the
same event stay apart, the index persists and only grows by kept documents, and everything is deterministic."""

from __future__ import annotations

import dataclasses
import json
import random
import re
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, SEEDS_GOLD, SHARED, decide, seed_names, shard_exists, shard_files, shard_lines, shard_text
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import ConfigError, DedupConfig, load_config
from pipeline.dedup import (
    Decision,
    DedupIndex,
    DedupItem,
    band_key,
    exact_key,
    fingerprint,
    link,
    minhash,
    normalise,
    signature,
)
from pipeline.dedup import index as dedup_index
from pipeline.dedup.jsonl import dedup_jsonl

CFG = DedupConfig()
SENTENCE = re.compile(r"(?<=[.!?])\s+")


def seed_text(prefix: str) -> str:
    name = next(n for n in seed_names() if n.startswith(prefix))
    return json.loads((SEEDS_GOLD / f"{name}.json").read_text(encoding="utf-8"))["text"]


def item(doc_id: str, text: str, date: str | None = None, cfg: DedupConfig = CFG) -> DedupItem:
    exact, sig, shingles = fingerprint(text, cfg)
    return DedupItem(doc_id, len(text), date, exact, sig, shingles)


def syndicated(text: str, rng: random.Random) -> dict[str, str]:
    """The copies wire services and aggregators make of one story."""
    lines = text.split("\n")
    sentences = SENTENCE.split(text)
    words = text.split(" ")
    typos = list(words)
    for i in rng.sample(range(len(words)), 6):
        typos[i] = typos[i][::-1]
    dropped = list(sentences)
    dropped.pop(len(sentences) // 2)
    return {
        "headline": "\n".join(["Hong Kong leader heads north to court tech giants"] + lines[1:]),
        "footer": text + "\nThis article first appeared on Example Wire. Republished with permission.\n"
        "Related stories\nMarkets rally as rates hold\nTen things to do this weekend",
        "truncated": " ".join(words[: int(len(words) * 0.8)]) + "\nRead the full story at example.com",
        "dropped": " ".join(dropped),
        "typos": " ".join(typos),
        "byline": "By Maria Lopez, Example Wire\n" + text.upper(),
    }


# --- map step ---------------------------------------------------------------------------------------------

def test_normalise_folds_case_punctuation_and_layout():
    assert normalise("  Hello,\tWORLD!  “Quoted” — dash…\n\nNext line ") == "hello world quoted dash next line"
    assert normalise("Straße ÉTÉ") == "strasse été"
    assert normalise("हिन्दी भाषा") == "हिन्दी भाषा"  # vowel signs are part of the word
    assert exact_key("Hello, world!") == exact_key("hello   WORLD") != exact_key("hello there")


def test_signature_is_raw_uint32_bytes_of_num_perm():
    sig = signature("a b c d e f g", CFG)
    assert isinstance(sig, bytes) and len(sig) == 4 * CFG.num_perm
    assert fingerprint("a b c d e f g", CFG) == (exact_key("a b c d e f g"), sig, 7 - CFG.ngram + 1)
    assert signature("A, b; c d e f g!", CFG) == sig  # computed on the normalised text
    assert signature("a b", CFG) != signature("b a", CFG)  # short texts are one shingle, order matters


def test_signatures_do_not_depend_on_the_process():
    """Workers are other processes with other hash seeds; their signatures must match the driver's."""
    text = seed_text("000")
    code = ("import sys; from pipeline.config import DedupConfig; from pipeline.dedup import signature; "
            "sys.stdout.write(signature(sys.stdin.read(), DedupConfig()).hex())")
    for hash_seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], input=text, capture_output=True, text=True, check=True,
                             cwd=ROOT, env={"PYTHONHASHSEED": hash_seed, "PATH": ""}).stdout
        assert out == signature(text, CFG).hex()


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300))
def test_signature_never_fails_and_is_deterministic(text):
    first = signature(text, CFG)
    assert len(first) == 4 * CFG.num_perm
    assert signature(text, CFG) == first
    assert fingerprint(text, CFG)[:2] == (exact_key(text), first)


# --- clustering ---------------------------------------------------------------------------------------------

def test_syndicated_variants_cluster_with_their_seed():
    rng = random.Random(4)
    for prefix in ("000", "001", "003"):
        text = seed_text(prefix)
        variants = syndicated(text, rng)
        batch = [item(f"{prefix}-original", text)] + [item(f"{prefix}-{k}", v) for k, v in variants.items()]
        decisions = decide(batch)
        assert len({d.cluster for d in decisions}) == 1, [(d.id, d.cluster, d.similarity) for d in decisions]
        kept = [d for d in decisions if d.duplicate_of is None]
        assert len(kept) == 1
        assert kept[0].id == f"{prefix}-footer"  # the longest text
        byline = next(d for d in decisions if d.id.endswith("byline"))
        assert byline.similarity is not None and 0.6 <= byline.similarity < 1.0


def test_two_stories_on_the_same_event_stay_apart():
    decisions = decide([item("000", seed_text("000")), item("001", seed_text("001"))])
    assert [d.duplicate_of for d in decisions] == [None, None]
    assert {d.cluster for d in decisions} == {"000", "001"}


def _first_share(text: str, share: float) -> str:
    """The first sentences of `text` up to `share` of its words: a wire copy cut to its first part."""
    out, words, total = [], 0, len(text.split())
    for sentence in SENTENCE.split(text):
        if out and words >= share * total:
            break
        out.append(sentence)
        words += len(sentence.split())
    return " ".join(out)


def test_a_copy_cut_to_its_first_35_percent_is_clustered_with_its_story():
    """Jaccard ~0.35 (below `threshold`), but nearly all of the copy lies within the story: a containment link."""
    for prefix in ("000",):  # the one seed long enough: its first 35 % holds more than `containment_min` n-grams
        text = seed_text(prefix)
        copy = _first_share(text, 0.35) + "\nThis story was first published by the wire. Republished with permission."
        a, b = item(prefix, text), item(f"{prefix}-wire", copy)
        share = float((np.frombuffer(a.sig, "<u4") == np.frombuffer(b.sig, "<u4")).mean())
        assert share < CFG.threshold  # Jaccard alone would miss it
        decisions = decide([a, b])
        assert decisions[1].duplicate_of == prefix, (prefix, share, a.shingles, b.shingles)
        # the same decision through the index: the story kept by an earlier run, the copy arriving later
        assert decide([b], kept=[a])[0].duplicate_of == prefix


def test_a_short_text_does_not_link_by_containment_alone():
    text = seed_text("000")
    short = _first_share(text, 0.05)
    a, b = item("story", text), item("teaser", short)
    assert b.shingles < CFG.containment_min
    assert decide([a, b])[1].duplicate_of is None
    low = dataclasses.replace(CFG, containment_min=5)
    assert decide([item("story", text, cfg=low), item("teaser", short, cfg=low)], low)[1].duplicate_of == "story"


def test_a_follow_up_quoting_three_sentences_of_a_story_stays_apart():
    """Seeds 000 and 001 report the same visit; 001 cut to its first half and given three long sentences of 000
    (quotes reused by a follow-up) is still another story."""
    story, other = seed_text("000"), seed_text("001")
    quoted = sorted(SENTENCE.split(story), key=lambda s: (-len(s.split()), s))[:3]
    follow_up = _first_share(other, 0.5) + " " + " ".join(quoted)
    decisions = decide([item("story", story), item("follow-up", follow_up)])
    assert [d.duplicate_of for d in decisions] == [None, None]


def _train_gold_text(name: str) -> str:
    path = SHARED / "bench" / "train" / "gold" / f"{name}.json"
    if not path.exists():
        pytest.skip(f"{path} not found (PAGEWASH_SHARED)")
    return json.loads(path.read_text(encoding="utf-8"))["text"]


def test_chinese_and_japanese_near_copies_are_found_by_character_shingles():
    """Real CJK text (Readability's test pages, Apache-2.0): words are not space-separated, so shingles are
    character n-grams. A 600-character passage with two small edits (three characters inserted, two deleted)
    scores 0.95-0.98 (0.53-0.80 when whole clauses were the tokens); another text in the language stays apart."""
    names = ["readability-gmw", "readability-youth", "readability-yahoo-4", "readability-pixnet"]
    for name, other in zip(names, names[1:] + names[:1], strict=True):
        text = _train_gold_text(name)[:600]
        i, j = len(text) // 3, 2 * len(text) // 3
        copy = text[:i] + "据报道" + text[i:j] + text[j + 2:]
        a, b = item(name, text), item(f"{name}-copy", copy)
        assert a.shingles > 400  # character n-grams, not a few dozen clauses
        share = float((np.frombuffer(a.sig, "<u4") == np.frombuffer(b.sig, "<u4")).mean())
        assert share >= 0.9, (name, share)
        decisions = decide([a, b, item(other, _train_gold_text(other)[:600])])
        assert decisions[0].cluster == decisions[1].cluster != decisions[2].cluster
        assert decisions[2].duplicate_of is None


def test_mixed_scripts_are_tokenised_per_script():
    assert minhash._words("Xi 习近平 met Biden in 北京, 2023") == [
        "xi", "习", "近", "平", "met", "biden", "in", "北", "京", "2023"]
    assert minhash._words("ภาษาไทย Hindi हिन्दी") == ["ภ", "า", "ษ", "า", "ไ", "ท", "ย", "hindi", "हिन्दी"]


def test_exact_copies_link_with_similarity_one_and_ties_break_by_date_then_first_seen():
    text = seed_text("002")
    batch = [item("c", text, "2025-05-02"), item("b", text.upper(), None), item("a", text, "2025-05-02"),
             item("d", text, "2025-05-01")]
    decisions = {d.id: d for d in decide(batch)}
    assert decisions["d"].duplicate_of is None  # same length: the earliest date wins
    assert all(decisions[k].duplicate_of == "d" and decisions[k].similarity == 1.0 for k in "abc")
    # a mirror does not beat the original merely by a smaller id: the first seen wins
    decisions = {d.id: d for d in decide([item("c", text), item("a", text), item("b", text)])}
    assert decisions["c"].duplicate_of is None and decisions["a"].duplicate_of == "c"


def test_keep_policies():
    text = seed_text("000")
    short = " ".join(text.split()[: len(text.split()) * 3 // 4])  # linked by containment
    batch = [item("mirror", text + " Read more at the mirror, which republished it in full.", "2025-06-02"),
             item("wire", short, "2025-06-01"), item("original", text, "2025-06-02")]
    kept = {}
    for keep in ("longest", "earliest", "first_seen"):
        decisions = decide(batch, dataclasses.replace(CFG, keep=keep))
        assert len({d.cluster for d in decisions}) == 1, keep
        kept[keep] = next(d.id for d in decisions if d.duplicate_of is None)
    assert kept == {"longest": "mirror", "earliest": "wire", "first_seen": "mirror"}
    assert next(d.id for d in decide(batch[::-1], dataclasses.replace(CFG, keep="first_seen"))
                if d.duplicate_of is None) == "original"
    with pytest.raises(ConfigError, match="keep must be one of"):
        DedupConfig(keep="shortest")


def test_a_copy_of_a_document_kept_before_never_replaces_it():
    text = seed_text("001")
    kept = [item("original", text, "2025-01-02")]
    for policy in ("longest", "earliest", "first_seen"):
        cfg = dataclasses.replace(CFG, keep=policy)
        longer_earlier = [item("a-copy", text + " !!!", "2024-01-01"),  # the same text, longer and dated earlier
                          item("b-copy", text + "\nShared from the original. Follow us.", "2024-01-01")]
        decisions = decide(longer_earlier, cfg, kept=kept)
        assert [d.duplicate_of for d in decisions] == ["original", "original"], policy


def test_decisions_do_not_depend_on_batch_order():
    rng = random.Random(9)
    batch = []
    for prefix in ("000", "001", "002", "004"):
        text = seed_text(prefix)
        batch.append(item(prefix, text))
        batch += [item(f"{prefix}-{k}", v) for k, v in syndicated(text, rng).items()]
    expected = sorted(map(dataclasses.astuple, decide(batch)))
    for shuffle_seed in range(3):
        shuffled = list(batch)
        random.Random(shuffle_seed).shuffle(shuffled)
        decisions = decide(shuffled)
        assert [d.id for d in decisions] == [i.id for i in shuffled]  # input order
        assert sorted(map(dataclasses.astuple, decisions)) == expected


def test_an_unverified_lsh_collision_never_links():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 2**32, CFG.num_perm, dtype=np.uint32)
    b = rng.integers(0, 2**32, CFG.num_perm, dtype=np.uint32)
    b[: CFG.rows] = a[: CFG.rows]  # the same first band, nothing else in common
    assert band_key(a[None], 0, CFG.rows) == band_key(b[None], 0, CFG.rows)
    first = DedupItem("a", 100, None, "ea" * 16, a.astype("<u4").tobytes(), 1000)
    second = DedupItem("b", 200, None, "eb" * 16, b.astype("<u4").tobytes(), 300)  # nor by containment
    assert [d.duplicate_of for d in decide([first, second])] == [None, None]
    assert decide([second], kept=[first])[0].duplicate_of is None  # nor against the index
    third = DedupItem("c", 50, None, "ec" * 16, a.astype("<u4").tobytes(), 0)  # the same signature: verified, links
    assert decide([third], kept=[first])[0].duplicate_of == "a"


def test_a_newer_capture_of_a_url_with_other_text_supersedes_the_earlier_one():
    """The same id twice in one round (a URL scraped twice): with other text, the later capture is the page
    now (`recapture = "update"`: the earlier goes to duplicates with `superseded_by`), even when the two are
    near copies; with the same text it is a duplicate of the first; `versions` keeps both versions."""
    text = seed_text("004")
    later = text + " " + " ".join(seed_text("002").split()[:60])  # the same URL, its text grown a paragraph
    decisions = decide([item("x", text), item("y", seed_text("002")), item("x", later)])
    assert decisions[0].duplicate_of == "x" and decisions[0].superseded_by == "in" and decisions[0].similarity < 1
    assert decisions[2].duplicate_of is None and decisions[1].duplicate_of is None
    again = decide([item("x", text), item("x", text.upper())])  # a re-scrape of the same text
    assert again[0].duplicate_of is None and again[1].duplicate_of == "x" and again[1].similarity == 1.0
    assert again[1].superseded_by is None
    both = decide([item("x", text), item("x", later)], dataclasses.replace(CFG, recapture="versions"))
    assert [d.duplicate_of for d in both] == [None, None]
    # across runs: the first capture kept before, a new one with other text (the 2017 home page, 0.18 alike)
    home = item("x", seed_text("001"))
    decisions = decide([item("x", text)], kept=[home])
    assert decisions[0].duplicate_of is None  # kept; the driver moves the earlier record (test_batch)
    assert decide([item("x", seed_text("001") + " !")], kept=[home])[0].duplicate_of == "x"  # same text again
    with pytest.raises(ConfigError, match="recapture must be one of"):
        DedupConfig(recapture="keep")


# --- the persistent index -------------------------------------------------------------------------------

def test_second_round_sends_only_new_copies_to_duplicates():
    first = [item(p, seed_text(p)) for p in ("000", "001", "002")]
    assert all(d.duplicate_of is None for d in decide(first))
    rng = random.Random(1)
    longer = syndicated(seed_text("000"), rng)["footer"]  # longer than the kept document
    second = [item("000-copy", longer), item("002-copy", seed_text("002").upper()), item("004", seed_text("004"))]
    decisions = {d.id: d for d in decide(second, kept=first)}
    assert decisions["000-copy"].duplicate_of == "000" and decisions["000-copy"].cluster == "000"  # kept first
    assert decisions["002-copy"].duplicate_of == "002" and decisions["002-copy"].similarity == 1.0
    assert decisions["004"].duplicate_of is None


def test_an_id_kept_before_is_a_duplicate_of_itself_and_its_copies_join_the_kept_one():
    text = seed_text("003")
    a, b = item("a", text), item("b", text + " Extra closing line for b.")
    decisions = {d.id: d for d in decide([item("b", text + " Extra closing line for b!"), a,
                                          item("c", text + " Another copy with a tail.")], kept=[a, b])}
    assert decisions["a"].duplicate_of == "a" and decisions["a"].similarity == 1.0  # the same page again
    assert decisions["b"].duplicate_of == "b"
    assert decisions["c"].duplicate_of == "a"  # kept before (both): the smallest id


def _file_index(tmp_path, cfg: DedupConfig = CFG) -> DedupIndex:
    return DedupIndex(sqlite3.connect(tmp_path / "state.sqlite", isolation_level=None), cfg)


def _runs(index: DedupIndex) -> list[str]:
    return index.tables.band_runs()


def _hits(index: DedupIndex, it: DedupItem) -> set[int]:
    """Indexed rowids sharing a band with `it` and still indexed."""
    sig = np.frombuffer(it.sig, "<u4")[None]
    docs = np.concatenate([index._band_hits(b, band_key(sig, b, CFG.rows))[1] for b in range(CFG.bands)])
    return set(docs[index.live(docs)].tolist())


def test_staging_twice_is_harmless(tmp_path):
    index = _file_index(tmp_path)
    batch = [item("000", seed_text("000")), item("004", seed_text("004"))]
    kept = [Decision(i.id, None, None, i.id) for i in batch]
    index.stage(batch, kept)
    index.stage(batch, kept)
    assert index.count() == 2 and len(_runs(index)) == 1  # nothing new: no second run
    keys = np.load(tmp_path / "index" / _runs(index)[0] / "keys.npy")
    assert keys.shape == (CFG.bands, 2) and all((row[1:] >= row[:-1]).all() for row in keys)


def test_forget_merge_and_reset(tmp_path):
    """Band keys live in sorted runs, one per round; a forgotten document is gone from lookups at once and
    from the files at the next merge (after MAX_RUNS runs); rowids are never reused; a run no commit named
    is swept; reset empties the index."""
    index = _file_index(tmp_path)
    texts = [seed_text(p) for p in ("000", "001", "002", "003", "004")]
    items = [item(f"d{k}", text) for k, text in enumerate(texts)]
    for it in items[:2]:
        index.stage([it], [Decision(it.id, None, None, it.id)])
    assert _hits(index, items[0]) == {1} and len(_runs(index)) == 2
    index.forget(["d0", "not-there"])
    assert index.count() == 1 and _hits(index, items[0]) == set()
    index.stage([items[0]], [Decision("d0", None, None, "d0")])  # back, with a new rowid
    assert _hits(index, items[0]) == {3}
    for k in range(dedup_index.MAX_RUNS):
        extra = item(f"x{k}", texts[k % 5] + f" Edition {k}.")
        index.stage([extra], [Decision(extra.id, None, None, extra.id)])
    assert len(_runs(index)) <= dedup_index.MAX_RUNS  # merged once
    files = [np.load(tmp_path / "index" / name / "docs.npy") for name in _runs(index)]
    assert sum(f.shape[1] for f in files) == index.count()  # the forgotten rowid 1 is gone from the files
    assert not any(1 in f for f in files)
    assert 3 in _hits(index, items[0]) and 1 not in _hits(index, items[0]) and 2 in _hits(index, items[1])
    (tmp_path / "index" / "run-999999999999").mkdir()  # a round killed before its commit
    index = _file_index(tmp_path)
    assert not (tmp_path / "index" / "run-999999999999").exists()
    index.reset()
    assert index.count() == 0 and not _runs(index)


def test_other_parameters_need_a_rebuild():
    db = sqlite3.connect(":memory:", isolation_level=None)
    DedupIndex(db, CFG)
    DedupIndex(db, dataclasses.replace(CFG, threshold=0.8))  # the threshold only filters: no rebuild
    other = dataclasses.replace(CFG, bands=16, rows=8)
    with pytest.raises(ValueError, match="bands 64 -> 16"):
        DedupIndex(db, other)
    DedupIndex(db, other, rebuild=True).reset()
    DedupIndex(db, other)


def test_config_checks_bands_and_rows(tmp_path):
    assert load_config().dedup == DedupConfig()
    assert all(f.metadata.get("help") for f in dataclasses.fields(DedupConfig))
    path = tmp_path / "pagewash.toml"
    path.write_text("[dedup]\nthreshold = 0.8\nnum_perm = 64\nbands = 16\nrows = 4\n", encoding="utf-8")
    assert load_config(path).dedup == DedupConfig(threshold=0.8, num_perm=64, bands=16, rows=4)
    with pytest.raises(ConfigError, match="must equal num_perm"):
        DedupConfig(num_perm=120)
    with pytest.raises(ConfigError, match="threshold"):
        DedupConfig(threshold=1.5)


# --- `pagewash dedup` on JSONL ------------------------------------------------------------------------------

def write_jsonl(path, records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


def read_tree(out):
    return {str(p.relative_to(out)): shard_text(p) for stream in ("documents", "duplicates", "rejects")
            for p in shard_files(out / stream)}


def corpus(tmp_path):
    rng = random.Random(2)
    variants = syndicated(seed_text("000"), rng)
    first = write_jsonl(tmp_path / "a.jsonl", [
        {"id": "000", "text": seed_text("000"), "metadata": {"date": "2025-05-26", "url": "u0"}},
        {"id": "001", "text": seed_text("001")},
        {"id": "000-typos", "text": variants["typos"], "source": "wire"},
        {"text": "a record without an id"},
        "{not json",
    ])
    second = write_jsonl(tmp_path / "b.jsonl", [
        {"id": "002", "text": seed_text("002")},
        {"id": "000-headline", "text": variants["headline"]},
    ])
    return first, second


def test_dedup_jsonl_end_to_end(tmp_path):
    first, second = corpus(tmp_path)
    out = tmp_path / "out"
    counts = dedup_jsonl([first], out, CFG)
    assert {k: counts[k] for k in ("records", "kept", "duplicates", "rejects")} == {
        "records": 5, "kept": 2, "duplicates": 1, "rejects": 2}
    docs = [json.loads(line) for line in shard_text(out / "documents" / "part-000000.jsonl").splitlines()]
    assert [d["id"] for d in docs] == ["000", "001"]
    assert docs[0]["metadata"] == {"date": "2025-05-26", "url": "u0", "content_hash": exact_key(seed_text("000")),
                                   "duplicate_of": None, "similarity": None, "dup_cluster": "000",
                                   "superseded_by": None}
    dup = json.loads(shard_text(out / "duplicates" / "part-000000.jsonl"))
    assert dup["source"] == "wire" and dup["metadata"]["duplicate_of"] == "000" and dup["metadata"]["similarity"] > 0.6
    rejects = [json.loads(line) for line in shard_text(out / "rejects" / "part-000000.jsonl").splitlines()]
    assert [r["metadata"]["filter_reason"] for r in rejects] == ["bad_record", "bad_record"]
    assert rejects[1]["raw"] == "{not json"
    # a second call: only the new near-copy is a duplicate; the file already done is skipped
    counts = dedup_jsonl([first, second], out, CFG)
    assert (counts["records"], counts["kept"], counts["duplicates"], counts["inputs_skipped"]) == (2, 1, 1, 1)
    dup = json.loads(shard_text(out / "duplicates" / "part-000001.jsonl"))
    assert dup["id"] == "000-headline" and dup["metadata"]["duplicate_of"] == "000"
    assert [json.loads(line)["id"] for line in shard_text(out / "documents" / "part-000001.jsonl").splitlines()] == [
        "002"]


def test_dedup_jsonl_reads_gzip_and_never_keeps_an_id_twice(tmp_path):
    import gzip

    path = tmp_path / "in.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(json.dumps({"id": "x", "text": seed_text("004")}) + "\n")
    dedup_jsonl([path], tmp_path / "out", CFG)
    again = write_jsonl(tmp_path / "again.jsonl", [{"id": "x", "text": seed_text("004")}])
    counts = dedup_jsonl([again], tmp_path / "out", CFG)
    assert (counts["kept"], counts["duplicates"]) == (0, 1)
    dup = json.loads(shard_text(tmp_path / "out" / "duplicates" / "part-000001.jsonl"))
    assert dup["metadata"]["duplicate_of"] == "x" and dup["metadata"]["similarity"] == 1.0


def test_dedup_jsonl_killed_between_publish_and_commit_reruns_to_the_same_state(tmp_path, monkeypatch):
    first, second = corpus(tmp_path)
    clean = tmp_path / "clean"

    dedup_jsonl([first], clean, CFG, batch_size=2)
    dedup_jsonl([second], clean, CFG, batch_size=2)

    from pipeline.dedup import jsonl as dedup_driver
    from pipeline.state import RunState

    real_round = dedup_driver.run_round
    # killed while staging: the second batch's files are published, its commit never happens
    killed = tmp_path / "killed"
    calls = []
    real_commit = RunState.commit_shard

    def dies_on_second_batch(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_commit(self, *args, **kwargs)

    monkeypatch.setattr(RunState, "commit_shard", dies_on_second_batch)
    with pytest.raises(KeyboardInterrupt):
        dedup_jsonl([first], killed, CFG, batch_size=2)
    assert shard_exists(killed / "rejects" / "part-000001.jsonl")  # published before the kill
    monkeypatch.setattr(RunState, "commit_shard", real_commit)

    # killed between staging and the round's commit: the next call finishes the staged shards
    def dies(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(dedup_driver, "run_round", dies)
    with pytest.raises(KeyboardInterrupt):
        dedup_jsonl([first], killed, CFG, batch_size=2)
    assert not (killed / "documents").exists() or not list((killed / "documents").glob("part-*"))
    monkeypatch.setattr(dedup_driver, "run_round", real_round)
    counts = dedup_jsonl([first], killed, CFG, batch_size=2)
    assert counts["inputs_skipped"] == 1
    dedup_jsonl([second], killed, CFG, batch_size=2)
    assert read_tree(killed) == read_tree(clean)
    assert not list(killed.glob("*/.*.tmp"))


def test_dedup_rejects_say_why_and_blank_text_is_no_document(tmp_path):
    """A blank `text` was kept as a document; `bad_record` rejects had no filter_detail."""
    path = write_jsonl(tmp_path / "in.jsonl", [
        {"id": "blank", "text": " \n\t "},
        {"text": "no id"},
        {"id": "no-text"},
        {"id": "odd-meta", "text": seed_text("001"), "metadata": [1]},
        "{not json",
        "[1, 2]",
        {"id": "fine", "text": seed_text("002")},
    ])
    counts = dedup_jsonl([path], tmp_path / "out", CFG)
    assert (counts["kept"], counts["rejects"]) == (1, 6)
    shard = tmp_path / "out" / "rejects" / "part-000000.jsonl"
    rejects = [json.loads(line) for line in shard_text(shard).splitlines()]
    details = [(r["metadata"]["filter_reason"], r["metadata"]["filter_detail"]) for r in rejects]
    assert details == [
        ("empty", f"{path}:1: `text` is blank"), ("bad_record", f"{path}:2: needs a string `id`"),
        ("bad_record", f"{path}:3: needs a string `text`"), ("bad_record", f"{path}:4: `metadata` is not an object"),
        ("bad_record", f"{path}:5: not JSON: Expecting property name enclosed in double quotes: line 1 column 2 "
                       "(char 1)"),
        ("bad_record", f"{path}:6: not a JSON object"),
    ]


def test_containment_above_one_turns_containment_links_off():
    # 0.35 with 300 and 1000 n-grams estimates a containment of 1.12 (noise): capped at 1
    share, small, large = np.array([0.35, 0.999]), np.array([300, 300]), np.array([1000, 310])
    assert link(share, small, large, CFG).tolist() == [True, True]
    off = dataclasses.replace(CFG, containment=1.01)
    assert link(share, small, large, off).tolist() == [False, True]  # the second by Jaccard


def test_a_dedup_output_of_an_older_version_is_rebuilt_without_losing_a_record(tmp_path):
    """Before `dedup` ran the steps, its state named shards in `dedup_shards` (and a shard published but never
    committed was `publishing`): they become the state's shards, so no sweep takes them for leftovers."""
    from pipeline.dedup.rebuild import rebuild_dedup
    from pipeline.io.store import LocalStore

    out = tmp_path / "out"
    text = seed_text("000")
    records = {"documents": [{"id": "a", "text": text, "metadata": {}}, {"id": "b", "text": seed_text("001")}],
               "duplicates": [{"id": "c", "text": text + " Republished.", "metadata": {"duplicate_of": "a"}}]}
    for stream, recs in records.items():
        write_jsonl((out / stream).mkdir(parents=True) or out / stream / "part-000000.jsonl", recs)
    write_jsonl((out / "documents" / "part-000001.jsonl"), [{"id": "x", "text": "never committed"}])
    (out / "_state").mkdir()
    db = sqlite3.connect(out / "_state" / "dedup.sqlite")
    db.executescript("CREATE TABLE dedup_shards (seq INTEGER PRIMARY KEY, status TEXT NOT NULL);"
                     "INSERT INTO dedup_shards VALUES (0, 'done'), (1, 'publishing');"
                     "CREATE TABLE dedup_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                     "INSERT INTO dedup_meta VALUES ('scheme', 'pagewash-1');")
    db.commit()
    db.close()
    report = rebuild_dedup(LocalStore(out), out / "_state", load_config(), workers=0)
    assert (report["records"], report["kept"], report["duplicates"]) == (3, 2, 1)
    assert sorted(ids_of(out, "documents")) == ["b", "c"] and ids_of(out, "duplicates") == ["a"]  # the longer kept
    assert not (out / "documents" / "part-000001.jsonl").exists()
    # and a later call dedups new records against the rebuilt index
    later = write_jsonl(tmp_path / "later.jsonl", [{"id": "d", "text": text.upper()}])
    assert dedup_jsonl([later], out, CFG, fmt="jsonl")["duplicates"] == 1


def ids_of(out, stream):
    return [json.loads(line)["id"] for path in shard_files(out / stream) for line in shard_lines(path)]


def test_dedup_reads_other_field_names_into_the_envelope(tmp_path):
    """`pagewash dedup --id-key uid --text-key content`: a scraper export's own names."""
    path = write_jsonl(tmp_path / "export.jsonl", [{"uid": "a", "content": seed_text("000"), "lang": "en"},
                                                   {"uid": "b", "content": seed_text("000")}])
    counts = dedup_jsonl([path], tmp_path / "out", CFG, keys=("uid", "content"))
    assert (counts["kept"], counts["duplicates"]) == (1, 1)
    shard = tmp_path / "out" / "documents" / "part-000000.jsonl"
    [kept] = [json.loads(line) for line in shard_text(shard).splitlines()]
    assert kept["id"] == "a" and kept["text"] == seed_text("000") and kept["lang"] == "en" and "content" not in kept
