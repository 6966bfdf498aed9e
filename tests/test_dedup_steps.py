"""The four dedup steps of a run (pipeline/dedup/steps.py): the decisions of an all-pairs reference (every pair
compared, no LSH), whatever the partitioning, resumed from completion markers."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import numpy as np
import pytest
from conftest import SEEDS_RAW, shard_files, stream_records
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import DedupConfig, load_config
from pipeline.dedup import Decision, DedupIndex, DedupItem, clusters, fingerprint, link, representatives, rounds, tasks
from pipeline.dedup import steps as dedup_steps
from pipeline.dedup.clusters import components, filter_shard
from pipeline.dedup.decisions import _UnionFind, utf8_array
from pipeline.dedup.rounds import round_dir
from pipeline.dedup.steps import buckets, signatures, versions
from pipeline.dedup.tasks import DedupJob
from pipeline.run.corpus import run_corpus
from pipeline.state import STATE_DIR, RunState

WORDS = [f"w{n}" for n in range(3000)]


def _story(rng: random.Random, n: int = 150) -> list[str]:
    return [rng.choice(WORDS) for _ in range(n)]


def _edit(rng: random.Random, words: list[str], share: float) -> list[str]:
    out = list(words)
    for k in rng.sample(range(len(out)), int(len(out) * share)):
        out[k] = rng.choice(WORDS)
    return out


def _corpus(seed: int, same_ids: bool = True) -> tuple[list[tuple], list[tuple]]:
    """(id, text, date) of documents kept by an earlier run, and of the new ones: near and exact copies of
    each other and of the kept ones, a huge bucket of one text, and (`same_ids`) the same id twice and ids
    kept before."""
    rng = random.Random(seed)
    kept = [(f"k{n:03d}", " ".join(_story(rng, 700 if n == 19 else 150)), None) for n in range(20)]
    new = []
    for n in range(60):
        words = _story(rng)
        date = rng.choice([None, "2025-01-02", "2024-12-31"])
        new.append((f"n{n:03d}", " ".join(words), date))
        for c in range(rng.choice([0, 0, 1, 2, 3])):
            new.append((f"c{n:03d}_{c}", " ".join(_edit(rng, words, rng.choice([0.0, 0.02, 0.05, 0.3]))),
                        rng.choice([None, "2025-01-01"])))
        if same_ids and n % 7 == 0:
            new.append((f"n{n:03d}", " ".join(_edit(rng, words, 0.03)), None))  # the same URL scraped again
        if n % 5 == 0:
            new.append((f"x{n:03d}", " ".join(words).upper() + " !", None))  # exact copy, other case
        if n % 6 == 1:  # a long story and a copy cut to its first 31-36 %: linked by containment only
            long = _story(rng, 700)
            new.append((f"l{n:03d}", " ".join(long), date))
            new.append((f"t{n:03d}", " ".join(long[:rng.choice([220, 250])] + _story(rng, 8)), None))
    for k, (doc_id, text, _date) in enumerate(kept[:8]):
        words = text.split()
        new.append((f"d{k:03d}", " ".join(_edit(rng, words, 0.02)), None))  # near copy of a kept one
        if same_ids and k % 3 == 0:
            new.append((doc_id, " ".join(_edit(rng, words, 0.05)), None))  # its id was kept before
    new.append(("t_kept", " ".join(kept[19][1].split()[:240]), None))  # a truncated copy of a kept story
    common = " ".join(_story(rng))
    new += [(f"m{n:03d}", common, None) for n in range(14)]  # one text, many copies: a large bucket
    rng.shuffle(new)
    return kept, new


def _item(doc_id: str, text: str, date: str | None, cfg: DedupConfig) -> DedupItem:
    exact, sig, shingles = fingerprint(text, cfg)
    return DedupItem(doc_id, len(text), date, exact, sig, shingles)


def _prepare(tmp_path: Path, cfg: DedupConfig, seed: int, shard_size: int = 17,
             same_ids: bool = True) -> tuple[RunState, list]:
    """An output folder as a run leaves it before its dedup: an index, staged shards, pending signatures."""
    kept, new = _corpus(seed, same_ids)
    out = tmp_path / "out"
    state = RunState(out / STATE_DIR)
    index = DedupIndex(state.db, cfg)
    kept_items = [_item(*doc, cfg) for doc in kept]
    with state.transaction():
        index.stage(kept_items, [Decision(i.id, None, None, i.id) for i in kept_items])
    items = []
    for seq, start in enumerate(range(0, len(new), shard_size)):
        part = new[start:start + shard_size]
        staged = out / STATE_DIR / "staged" / f"part-{seq:06d}.jsonl"
        staged.parent.mkdir(parents=True, exist_ok=True)
        staged.write_text("".join(json.dumps({"id": d, "text": t, "metadata": {"source_path": f"in{seq}", "n": n}})
                                  + "\n" for n, (d, t, _) in enumerate(part)), encoding="utf-8")
        pending = []
        for pos, doc in enumerate(part):
            item = _item(*doc, cfg)
            items.append(item)
            pending.append((item.id, f"in{seq}", seq, pos, item.text_len, item.date, item.exact, item.sig,
                            item.shingles))
        state.commit_shard(seq, 1, "staged", {}, [], [], pending)
    return state, items


def _run_steps(out: Path, state: RunState, cfg: DedupConfig) -> tuple[DedupJob, list[dict]]:
    seqs = tuple(sorted(state.shard_status()))
    job = DedupJob(str(out / STATE_DIR), str(round_dir(out / STATE_DIR, state.dedup, cfg)), cfg, seqs)
    results = [signatures(job, seq) for seq in seqs]
    results.append(versions(job))
    results += [buckets(job, p) for p in range(cfg.partitions)]
    results.append(components(job))
    results += [filter_shard(job, seq, str(out / STATE_DIR / "staged" / f"part-{seq:06d}.jsonl")) for seq in seqs]
    return job, results


def _decisions(out: Path, job: DedupJob, superseded: bool = False) -> list[tuple]:
    """(id, duplicate_of, similarity, cluster[, superseded_by]) of every record, in shard and record order."""
    found = []
    for seq in job.seqs:
        records = []
        for stream in ("documents", "duplicates"):
            path = job.path("filtered", stream, f"part-{seq:06d}.jsonl")
            if path.exists():
                records += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        for record in sorted(records, key=lambda r: r["metadata"]["n"]):
            meta = record["metadata"]
            found.append((record["id"], meta["duplicate_of"], meta["similarity"], meta["dup_cluster"])
                         + ((meta["superseded_by"],) if superseded else ()))
    return found


def _all_pairs(kept: list[DedupItem], items: list[DedupItem], cfg: DedupConfig) -> list[tuple]:
    """The reference: every pair of documents compared (exact key, or `link` on the share of equal slots),
    components by union-find, `representatives` (documents kept before win), ids all distinct."""
    nodes = kept + items
    sigs = np.array([np.frombuffer(n.sig, dtype="<u4") for n in nodes])
    sizes = np.array([n.shingles for n in nodes])
    links = _UnionFind(len(nodes))
    for a in range(len(nodes)):
        b = np.arange(a + 1, len(nodes))
        share = (sigs[b] == sigs[a]).mean(axis=1)
        same = np.array([nodes[a].exact == nodes[k].exact for k in b.tolist()], dtype=bool)
        for k in b[same | link(share, np.full(len(b), sizes[a]), sizes[b], cfg)].tolist():
            links.union(a, k)
    pinned = np.arange(len(nodes)) < len(kept)
    rep = representatives(links.roots(), pinned, np.arange(len(nodes)),
                          utf8_array(None if k < len(kept) else n.date for k, n in enumerate(nodes)),
                          np.array([0 if k < len(kept) else n.text_len for k, n in enumerate(nodes)]))
    out = []
    for k in range(len(kept), len(nodes)):
        r = int(rep[k])
        if r == k:
            out.append((nodes[k].id, None, None, nodes[k].id))
        else:
            sim = 1.0 if nodes[k].exact == nodes[r].exact else round(float((sigs[k] == sigs[r]).mean()), 4)
            out.append((nodes[k].id, nodes[r].id, sim, nodes[r].id))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_steps_decide_as_comparing_every_pair(tmp_path: Path, seed: int):
    cfg = DedupConfig(partitions=5)
    state, items = _prepare(tmp_path, cfg, seed, same_ids=False)
    kept = [_item(*doc, cfg) for doc in _corpus(seed, same_ids=False)[0]]
    expected = _all_pairs(kept, items, cfg)
    job, _ = _run_steps(tmp_path / "out", state, cfg)
    got = _decisions(tmp_path / "out", job)
    assert got == expected
    assert any(d[1] is None for d in got) and any(d[1] and d[1].startswith("k") for d in got)
    truncated = {d[0]: d[1] for d in got if d[0].startswith("t")}
    assert truncated["t_kept"] == "k019" and all(v == "l" + k[1:] for k, v in truncated.items() if k != "t_kept")



@pytest.mark.parametrize("seed", [0, 1])
def test_the_same_id_again(tmp_path: Path, seed: int):
    """An id kept before, captured again with other text: the new capture is the page now, the kept one is
    superseded (the driver moves it), and their near copies cluster with the new one. The same id twice in one
    round with other text: the earlier is superseded by the later (`superseded_by` its input)."""
    cfg = DedupConfig(partitions=5)
    state, items = _prepare(tmp_path, cfg, seed)
    job, _ = _run_steps(tmp_path / "out", state, cfg)
    got = {}
    for doc_id, dup_of, sim, cluster, by in _decisions(tmp_path / "out", job, superseded=True):
        got.setdefault(doc_id, []).append((dup_of, sim, cluster, by))
    superseded = {doc for doc, _sim, _by in rounds.superseded_docs(job)}
    ids = dict(DedupIndex(state.db, cfg, check=False).docs_where("doc", sorted(superseded), fields=("doc", "id")))
    assert sorted(ids.values()) == ["k000", "k003", "k006"]  # came again, 5 % edited
    for k in (0, 3, 6):  # d000, d003, d006 are 2 % edits of the earlier k000, k003, k006
        [(dup_of, _sim, cluster, by)] = got[f"k{k:03d}"]
        assert by is None and dup_of in (None, f"d{k:03d}")
        [(dup_of, _sim, cluster_d, _by)] = got[f"d{k:03d}"]
        assert cluster_d == cluster  # with the new version, not the superseded one
    twice = [decisions for doc_id, decisions in got.items() if doc_id.startswith("n") and len(decisions) == 2]
    assert len(twice) >= 5
    for first, later in twice:
        assert first[3] is not None and first[0] == first[2] and 0.5 < first[1] < 1.0
        assert later[3] is None and later[0] != first[2] or later[0] is None


def test_results_do_not_depend_on_partitions_or_shard_sizes(tmp_path: Path):
    outcomes = set()
    for partitions, shard_size in ((1, 17), (4, 17), (16, 5), (3, 200)):
        cfg = DedupConfig(partitions=partitions)
        folder = tmp_path / f"p{partitions}-s{shard_size}"
        state, _ = _prepare(folder, cfg, seed=3, shard_size=shard_size)
        job, _ = _run_steps(folder / "out", state, cfg)
        outcomes.add(tuple(_decisions(folder / "out", job)))
        state.close()
    assert len(outcomes) == 1


def test_steps_resume_from_their_markers(tmp_path: Path):
    cfg = DedupConfig(partitions=4)
    state, _ = _prepare(tmp_path, cfg, seed=4)
    out = tmp_path / "out"
    job, first = _run_steps(out, state, cfg)
    assert not any(r["resumed"] for r in first)
    outputs = {p: p.read_bytes() for p in Path(job.round_dir).rglob("*") if p.is_file() and "done" not in p.parts}
    # as if the run had been killed during the buckets step: one partition and everything after it undone
    for name in ("buckets-2", "components", *(f"filter-{seq}" for seq in job.seqs)):
        job.path("done", f"{name}.json").unlink()
    _, second = _run_steps(out, state, cfg)
    redone = sorted(k for k, r in enumerate(second) if not r["resumed"])
    n = len(job.seqs) + 1  # the signatures tasks and the versions task
    assert redone == [n + 2, n + cfg.partitions, *range(n + cfg.partitions + 1, len(second))]
    assert {p: p.read_bytes() for p in outputs} == outputs  # the same files, byte for byte


def test_a_run_failing_in_a_step_resumes_there(tmp_path: Path, monkeypatch):
    raw = tmp_path / "raw"
    raw.mkdir()
    for seed in sorted(SEEDS_RAW.glob("*.txt")):
        (raw / seed.name).write_bytes(seed.read_bytes())
    (raw / "copy.txt").write_bytes((SEEDS_RAW / "000_d2de09946bceaf6b.txt").read_bytes())
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1760000000")
    config = dataclasses.replace(load_config(), shard_pages=2)
    config = dataclasses.replace(config, dedup=dataclasses.replace(config.dedup, partitions=3))
    reference = run_corpus(raw, tmp_path / "reference", config, workers=0, progress=False)
    assert reference.report["dedup"]["duplicates"] == 1

    real = dedup_steps._buckets

    def fail_on_partition_1(job, partition):
        if partition == 1:
            raise RuntimeError("a node went away")
        return real(job, partition)

    monkeypatch.setattr(dedup_steps, "_buckets", fail_on_partition_1)
    with pytest.raises(RuntimeError, match="went away"):
        run_corpus(raw, tmp_path / "out", config, workers=0, progress=False)
    monkeypatch.setattr(dedup_steps, "_buckets", real)
    again = run_corpus(raw, tmp_path / "out", config, workers=0, progress=False)
    # signatures (3 shards), versions and partition 0 were done; partitions 1-2, components and 3 filters remain
    assert again.report["dedup"]["tasks"] == {"run": 6, "resumed": 5}
    for stream in ("documents", "duplicates", "rejects"):
        ours = {p.name: p.read_bytes() for p in shard_files(tmp_path / "out" / stream)}
        theirs = {p.name: p.read_bytes() for p in shard_files(tmp_path / "reference" / stream)}
        assert ours == theirs


def _partition(pairs: list[tuple[int, int]]) -> set[frozenset]:
    groups: dict[int, set] = {}
    if pairs:
        nodes = sorted({n for pair in pairs for n in pair})
        uf = _UnionFind(len(nodes))
        for a, b in pairs:
            uf.union(nodes.index(a), nodes.index(b))
        for node, root in zip(nodes, uf.roots().tolist(), strict=True):
            groups.setdefault(root, set()).add(node)
    return {frozenset(g) for g in groups.values()}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(-6, 40), st.integers(-6, 40)), max_size=80))
def test_a_bucket_forest_joins_exactly_the_components_of_its_verified_pairs(pairs):
    """The buckets step keeps one link per document (to its component's label) instead of every verified pair."""
    edges = tasks._edges(np.array([a for a, _ in pairs], dtype=np.int64),
                               np.array([b for _, b in pairs], dtype=np.int64), tasks.LINK)
    forest = tasks._forest(edges)
    assert len(forest) <= len({n for pair in pairs for n in pair})
    loops_apart = {frozenset({n}) for a, b in pairs for n in (a, b)}  # a node in a pair with itself only
    got = _partition([tuple(e) for e in forest[:, :2].tolist()])
    covered = {n for group in got for n in group}
    got |= {group for group in loops_apart if not group & covered}
    assert got == _partition(pairs)


def test_aliases_stand_for_the_indexed_document_through_a_first_copy():
    """The same URL three times in a round (nodes 30, 20, 10; 10 the first copy) whose id was kept before
    (indexed document 5): every copy stands for the indexed one, and links are mapped through them."""
    alias = tasks._edges(np.array([30, 20, 10, 30], dtype=np.int64), np.array([10, 10, -5, -5], dtype=np.int64),
                               tasks.ALIAS)
    aliases = clusters._Aliases(alias)
    assert aliases.keys.tolist() == [10, 20, 30] and aliases.primary.tolist() == [-5, -5, -5]
    assert aliases.map(np.array([[20, 7], [8, 9]], dtype=np.int64)).tolist() == [[-5, 7], [8, 9]]
    # without the indexed document, the later copies stand for the first
    chain = clusters._Aliases(alias[:2])
    assert chain.keys.tolist() == [20, 30] and chain.primary.tolist() == [10, 10]
    assert clusters._Aliases(alias[:0]).map(np.array([[1, 2]], dtype=np.int64)).tolist() == [[1, 2]]


def test_full_after_a_killed_dedup_never_reuses_its_round(tmp_path: Path, monkeypatch):
    """A run dies after its dedup steps, before the commit; `--full` with other records (another
    processed_at) must not resume that round's files, nor install them later."""
    raw = tmp_path / "raw"
    raw.mkdir()
    for seed in sorted(SEEDS_RAW.glob("*.txt")):
        (raw / seed.name).write_bytes(seed.read_bytes())
    out = tmp_path / "out"
    config = dataclasses.replace(load_config(), shard_pages=2)

    class Killed(BaseException):
        pass

    def die(*args, **kwargs):
        raise Killed

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1000000000")
    real_stage = DedupIndex.stage_rows
    monkeypatch.setattr(DedupIndex, "stage_rows", die)
    with pytest.raises(Killed):
        run_corpus(raw, out, config, workers=0, progress=False)
    monkeypatch.setattr(DedupIndex, "stage_rows", real_stage)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    again = run_corpus(raw, out, config, workers=0, progress=False, full=True)
    assert again.report["dedup"]["tasks"]["resumed"] == 0
    stamps = {record["metadata"]["processed_at"] for record in stream_records(out / "documents")}
    assert stamps == {"2023-11-14T22:13:20Z"}


def test_moving_a_superseded_record_is_idempotent(tmp_path: Path, monkeypatch):
    """The commit records the move; the files follow (duplicates first). Killed in between, the next call
    finishes it without losing or doubling the record."""
    from pipeline.io.store import LocalStore

    out = tmp_path / "out"
    state = RunState(out / STATE_DIR)
    (out / "documents").mkdir(parents=True)
    records = [{"id": i, "text": f"text {i}", "metadata": {"duplicate_of": None, "superseded_by": None}}
               for i in ("a", "x", "b")]
    (out / "documents" / "part-000003.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    with state.transaction() as db:
        db.execute("INSERT INTO moves VALUES ('x', 3, 0.18, 'crawl-2017.warc.gz')")

    class Killed(BaseException):
        pass

    real = rounds.replace_lines
    calls = []

    def dies_second(*args):
        calls.append(args)
        if len(calls) == 2:
            raise Killed
        real(*args)

    monkeypatch.setattr(rounds, "replace_lines", dies_second)
    with pytest.raises(Killed):
        rounds.apply_moves(LocalStore(out), state.dedup)
    monkeypatch.setattr(rounds, "replace_lines", real)
    assert rounds.apply_moves(LocalStore(out), state.dedup) == 1
    assert rounds.apply_moves(LocalStore(out), state.dedup) == 0  # done and forgotten
    docs = [json.loads(line)["id"] for line in (out / "documents" / "part-000003.jsonl").read_text().splitlines()]
    [moved] = [json.loads(line) for line in (out / "duplicates" / "part-000003.jsonl").read_text().splitlines()]
    assert docs == ["a", "b"] and moved["id"] == "x"
    assert moved["metadata"] == {"duplicate_of": "x", "superseded_by": "crawl-2017.warc.gz", "similarity": 0.18,
                                 "dup_cluster": "x"}


@pytest.mark.parametrize("n", [0, 1, 2])
def test_a_partition_with_almost_no_rows(n):
    rows = np.zeros(n, dtype=tasks._ROW)
    assert dedup_steps._shared(rows).tolist() == [n == 2] * n  # two rows of one (band, key) share it


@settings(max_examples=200, deadline=None)
@given(doc_id=st.text(max_size=12), text=st.text(max_size=60), title=st.none() | st.text(max_size=12),
       decided=st.sampled_from(["kept", "duplicate", "self", "none"]))
def test_a_kept_line_copied_as_staged_is_the_line_the_long_way_writes(doc_id, text, title, decided):
    """The filter step copies a staged line as it is when `staged_as_kept` says it holds the kept decision:
    that must be, byte for byte, what parsing it, writing the kept decision into it and dumping it gives; and
    every record a run stages with the kept decision (`stage_as_kept`) takes the short way unless its id
    holds a lone surrogate. A record with any other decision, or none, never passes (text cannot fake one)."""
    from pipeline.dedup import apply_decision, stage_as_kept, staged_as_kept
    from pipeline.document import Document
    from pipeline.io.writer import to_json
    from pipeline.records import record_of

    fake = ',"duplicate_of":null,"dup_cluster":' + json.dumps(doc_id) + ',"similarity":null,"superseded_by":null,'
    record = record_of(Document(doc_id, text + fake, {"title": title or fake}), "stamp")
    if decided == "kept":
        stage_as_kept(record)
    elif decided == "duplicate":
        apply_decision(record, Decision(doc_id, "other", 0.8, "other"))
    elif decided == "self":  # a capture of an id kept before, with the same text: a duplicate of its own id
        apply_decision(record, Decision(doc_id, doc_id, 1.0, doc_id))
    line = to_json(record)
    fast = staged_as_kept(line, doc_id)
    surrogate = any(0xD800 <= ord(c) <= 0xDFFF for c in doc_id)
    assert fast == (decided == "kept" and not surrogate)
    if fast:
        long_way = json.loads(line)
        apply_decision(long_way, Decision(doc_id, None, None, doc_id))
        assert to_json(long_way) == line
    assert not staged_as_kept(line, doc_id + "x")
