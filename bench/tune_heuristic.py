"""Fit the heuristic cleaner's thresholds (`[clean]`) by nested cross-validation over sources and renderers.

    python bench/tune_heuristic.py [--train-data bench/.cache/train_data] [--pages 90] [--random 50]
        [--workers 2] [--shared ../shared]

The pages are bench/train_data.py's renderings (six train/ sources and wcxb-dev; bs4, inscriptis, html2text,
lxml), up to `--pages` a source, the same pages in every renderer. Candidates: the defaults, each key moved
alone over a grid around its default, and `--random` draws that move several keys at once (a fixed seed). Every
candidate cleans every dump once (word F1 per page, as bench/accuracy.py scores), and the scores are cached under
bench/.cache/tune/.

Selection cannot flatter: the figure for a source and a renderer comes from the candidate with the best mean
over the *other* sources and the *other* renderers (each source weighs the same, whatever its size). The table
sets those held-out figures beside the defaults'; the last line is the candidate best on everything, the one to
adopt as the defaults when the held-out figures say it generalises (docs/model.md, "The heuristic's thresholds").
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import hashlib
import json
import multiprocessing
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.config import CleanConfig, load_config  # noqa: E402
from pipeline.document import RawPage  # noqa: E402
from pipeline.evaluate import word_f1  # noqa: E402
from pipeline.rules import load_rules  # noqa: E402
from pipeline.stages.runner import Pipeline  # noqa: E402

# the keys that decide which lines are body, each with the values tried (the default is always among them)
GRID = {
    "good_min_words": (5, 6, 7, 8, 10, 12),
    "good_min_stopword_density": (0.12, 0.15, 0.18, 0.21, 0.25),
    "unpunctuated_min_words": (15, 20, 25, 30, 40),
    "short_max_words": (2, 3, 4, 5, 6),
    "bad_penalty": (4.0, 6.0, 10.0, 15.0, 25.0),
    "short_penalty": (0.5, 1.0, 1.5, 2.5, 4.0),
    "max_short_run": (15, 25, 40, 60),
    "good_weight_cap": (20, 30, 40, 60, 100),
    "link_list_min_lines": (4, 6, 8, 12),
    "link_list_share": (0.6, 0.7, 0.8, 0.9),
    "headline_title_case": (0.5, 0.6, 0.7, 0.8, 0.9),
    "medium_gain": (0.0, 0.25, 0.5, 1.0),
    "repeat_min_words": (2, 3, 4, 6, 8),
}
SEED = 20261207
CACHE = ROOT / "bench" / ".cache" / "tune"


def candidates(draws: int) -> list[dict]:
    """The defaults, each key alone over its grid, then `draws` random moves of several keys (about half)."""
    defaults = CleanConfig()
    out = [{}]
    for key, values in GRID.items():
        out += [{key: v} for v in values if v != getattr(defaults, key)]
    rng = random.Random(SEED)
    seen = {json.dumps(c, sort_keys=True) for c in out}
    wanted = len(out) + draws
    while len(out) < wanted:
        move = {k: rng.choice(vs) for k, vs in GRID.items() if rng.random() < 0.5}
        move = {k: v for k, v in move.items() if v != getattr(defaults, k)}
        name = json.dumps(move, sort_keys=True)
        if move and name not in seen:
            seen.add(name)
            out.append(move)
    return out


def read_dumps(train_data: Path, renderers: list[str], per_source: int, shared: Path) -> list[dict]:
    """Up to `per_source` pages a source (lowest id hash first), each in every renderer, with its gold text."""
    by_renderer: dict[str, dict[str, dict]] = {}
    for renderer in renderers:
        paths = sorted(train_data.rglob(f"{renderer}.jsonl.gz"))
        if not paths:
            raise SystemExit(f"no {renderer} renderings under {train_data}: run bench/train_data.py")
        with gzip.open(paths[0], "rt", encoding="utf-8") as fh:
            records = (json.loads(line) for line in fh)
            by_renderer[renderer] = {r["id"]: {"source": r["source"], "text": "\n".join(i[0] for i in r["lines"])}
                                     for r in records}
    common = set.intersection(*(set(pages) for pages in by_renderer.values()))
    first = by_renderer[renderers[0]]
    chosen: dict[str, list[str]] = {}
    for page_id in sorted(common, key=lambda i: hashlib.sha1(i.encode()).hexdigest()):
        taken = chosen.setdefault(first[page_id]["source"], [])
        if len(taken) < per_source:
            taken.append(page_id)
    dumps = []
    for source in sorted(chosen):
        for page_id in sorted(chosen[source]):
            gold = _gold(shared, page_id)
            for renderer in renderers:
                dumps.append({"id": page_id, "source": source, "renderer": renderer, "gold": gold,
                              "text": by_renderer[renderer][page_id]["text"]})
    return dumps


def _gold(shared: Path, page_id: str) -> str:
    if page_id.startswith("wcxb-dev-"):
        path = shared / "bench" / "wcxb-dev" / "gold" / f"{page_id[len('wcxb-dev-'):]}.json"
    else:
        path = shared / "bench" / "train" / "gold" / f"{page_id}.json"
    return json.loads(path.read_text(encoding="utf-8")).get("text") or ""


_DUMPS: list[dict] = []
_RULES: list = []


def _score(move: dict) -> np.ndarray:
    """Word F1 of every dump cleaned with the defaults changed by `move`."""
    config = load_config()
    config = dataclasses.replace(config, clean=dataclasses.replace(config.clean, method="heuristic", **move))
    pipeline = Pipeline(config, _RULES[0])
    out = np.empty(len(_DUMPS))
    for k, dump in enumerate(_DUMPS):
        page = RawPage(f"{dump['id']}.{dump['renderer']}.txt", dump["id"], dump["text"].encode("utf-8"))
        out[k] = word_f1(pipeline.process(page).document.text, dump["gold"]).f1
    return out


def score_all(moves: list[dict], dumps: list[dict], workers: int) -> np.ndarray:
    """F1 matrix (candidates x dumps), from the cache where the same dumps and candidate were scored before."""
    digest = hashlib.sha1(json.dumps([(d["id"], d["renderer"], d["text"]) for d in dumps]).encode()).hexdigest()
    cache = CACHE / digest[:16]
    cache.mkdir(parents=True, exist_ok=True)
    names = [hashlib.sha1(json.dumps(m, sort_keys=True).encode()).hexdigest()[:16] for m in moves]
    todo = [k for k, name in enumerate(names) if not (cache / f"{name}.npy").exists()]
    _DUMPS[:] = dumps
    _RULES[:] = [load_rules(load_config().rules_dirs)]
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for done, (k, scores) in enumerate(zip(todo, pool.imap(_score, [moves[k] for k in todo]), strict=True)):
            np.save(cache / f"{names[k]}.npy", scores)
            print(f"  candidate {done + 1}/{len(todo)} scored ({time.perf_counter() - started:.0f} s)",
                  file=sys.stderr)
    return np.vstack([np.load(cache / f"{name}.npy") for name in names])


def cell_means(scores: np.ndarray, dumps: list[dict]) -> tuple[np.ndarray, list[str], list[str]]:
    """Mean F1 per candidate x source x renderer."""
    sources = sorted({d["source"] for d in dumps})
    renderers = sorted({d["renderer"] for d in dumps})
    means = np.zeros((len(scores), len(sources), len(renderers)))
    for s, source in enumerate(sources):
        for r, renderer in enumerate(renderers):
            cols = [k for k, d in enumerate(dumps) if d["source"] == source and d["renderer"] == renderer]
            means[:, s, r] = scores[:, cols].mean(axis=1)
    return means, sources, renderers


def held_out(means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each source x renderer: the candidate chosen on the other sources and renderers, and its F1 there."""
    _, n_sources, n_renderers = means.shape
    chosen = np.zeros((n_sources, n_renderers), dtype=int)
    figure = np.zeros((n_sources, n_renderers))
    for s in range(n_sources):
        for r in range(n_renderers):
            rest = np.delete(np.delete(means, s, axis=1), r, axis=2)
            chosen[s, r] = int(np.argmax(rest.mean(axis=(1, 2))))
            figure[s, r] = means[chosen[s, r], s, r]
    return chosen, figure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--train-data", type=Path, default=ROOT / "bench" / ".cache" / "train_data")
    parser.add_argument("--renderers", default="bs4,html2text,inscriptis,lxml")
    parser.add_argument("--pages", type=int, default=90, help="pages a source (default 90)")
    parser.add_argument("--random", type=int, default=50, help="random multi-key candidates (default 50)")
    parser.add_argument("--workers", type=int, default=min(2, multiprocessing.cpu_count()))
    args = parser.parse_args(argv)
    dumps = read_dumps(args.train_data, args.renderers.split(","), args.pages, args.shared)
    moves = candidates(args.random)
    print(f"{len(dumps)} dumps, {len(moves)} candidates", file=sys.stderr)
    means, sources, renderers = cell_means(score_all(moves, dumps, args.workers), dumps)
    chosen, figure = held_out(means)
    print("| source | " + " | ".join(f"{r} default / held-out" for r in renderers) + " |")
    print("|---|" + "---|" * len(renderers))
    for s, source in enumerate(sources):
        cells = [f"{means[0, s, r]:.3f} / {figure[s, r]:.3f}" for r in range(len(renderers))]
        print(f"| {source} | " + " | ".join(cells) + " |")
    print("| mean | " + " | ".join(f"{means[0, :, r].mean():.3f} / {figure[:, r].mean():.3f}"
                                     for r in range(len(renderers))) + " |")
    print(f"\nheld out, all cells: defaults {means[0].mean():.4f}, chosen {figure.mean():.4f}; "
          f"cells better {int((figure > means[0] + 1e-9).sum())}, worse {int((figure < means[0] - 1e-9).sum())} "
          f"of {figure.size}")
    print("candidates chosen in the held-out cells:",
          sorted({json.dumps(moves[k], sort_keys=True) for k in chosen.ravel()}))
    best = int(np.argmax(means.mean(axis=(1, 2))))
    print(f"best on everything: {json.dumps(moves[best], sort_keys=True)} "
          f"(mean {means[best].mean():.4f} against the defaults' {means[0].mean():.4f})")
    one_at_a_time = [(float(means[k].mean() - means[0].mean()), moves[k]) for k in range(1, len(moves))
                     if len(moves[k]) == 1]
    print("best single-key moves:", sorted(one_at_a_time, key=lambda t: -t[0])[:8])
    return 0


if __name__ == "__main__":
    sys.exit(main())
