"""Near-duplicate detection on a labelled set built from the WCXB dev gold texts, beside baselines.

    python bench/dedup.py [--shared ../shared] [--seed 1] [--json] [--scale N | --run N]
                          [--threshold T --ngram N --num-perm P --bands B --rows R]

The set: every gold story of at least 80 words, published as "headline line + body". About 60 % of the
stories get 1-4 syndicated variants, each made by 1-3 edits that wire copy and re-scrapes show: another
headline, a byline, a boilerplate footer or related-links block, truncation to 60-90 %, sentences
inserted or dropped, a few typos, a re-scrape that differs only in case, spacing and punctuation.
A story and its variants share one label. About 15 % of the stories also get a "same event, other
story": the same headline, lead sentence and ~10 % of its sentences, the rest drawn from many other
stories; it has a label of its own and must stay apart. Different gold stories always have different labels.

Metrics: adjusted Rand index over all documents, pairwise precision and recall (pairs put in one cluster),
documents per second on one core for pagewash (signatures + clustering), exact-hash dedup (normalise +
hash) and datasketch (MinHash + MinHashLSH with the same num_perm, threshold and shingles; candidates
linked as the library returns them, unverified). Exit 1 if ARI < 0.95 or pairwise precision < 0.99.

`--run N [--workers W] [--partitions P]` builds an output folder holding N cleaned documents awaiting dedup
and times `pagewash run`'s four dedup steps on it, with the driver's memory beside the signatures' size.

`--scale N` instead times N synthetic ~600-word documents (sentences sampled from the gold texts, 20 %
near-copies): signatures per second on one core, index + clustering (resolve and stage into a SQLite file),
the memory they allocate beside the signatures' own size (N x num_perm x 4 bytes), and the time to resolve
a later batch of N/10 new documents (20 % near-copies) against the N indexed ones.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import re
import resource
import sqlite3
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.config import DedupConfig  # noqa: E402
from pipeline.dedup import DedupIndex, DedupItem, exact_key, fingerprint, normalise  # noqa: E402

ACCEPT_ARI, ACCEPT_PRECISION = 0.95, 0.99
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"\w+")

BYLINES = ["By {name} | Associated Press", "By {name}, Reuters", "{name} / AFP", "Story by {name} for the Wire",
           "By {name}\nPublished {date}", "Written by {name} · {date}"]
NAMES = ["Maria Lopez", "John Carter", "Aiko Tanaka", "Samuel Okafor", "Lena Fischer", "Ravi Patel"]
FOOTERS = [
    "This story was originally published by {site}. Republished with permission.\n"
    "Copyright 2025 {site}. All rights reserved. This material may not be published, broadcast, "
    "rewritten or redistributed.",
    "Sign up for our daily newsletter to get the latest stories delivered to your inbox.\n"
    "Follow us on Facebook, Twitter and Instagram.",
    "Have a news tip? Contact our newsroom at tips@{site}.\nCorrections: we are committed to accuracy; "
    "if you spot an error, let us know.",
]
SITES = ["example-news.com", "dailywire.example", "metro.example.org", "globe.example.net"]


# --- the labelled set ---------------------------------------------------------------------------------

@dataclasses.dataclass
class Story:
    title: str
    sentences: list[str]


def load_stories(gold_dir: Path) -> list[Story]:
    stories = []
    for path in sorted(gold_dir.glob("*.json")):
        gold = json.loads(path.read_text(encoding="utf-8"))
        text = gold.get("text") or ""
        if len(_WORD.findall(text)) < 80:
            continue
        sentences = [s for block in text.split("\n") for s in _SENTENCE.split(block.strip()) if s]
        stories.append(Story((gold.get("title") or "").strip() or sentences[0], sentences))
    return stories


def publish(title: str, sentences: list[str]) -> str:
    return title + "\n" + " ".join(sentences)


def typo(word: str, rng: random.Random) -> str:
    if len(word) < 4:
        return word
    i = rng.randrange(len(word) - 1)
    if rng.random() < 0.5:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    return word[:i] + word[i + 1:]


def variant(story: Story, others: list[Story], rng: random.Random) -> str:
    """One syndicated copy: 1-3 edits from the ones wire copy and re-scrapes show."""
    title, sentences = story.title, list(story.sentences)
    head, tail = [], []
    edits = rng.sample(["headline", "byline", "footer", "related", "truncate", "insert", "drop", "typos",
                        "rescrape"], rng.randint(1, 3))
    for edit in edits:
        if edit == "headline":
            title = rng.choice(["UPDATE: ", "", "Wire: ", "WATCH: "]) + rng.choice(others).title
        elif edit == "byline":
            head.append(rng.choice(BYLINES).format(name=rng.choice(NAMES), date="June 3, 2025"))
        elif edit == "footer":
            tail.append(rng.choice(FOOTERS).format(site=rng.choice(SITES)))
        elif edit == "related":
            tail.append("Related stories\n" + "\n".join(rng.choice(others).title for _ in range(rng.randint(3, 6))))
        elif edit == "truncate":
            words = sum(len(s.split()) for s in sentences)
            keep, total = rng.uniform(0.6, 0.9) * words, 0
            for i, s in enumerate(sentences):
                total += len(s.split())
                if total >= keep:
                    sentences = sentences[:i + 1]
                    break
            tail.append("Read the full story at " + rng.choice(SITES))
        elif edit == "insert":
            for _ in range(rng.randint(1, 3)):
                sentences.insert(rng.randint(1, len(sentences)), rng.choice(rng.choice(others).sentences))
        elif edit == "drop" and len(sentences) > 3:
            for _ in range(rng.randint(1, 2)):
                sentences.pop(rng.randrange(1, len(sentences)))
        elif edit == "typos":
            words = " ".join(sentences).split(" ")
            for _ in range(rng.randint(2, 6)):
                i = rng.randrange(len(words))
                words[i] = typo(words[i], rng)
            sentences = [" ".join(words)]
        elif edit == "rescrape":
            title = title.upper()
            sentences = [s.replace(", ", " , ").replace("’", "'") for s in sentences]
    return "\n".join(head + [publish(title, sentences)] + tail)


def same_event(story: Story, others: list[Story], rng: random.Random) -> str:
    """Another outlet's story on the same event: the same headline, lead and a quote or fact now and then,
    told in other sentences (drawn from many other stories, so that it copies none of them)."""
    body = [story.sentences[0]]
    while len(body) < len(story.sentences):
        body.append(rng.choice(rng.choice(others).sentences))
    for s in story.sentences[1:]:
        if rng.random() < 0.1:
            body.insert(rng.randint(1, len(body)), s)
    return publish(story.title, body)


def build_set(stories: list[Story], seed: int) -> tuple[list[str], list[int], Counter]:
    """Texts, their labels, and how many of each kind were made."""
    rng = random.Random(seed)
    texts, labels, kinds = [], [], Counter()
    label = 0
    for k, story in enumerate(stories):
        others = stories[:k] + stories[k + 1:]
        texts.append(publish(story.title, story.sentences))
        labels.append(label)
        kinds["originals"] += 1
        if rng.random() < 0.6:
            for _ in range(rng.randint(1, 4)):
                texts.append(variant(story, others, rng))
                labels.append(label)
                kinds["variants"] += 1
        label += 1
        if rng.random() < 0.15:
            texts.append(same_event(story, others, rng))
            labels.append(label)
            kinds["same-event stories"] += 1
            label += 1
    order = list(range(len(texts)))
    rng.shuffle(order)
    return [texts[i] for i in order], [labels[i] for i in order], kinds


# --- metrics ------------------------------------------------------------------------------------------

def pair_scores(truth: list, predicted: list) -> dict:
    """Adjusted Rand index (Hubert and Arabie) and pairwise precision and recall from the contingency table."""
    n = len(truth)
    cells = Counter(zip(truth, predicted, strict=True))
    same_both = sum(math.comb(c, 2) for c in cells.values())
    same_truth = sum(math.comb(c, 2) for c in Counter(truth).values())
    same_pred = sum(math.comb(c, 2) for c in Counter(predicted).values())
    expected = same_truth * same_pred / math.comb(n, 2) if n > 1 else 0.0
    top = (same_truth + same_pred) / 2
    ari = 1.0 if top == expected else (same_both - expected) / (top - expected)
    return {"ari": ari, "precision": same_both / same_pred if same_pred else 1.0,
            "recall": same_both / same_truth if same_truth else 1.0, "clusters": len(set(predicted))}


# --- methods ------------------------------------------------------------------------------------------

def run_pagewash(texts: list[str], cfg: DedupConfig) -> tuple[list[str], float]:
    started = time.perf_counter()
    items = []
    for i, text in enumerate(texts):
        exact, sig = fingerprint(text, cfg)
        items.append(DedupItem(f"{i:07d}", len(text), None, exact, sig))
    decisions = DedupIndex(sqlite3.connect(":memory:", isolation_level=None), cfg).resolve(items)
    return [d.cluster for d in decisions], time.perf_counter() - started


def run_exact(texts: list[str]) -> tuple[list[str], float]:
    started = time.perf_counter()
    keys = [exact_key(text) for text in texts]
    return keys, time.perf_counter() - started


def run_datasketch(texts: list[str], cfg: DedupConfig) -> tuple[list[int], float, tuple[int, int]]:
    from datasketch import MinHash, MinHashLSH

    started = time.perf_counter()
    lsh = MinHashLSH(threshold=cfg.threshold, num_perm=cfg.num_perm)
    hashes = []
    for i, text in enumerate(texts):
        words = normalise(text).split()
        n = cfg.ngram
        shingles = {" ".join(words[j:j + n]) for j in range(max(len(words) - n + 1, 1))}
        minhash = MinHash(num_perm=cfg.num_perm, seed=cfg.seed)
        minhash.update_batch([s.encode("utf-8") for s in shingles])
        lsh.insert(i, minhash)
        hashes.append(minhash)
    parent = list(range(len(texts)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, minhash in enumerate(hashes):
        for j in lsh.query(minhash):
            parent[find(j)] = find(i)
    return [find(i) for i in range(len(texts))], time.perf_counter() - started, (lsh.b, lsh.r)


# --- scale --------------------------------------------------------------------------------------------

def synthetic(stories: list[Story], count: int, seed: int) -> list[str]:
    """~600-word documents of sentences sampled from the gold texts; 20 % are near-copies of an earlier one."""
    rng = random.Random(seed)
    pool = [s for story in stories for s in story.sentences if len(s.split()) >= 5]
    texts: list[str] = []
    for _ in range(count):
        if texts and rng.random() < 0.2:
            sentences = _SENTENCE.split(rng.choice(texts))
            for _ in range(rng.randint(1, 3)):
                sentences.pop(rng.randrange(len(sentences)))
            sentences.insert(rng.randint(0, len(sentences)), rng.choice(pool))
            texts.append(" ".join(sentences) + " " + rng.choice(FOOTERS).format(site=rng.choice(SITES)))
            continue
        sentences, words = [], 0
        while words < 600:
            sentences.append(rng.choice(pool))
            words += len(sentences[-1].split())
        texts.append(" ".join(sentences))
    return texts


def scale(stories: list[Story], count: int, cfg: DedupConfig, seed: int) -> dict:
    texts = synthetic(stories, count + count // 10, seed)
    words = sum(len(t.split()) for t in texts) / len(texts)
    started = time.perf_counter()
    fingerprints = [fingerprint(text, cfg) for text in texts]
    sign_seconds = time.perf_counter() - started
    items = [DedupItem(f"{i:08d}", len(text), None, exact, sig)
             for i, (text, (exact, sig)) in enumerate(zip(texts, fingerprints, strict=True))]
    later = items[count:]  # a later run's new documents, 20 % of them near-copies of indexed ones
    items = items[:count]
    del texts, fingerprints
    result = {"documents": count, "mean_words": round(words, 1),
              "signatures_per_second": round(len(later + items) / sign_seconds)}
    sign_seconds *= count / (count + len(later))
    with tempfile.TemporaryDirectory() as tmp:
        for run in ("time", "memory"):
            db = sqlite3.connect(Path(tmp) / f"{run}.sqlite", isolation_level=None)
            index = DedupIndex(db, cfg)
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            if run == "memory":
                tracemalloc.start()
            started = time.perf_counter()
            decisions = index.resolve(items)
            resolved = time.perf_counter()
            db.execute("BEGIN")
            index.stage(items, decisions)
            db.execute("COMMIT")
            staged = time.perf_counter()
            if run == "time":
                rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                later_started = time.perf_counter()
                later_decisions = index.resolve(later)
                result.update(
                    resolve_seconds=round(resolved - started, 2), stage_seconds=round(staged - resolved, 2),
                    index_and_clustering_seconds=round(staged - started, 2),
                    signatures_and_clustering_per_second=round(count / (sign_seconds + resolved - started)),
                    duplicates=sum(d.duplicate_of is not None for d in decisions),
                    later_batch=len(later),
                    later_batch_resolve_seconds=round(time.perf_counter() - later_started, 2),
                    later_batch_duplicates=sum(d.duplicate_of is not None for d in later_decisions),
                    rss_growth_mb=round((rss_after - rss_before) / 1024, 1),
                    index_file_mb=round((Path(tmp) / "time.sqlite").stat().st_size / 2**20, 1))
            else:
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
                result.update(traced_peak_mb=round(peak / 2**20, 1),
                              signature_mb=round(count * cfg.num_perm * 4 / 2**20, 1),
                              traced_peak_bytes_per_document=round(peak / count),
                              signature_bytes_per_document=cfg.num_perm * 4)
            db.close()
    return result


# --- the run path: the four dedup steps of `pagewash run` ---------------------------------------------

def run_path(count: int, cfg: DedupConfig, seed: int, workers: int, shard_pages: int = 2000) -> dict:
    """An output folder holding `count` cleaned documents awaiting dedup (as a run leaves it after its clean
    phase), then `pagewash run` over an empty input folder: only its dedup phase works. Signatures are
    synthetic (random slots; 20 % near copies keeping 75-95 % of an earlier document's slots, 5 % exact
    copies), which exercises the steps as real text would without spending minutes on MinHash."""
    import subprocess

    import numpy as np

    from pipeline.state import STATE_DIR, RunState

    staged = f"{STATE_DIR}/staged"
    rng = np.random.default_rng(seed)
    result = {"documents": count, "workers": workers, "partitions": cfg.partitions,
              "signature_mb": round(count * cfg.num_perm * 4 / 2**20, 1)}
    with tempfile.TemporaryDirectory() as tmp:
        raw, out = Path(tmp) / "raw", Path(tmp) / "out"
        raw.mkdir()
        state = RunState(out / STATE_DIR)
        run_id = state.begin_run("bench")
        sigs = np.empty((count, cfg.num_perm), dtype=np.uint32)
        exacts: list[str] = []
        for seq, start in enumerate(range(0, count, shard_pages)):
            n = min(shard_pages, count - start)
            pending, outputs, lines = [], [], []
            for pos in range(n):
                k = start + pos
                draw = rng.random()
                if k and draw < 0.25:
                    source = int(rng.integers(0, k))
                    sigs[k] = sigs[source]
                    if draw < 0.05:
                        exacts.append(exacts[source])
                    else:
                        changed = rng.random(cfg.num_perm) < rng.uniform(0.05, 0.25)
                        sigs[k, changed] = rng.integers(0, 2**32, size=int(changed.sum()), dtype=np.uint32)
                        exacts.append(rng.bytes(16).hex())
                else:
                    sigs[k] = rng.integers(0, 2**32, size=cfg.num_perm, dtype=np.uint32)
                    exacts.append(rng.bytes(16).hex())
                doc_id = f"{k:040x}"
                pending.append((doc_id, f"in{seq}", seq, pos, 3000, None, exacts[k], sigs[k].tobytes()))
                outputs.append((doc_id, f"in{seq}", "documents"))
                lines.append(json.dumps({"id": doc_id, "text": f"document {k}",
                                         "metadata": {"source_path": f"raw/in{seq}"}}))
            (out / staged).mkdir(parents=True, exist_ok=True)
            (out / staged / f"part-{seq:06d}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
            state.commit_shard(seq, run_id, "staged", {staged: n}, [], outputs, pending)
        state.end_run(run_id, "interrupted", "bench", {})
        state.close()
        del sigs, exacts
        config = Path(tmp) / "pagewash.toml"
        config.write_text(f"[dedup]\npartitions = {cfg.partitions}\n", encoding="utf-8")
        proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "-q", "run", str(raw), "-o", str(out),
                               "--workers", str(workers), "--config", str(config)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr)
        report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    dedup = report["dedup"]
    driver = dedup["driver_rss_mb"]
    result.update(duplicates=dedup["duplicates"], seconds=dedup["seconds"], steps=dedup["steps"],
                  driver_rss_before_mb=driver["before"], driver_peak_mb=driver["peak"],
                  driver_peak_over_signatures=round(driver["peak"] / result["signature_mb"], 2),
                  driver_growth_mb=round(driver["peak"] - driver["before"], 1),
                  largest_worker_mb=report["peak_rss_mb"]["largest_worker"])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"))
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated set (not the MinHash seed)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--scale", type=int, default=0, metavar="N", help="time N synthetic 600-word documents")
    parser.add_argument("--run", type=int, default=0, metavar="N",
                        help="the dedup steps of `pagewash run` over N documents: time and the driver's memory")
    parser.add_argument("--workers", type=int, default=2, help="workers of the --run measurement (0: in-process)")
    parser.add_argument("--partitions", type=int, default=DedupConfig().partitions, help="for --run")
    parser.add_argument("--no-datasketch", action="store_true", help="skip the (slow) datasketch baseline")
    for name in ("threshold", "ngram", "num_perm", "bands", "rows"):
        kind = float if name == "threshold" else int
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, help="override the default")
    args = parser.parse_args(argv)
    cfg = dataclasses.replace(DedupConfig(), **{k: v for k in ("threshold", "ngram", "num_perm", "bands", "rows")
                                                if (v := getattr(args, k)) is not None})
    stories = load_stories(Path(args.shared) / "bench" / "wcxb-dev" / "gold")
    params = {k: getattr(cfg, k) for k in ("threshold", "ngram", "num_perm", "bands", "rows", "seed")}
    if args.run:
        cfg = dataclasses.replace(cfg, partitions=args.partitions)
        result = {"params": params, **run_path(args.run, cfg, args.seed, args.workers)}
        print(json.dumps(result, indent=1) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
        return 0
    if args.scale:
        result = {"params": params, **scale(stories, args.scale, cfg, args.seed)}
        print(json.dumps(result, indent=1) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
        return 0
    texts, labels, kinds = build_set(stories, args.seed)
    rows = {}
    clusters, seconds = run_pagewash(texts, cfg)
    rows["pagewash (exact + MinHash LSH, verified)"] = {**pair_scores(labels, clusters), "seconds": seconds}
    clusters, seconds = run_exact(texts)
    rows["exact hash of normalised text"] = {**pair_scores(labels, clusters), "seconds": seconds}
    if not args.no_datasketch:
        clusters, seconds, (b, r) = run_datasketch(texts, cfg)
        rows[f"datasketch MinHashLSH ({b}x{r}, unverified)"] = {**pair_scores(labels, clusters), "seconds": seconds}
    for row in rows.values():
        row["docs_per_second"] = round(len(texts) / row.pop("seconds"))
    ours = rows["pagewash (exact + MinHash LSH, verified)"]
    passed = ours["ari"] >= ACCEPT_ARI and ours["precision"] >= ACCEPT_PRECISION
    words = sum(len(_WORD.findall(t)) for t in texts) / len(texts)
    summary = {"params": params, "set_seed": args.seed, "documents": len(texts), "true_clusters": len(set(labels)),
               **kinds, "mean_words": round(words), "methods": rows, "accepted": passed}
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(f"{len(texts)} documents ({', '.join(f'{v} {k}' for k, v in kinds.items())}), mean {words:.0f} words, "
              f"{len(set(labels))} true clusters; set seed {args.seed}; params {params}")
        print("| method | clusters | ARI | pairwise P | pairwise R | docs/s (1 core) |\n|---|---|---|---|---|---|")
        for name, row in rows.items():
            print(f"| {name} | {row['clusters']} | {row['ari']:.4f} | {row['precision']:.4f} "
                  f"| {row['recall']:.4f} | {row['docs_per_second']:,} |")
        print(f"acceptance (ARI >= {ACCEPT_ARI}, precision >= {ACCEPT_PRECISION}): {'pass' if passed else 'FAIL'}")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
