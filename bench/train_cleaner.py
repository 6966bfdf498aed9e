"""Train the learned text-dump cleaner (pipeline/linemodel.py) from the rendered, labelled pages of
bench/train_data.py, with grouped cross-validation folds for bench/accuracy.py.

    python bench/train_cleaner.py [--data DIR ...] [--sources wcxb,readability] [--renderers bs4,inscriptis,...]
        [--out pipeline/models/cleaner.model.gz] [--cv-dir bench/.cache/cleaner] [--threads 2] [--rounds 100]

Folds (docs/model.md): fold k holds out one train/ source (leave-one-source-out) and one fifth of wcxb-dev's
domains; a page whose domain is held out never trains that fold, whatever its source. Stage 2 learns from the
first stage's out-of-fold probabilities; each fold's model is written to `<cv-dir>/fold-<k>.model.gz`, with
`<cv-dir>/folds.json` naming every page's fold, so that bench/accuracy.py scores each page with the model that
never saw it (nor its site). The body thresholds of each fold (one for the lines the heuristic cleaner keeps, one
for the others: its vote, docs/model.md) are chosen on the other folds' pages only, from out-of-fold
probabilities with the rules and section cuts of a run.

Deterministic: fixed seeds, LightGBM's deterministic mode, a fixed thread count (`--threads`), pages in id order:
the same data and settings give the same model bytes.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.clean.decode import normalise_text  # noqa: E402
from pipeline.clean.header_candidates import (  # noqa: E402
    AUTHOR_FEATURES,
    TITLE_FEATURES,
    author_candidates,
    title_candidates,
)
from pipeline.clean.header_model import (  # noqa: E402
    author_choice,
    header_from_model,
    metadata_probabilities,
    ranked_choice,
)
from pipeline.clean.linefeatures import BASE_NAMES, CONTEXT_NAMES, FEATURES_VERSION, context_matrix  # noqa: E402
from pipeline.clean.linemodel import META_CLASSES, LineModel  # noqa: E402
from pipeline.clean.modelclean import (  # noqa: E402
    apply_cuts,
    clean_with_model,
    heuristic_votes,
    prepare,
    section_markers,
)
from pipeline.clean.stopwords import StopwordIndex  # noqa: E402
from pipeline.config import CleanConfig  # noqa: E402
from pipeline.evaluate import same_authors, same_title, tokens  # noqa: E402
from pipeline.rules import load_rules  # noqa: E402

# How far each source's gold follows the article convention (the story; no comments, related items, navigation):
# its pages' weight in training (docs/model.md).
SOURCE_WEIGHTS = {"wcxb-dev": 1.0, "dragnet": 1.0, "portal": 1.0, "readability": 0.7, "cleaneval": 0.4, "wcxb": 0.4}
PAGE_ROWS = 300  # lines of a page beyond this share its weight: a 5,000-line page does not outweigh 15 articles
THRESHOLDS = [round(0.25 + 0.05 * k, 2) for k in range(11)]  # 0.25 .. 0.75
# thresholds for the lines the heuristic cleaner keeps (its vote), at most the threshold of the others
KEPT_THRESHOLDS = [round(0.05 * k, 2) for k in range(1, 16)]  # 0.05 .. 0.75
WCXB_DEV_GROUPS = 5
# sources whose gold titles follow WCXB's convention (the headline, no `| Site`): the title ranker learns from them;
# only wcxb-dev gives authors
TITLE_SOURCES = ("wcxb-dev", "wcxb")
AUTHOR_SOURCES = ("wcxb-dev",)
RANKER_ROUNDS = 200
AUTHOR_MINS = [round(0.05 * k, 2) for k in range(1, 11)]  # the author ranker's least score: chosen by inner CV
SEED = 20261201


def source_group(source: str) -> str:
    return "cleaneval" if source.startswith("cleaneval") else source


def domain_group(domain: str | None, groups: int) -> int:
    return int.from_bytes(hashlib.sha1((domain or "").encode("utf-8")).digest()[:4], "big") % groups


def assign_folds(pages: list[dict]) -> tuple[dict[str, int], int, list[str]]:
    """page id -> fold. Train/ sources one fold each (sorted); wcxb-dev pages by domain over the same folds."""
    sources = sorted({source_group(p["source"]) for p in pages if p["source"] != "wcxb-dev"})
    k = len(sources) if len(sources) >= 2 else WCXB_DEV_GROUPS
    folds = {}
    for p in pages:
        group = source_group(p["source"])
        if group != "wcxb-dev" and len(sources) >= 2:
            folds[p["id"]] = sources.index(group)
        else:
            folds[p["id"]] = domain_group(p["domain"], k)
    return folds, k, sources


_RULES = None
_STOP = None
_FOLD_MODELS: list[LineModel] = []


def _init(fold_bundles: tuple[bytes, ...] = ()) -> None:
    global _RULES, _STOP, _FOLD_MODELS
    _RULES = load_rules(())
    _STOP = StopwordIndex.load()
    _FOLD_MODELS = [LineModel.from_bytes(data) for data in fold_bundles]


def featurise(record: dict) -> dict:
    lines = [normalise_text(line).replace("\n", " ") for line, _label, _in in record["lines"]]
    text = "\n".join(lines)
    stop = _STOP.guess(text)
    page = prepare(lines, _RULES, stop)
    labels = record["lines"]
    y_body = np.array([labels[r][2] for r in page.rows], dtype=np.int8)
    y_meta = np.array([META_CLASSES.index(labels[r][1]) if labels[r][1] in META_CLASSES else 0 for r in page.rows],
                      dtype=np.int8)
    drop = np.array([page.hits.dropping(j) is not None for j in range(len(page.rows))], dtype=bool)
    return {"id": record["id"], "source": record["source"], "domain": record["domain"], "renderer": record["renderer"],
            "text": text if source_group(record["source"]) in TITLE_SOURCES else None,
            "X": page.features, "y_body": y_body, "y_meta": y_meta, "trimmed": page.trimmed, "drop": drop,
            "vote": heuristic_votes(page, _RULES, stop, CleanConfig()), "markers": section_markers(page),
            "words": [len(t.split()) for t in page.trimmed]}


def header_examples(job: tuple[str, int, str, str | None]) -> dict:
    """One page's title and author candidates as the pipeline sees them (cleaned by the fold model that never saw
    the page): their features, their values, which of them match the gold, and the title and author without the
    rankers. `gold_author` None: the source gives no author (no author examples)."""
    text, fold, gold_title, gold_author = job
    model = _FOLD_MODELS[fold]
    result = clean_with_model(text, _RULES, _STOP.guess(text), CleanConfig(), model)
    probs = metadata_probabilities(result.scores.meta, result.article_end)
    out = {"title": {"X": np.zeros((0, len(TITLE_FEATURES))), "values": [], "y": np.zeros(0, dtype=np.int8)},
           "author": {"X": np.zeros((0, len(AUTHOR_FEATURES))), "values": [], "y": np.zeros(0, dtype=np.int8)}}
    if result.rows:
        _order, values, features = title_candidates(result.verdicts, probs, result.scores.body, result.rows,
                                                    _RULES.vocab)
        out["title"] = {"X": features, "values": values,
                        "y": np.array([bool(v) and same_title(v, gold_title) for v in values], dtype=np.int8)}
        if gold_author is not None:
            _lines, names, features = author_candidates(result.verdicts, probs, result.rows, _RULES, result.stopwords)
            out["author"] = {"X": features, "values": names,
                             "y": np.array([bool(gold_author) and same_authors(v, gold_author) for v in names],
                                           dtype=np.int8)}
    plain = header_from_model(result.verdicts, result.scores.meta, result.rows, _RULES, None, result.article_end)
    out["title"]["plain"], out["author"]["plain"] = plain.title, plain.author
    return out


def fit_ranker(X: np.ndarray, y: np.ndarray, names: tuple[str, ...], threads: int, groups: list[int] | None = None):
    """A binary classifier of candidates, or with `groups` (each page's candidate count, in order) a lambdarank
    ranker that orders each page's candidates: the title ranker picks one headline a page and is a ranker (out of
    fold, wcxb-dev's four renderings: title accuracy .693 -> .704 with the same features; no least score); the
    author ranker must also say "none" and stays a classifier with its least score."""
    import lightgbm

    params = {"objective": "lambdarank" if groups else "binary", "learning_rate": 0.05, "num_leaves": 15,
              "min_data_in_leaf": 20, "verbose": -1, "seed": SEED, "deterministic": True, "force_row_wise": True,
              "num_threads": threads}
    data = lightgbm.Dataset(X, label=y, feature_name=list(names), params={"verbose": -1})
    if groups:
        data.set_group(groups)
    return lightgbm.train(params, data, num_boost_round=RANKER_ROUNDS)


def train_rankers(examples: list[dict], golds_of: list[tuple[str, str | None]], fold_of: np.ndarray,
                  usable: list[np.ndarray], threads: int) -> tuple[list[dict], dict, dict]:
    """The title and author rankers of each fold (from the pages `usable[f]` marks) and the shipped ones (from all),
    and the least author score of each: the one with the best out-of-fold accuracy on its training pages (an inner
    cross-validation over their folds). Returns the fold bundles' additions, the shipped one's, and a report of the
    out-of-fold accuracy: (example, right without the rankers, right with them) per kind."""
    k = len(usable)
    kinds = {"title": TITLE_FEATURES, "author": AUTHOR_FEATURES}

    def fit_on(kind: str, mask: np.ndarray):
        use = [n for n in np.flatnonzero(mask).tolist() if len(examples[n][kind]["y"])]
        if kind == "title":  # a ranker learns from the pages where one of the candidates is the title
            use = [n for n in use if examples[n][kind]["y"].any()]
        if not use or not any(examples[n][kind]["y"].any() for n in use):
            return None
        groups = [len(examples[n][kind]["y"]) for n in use] if kind == "title" else None
        return fit_ranker(np.vstack([examples[n][kind]["X"] for n in use]),
                          np.concatenate([examples[n][kind]["y"] for n in use]), kinds[kind], threads, groups)

    def named(example: dict, choice: int | None) -> str | None:
        return example["values"][choice] if choice is not None else None

    def scores_of(ranker, kind: str, n: int) -> np.ndarray:
        X = examples[n][kind]["X"]
        return ranker.predict(X, num_threads=threads) if ranker is not None and len(X) else np.zeros(0)

    def least_score(mask: np.ndarray, inner_folds: list[int]) -> float:
        """Inner CV over `inner_folds` of the pages in `mask` that have author gold."""
        has = mask & np.array([golds_of[n][1] is not None for n in range(len(examples))])
        right = np.zeros(len(AUTHOR_MINS))
        for g in inner_folds:
            ranker = fit_on("author", has & (fold_of != g))
            for n in np.flatnonzero(has & (fold_of == g)).tolist():
                s = scores_of(ranker, "author", n)
                for m, least in enumerate(AUTHOR_MINS):
                    right[m] += same_authors(named(examples[n]["author"], author_choice(s, least)), golds_of[n][1])
        return AUTHOR_MINS[int(np.argmax(right))]

    everything = np.ones(len(examples), dtype=bool)
    fold_rankers = []
    for f in range(k):
        title, author = fit_on("title", usable[f]), fit_on("author", usable[f])
        least = least_score(usable[f], [g for g in range(k) if g != f]) if author is not None else 0.5
        fold_rankers.append({"title": title, "author": author, "author_min": least})
    shipped = {"title": fit_on("title", everything), "author": fit_on("author", everything),
               "author_min": least_score(everything, list(range(k)))}
    report = {"title": [], "author": []}
    for n, example in enumerate(examples):
        rankers = fold_rankers[int(fold_of[n])]
        title_scores = scores_of(rankers["title"], "title", n)
        title = named(example["title"], ranked_choice(example["title"]["values"], title_scores))
        report["title"].append((n, same_title(example["title"]["plain"], golds_of[n][0]),
                                bool(title) and same_title(title, golds_of[n][0])))
        if golds_of[n][1] is not None:
            author = named(example["author"], author_choice(scores_of(rankers["author"], "author", n),
                                                            rankers["author_min"]))
            report["author"].append((n, same_authors(example["author"]["plain"], golds_of[n][1]),
                                     same_authors(author, golds_of[n][1])))
    return fold_rankers, shipped, report


def read_records(paths: list[Path], sources: list[str] | None) -> list[dict]:
    out = []
    for path in paths:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                record = json.loads(line)
                if sources and not any(record["source"] == s or record["source"].startswith(s + "-")
                                       or source_group(record["source"]) == s for s in sources):
                    continue
                out.append(record)
    out.sort(key=lambda r: (r["id"], r["renderer"]))
    return out


def _params(threads: int, multiclass: bool) -> dict:
    params = {
        "objective": "multiclass" if multiclass else "binary", "learning_rate": 0.1, "num_leaves": 63,
        "min_data_in_leaf": 100, "feature_fraction": 0.8, "bagging_fraction": 0.5, "bagging_freq": 1,
        "lambda_l2": 1.0, "max_bin": 63, "verbose": -1, "seed": SEED, "deterministic": True,
        "force_row_wise": True, "num_threads": threads,
    }
    if multiclass:
        params.update(num_class=len(META_CLASSES), num_leaves=31)
    return params


def fit(X: np.ndarray, y: np.ndarray, w: np.ndarray, names: list[str], threads: int, rounds: int,
        multiclass: bool = False):
    import lightgbm

    data = lightgbm.Dataset(X, label=y, weight=w, feature_name=list(names), free_raw_data=True,
                            params={"max_bin": 63, "verbose": -1})
    return lightgbm.train(_params(threads, multiclass), data, num_boost_round=rounds)


PAIRS = [(t, k) for t in THRESHOLDS for k in KEPT_THRESHOLDS if k <= t]  # (threshold, threshold_kept)


def page_f1(page: dict, p: np.ndarray, gold: str) -> np.ndarray:
    """The page's word F1 (pipeline.evaluate.word_f1) for each pair of PAIRS, with the rules and section cuts of
    clean_with_model (not its removal of repeated lines): one matrix product over the lines' word counts, not one
    text a pair."""
    ref_ids: dict[str, int] = {}
    gold_tokens = tokens(gold)
    for token in gold_tokens:
        ref_ids.setdefault(token, len(ref_ids))
    other = len(ref_ids)  # every word the gold does not have
    counts = np.zeros((len(page["trimmed"]), other + 1))
    for j, line in enumerate(page["trimmed"]):
        ids = [ref_ids.get(token, other) for token in tokens(line)]
        counts[j] = np.bincount(ids, minlength=other + 1) if ids else 0
    ref = np.bincount([ref_ids[t] for t in gold_tokens], minlength=other + 1)[:other]
    t = np.array([pair[0] for pair in PAIRS])[:, None]
    k = np.array([pair[1] for pair in PAIRS])[:, None]
    markers = page["markers"]
    keep = ((p[None, :] >= np.where(page["vote"][None, :], k, t)) | np.array(markers.forced, dtype=bool)[None, :]
            ) & ~page["drop"][None, :]
    if any(markers.after) or any(markers.before):  # the section cuts, as clean_with_model makes them
        for row in keep:
            kept = row.tolist()
            apply_cuts(markers, kept, [None] * len(kept), page["words"], p)
            row[:] = kept
    pred = keep.astype(np.float64) @ counts
    overlap = np.minimum(pred[:, :other], ref[None, :]).sum(axis=1)
    total, ref_total = pred.sum(axis=1), ref.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        precision, recall = overlap / total, overlap / ref_total
        f1 = np.where(overlap > 0, 2 * precision * recall / (precision + recall), 0.0)
    return f1


def bundle_bytes(stage1, stage2, meta, thresholds: tuple[float, float], info: dict, rankers: dict | None = None
                 ) -> bytes:
    bundle = {
        "features_version": FEATURES_VERSION, "base_names": list(BASE_NAMES), "context_names": list(CONTEXT_NAMES),
        "threshold": thresholds[0], "threshold_kept": thresholds[1], **info,
        "stage1": stage1.model_to_string(), "stage2": stage2.model_to_string(), "meta": meta.model_to_string(),
    }
    rankers = rankers or {}
    if rankers.get("title") is not None:
        bundle.update(title_ranker=rankers["title"].model_to_string(), title_features=list(TITLE_FEATURES))
    if rankers.get("author") is not None:
        bundle.update(author_ranker=rankers["author"].model_to_string(), author_features=list(AUTHOR_FEATURES),
                      author_min=rankers["author_min"])
    raw = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as fh:
        fh.write(json.dumps(bundle, sort_keys=True).encode("utf-8"))
    return raw.getvalue()


def golds(shared: Path, ids: set[str], field: str = "text") -> dict[str, str]:
    out = {}
    for page_id in ids:
        if page_id.startswith("wcxb-dev-"):
            path = shared / "bench" / "wcxb-dev" / "gold" / f"{page_id[len('wcxb-dev-'):]}.json"
        else:
            path = shared / "bench" / "train" / "gold" / f"{page_id}.json"
        out[page_id] = json.loads(path.read_text(encoding="utf-8")).get(field) or ""
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--data", type=Path, nargs="+", default=[ROOT / "bench" / ".cache" / "train_data"])
    parser.add_argument("--sources", help="comma-separated sources to train on (default: all)")
    parser.add_argument("--renderers", help="comma-separated renderers to train on (default: all found)")
    parser.add_argument("--out", type=Path, default=ROOT / "pipeline" / "models" / "cleaner.model.gz")
    parser.add_argument("--cv-dir", type=Path, default=ROOT / "bench" / ".cache" / "cleaner")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--workers", type=int, default=min(2, multiprocessing.cpu_count()))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    renderers = set(args.renderers.split(",")) if args.renderers else None
    paths = sorted(p for d in args.data for p in d.rglob("*.jsonl.gz")
                   if renderers is None or p.name.split(".")[0] in renderers)
    if not paths:
        raise SystemExit(f"no training data under {', '.join(map(str, args.data))}: run bench/train_data.py first")
    sources = args.sources.split(",") if args.sources else None
    records = read_records(paths, sources)
    if not records:
        raise SystemExit("no pages of the selected sources in the training data")
    with multiprocessing.Pool(args.workers, initializer=_init) as pool:
        pages = pool.map(featurise, records, chunksize=16)
    del records
    print(f"features: {len(pages)} dumps, {sum(len(p['X']) for p in pages)} lines "
          f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    folds, k, train_sources = assign_folds(pages)
    page_fold = np.array([folds[p["id"]] for p in pages])
    heldout_domains = [{p["domain"] for p in pages if folds[p["id"]] == f and p["domain"]} for f in range(k)]
    sizes = np.array([len(p["X"]) for p in pages])
    offsets = np.concatenate(([0], np.cumsum(sizes)))
    X = np.vstack([p["X"] for p in pages])
    y_body = np.concatenate([p["y_body"] for p in pages])
    y_meta = np.concatenate([p["y_meta"] for p in pages])
    page_w = np.array([SOURCE_WEIGHTS.get(source_group(p["source"]), 1.0) * min(1.0, PAGE_ROWS / max(len(p["X"]), 1))
                       for p in pages])
    w = np.repeat(page_w, sizes)
    row_page = np.repeat(np.arange(len(pages)), sizes)
    # Title, byline and date lines are labelled from gold metadata, which wcxb-dev gives for all three; readability
    # and wcxb give a title only (their bylines would be taught as "other"), so they train it only without wcxb-dev.
    meta_pages = np.array([p["source"] == "wcxb-dev" for p in pages])
    if not meta_pages.any():
        meta_pages = np.array([p["source"] in ("readability", "wcxb") for p in pages])
    if not meta_pages.any():
        meta_pages[:] = True

    def train_mask(f: int | None, only: np.ndarray | None = None) -> np.ndarray:
        ok = np.ones(len(pages), dtype=bool) if f is None else np.array(
            [page_fold[i] != f and p["domain"] not in heldout_domains[f] for i, p in enumerate(pages)])
        if only is not None:
            ok &= only
        return ok[row_page]

    def context(p: np.ndarray) -> np.ndarray:
        return np.vstack([context_matrix(p[offsets[i]:offsets[i + 1]], X[offsets[i]:offsets[i + 1], 0])
                          for i in range(len(pages))])

    def oof(models, inputs: np.ndarray, multiclass: bool = False) -> np.ndarray:
        out = np.zeros((len(inputs), len(META_CLASSES))) if multiclass else np.zeros(len(inputs))
        for f, model in enumerate(models):
            rows = page_fold[row_page] == f
            if rows.any():
                out[rows] = model.predict(inputs[rows], num_threads=args.threads)
        return out

    names2 = BASE_NAMES + CONTEXT_NAMES
    stage1 = [fit(X[m], y_body[m], w[m], BASE_NAMES, args.threads, args.rounds) for m in map(train_mask, range(k))]
    p1 = oof(stage1, X)
    print(f"stage 1: {k} folds ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    X2 = np.hstack((X, context(p1)))
    stage2 = [fit(X2[m], y_body[m], w[m], names2, args.threads, args.rounds) for m in map(train_mask, range(k))]
    p2 = oof(stage2, X2)
    del X2
    print(f"stage 2: {k} folds ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    X3 = np.hstack((X, context(p2)))
    meta_models = []
    for f in range(k):
        m = train_mask(f, meta_pages)
        if not m.any():  # the fold holds out every page with metadata gold: learn from the other pages' labels
            m = train_mask(f)
        meta_models.append(fit(X3[m], y_meta[m], w[m], names2, args.threads, max(args.rounds // 2, 10), True))
    print(f"meta: {k} folds ({time.perf_counter() - started:.0f} s)", file=sys.stderr)

    # Thresholds: the mean word F1 over article-convention pages, per pair of PAIRS (the threshold of the lines the
    # heuristic drops, of those it keeps), from out-of-fold probabilities.
    article = [i for i, p in enumerate(pages) if source_group(p["source"]) in ("wcxb-dev", "dragnet", "portal",
                                                                              "readability")]
    gold = golds(args.shared, {pages[i]["id"] for i in article})
    f1 = np.zeros((len(pages), len(PAIRS)))
    for i in article:
        f1[i] = page_f1(pages[i], p2[offsets[i]:offsets[i + 1]], gold[pages[i]["id"]])
    in_article = np.zeros(len(pages), dtype=bool)
    in_article[article] = True

    groups = np.array([source_group(p["source"]) for p in pages])

    def best_threshold(mask: np.ndarray) -> tuple[float, float]:
        """The thresholds of the best mean over sources, each source's pages averaged first: dragnet's 1,349 pages
        (whose best threshold is higher than the other sources') do not outvote the rest."""
        curves = [f1[mask & (groups == g)].mean(axis=0) for g in sorted(set(groups[mask].tolist()))]
        if not curves:
            return 0.5, 0.5
        return PAIRS[int(np.argmax(np.mean(curves, axis=0)))]

    info = {"sources": sorted({p["source"] for p in pages}), "renderers": sorted({p["renderer"] for p in pages}),
            "rounds": args.rounds, "source_weights": SOURCE_WEIGHTS, "seed": SEED, "folds": k,
            "fold_sources": train_sources, "lines": int(len(X)), "dumps": len(pages)}
    args.cv_dir.mkdir(parents=True, exist_ok=True)
    fold_thresholds = [best_threshold(in_article & (page_fold != f)) for f in range(k)]

    # The title and author rankers learn from the candidates of each page as cleaned by the fold model that never
    # saw it; fold k's rankers from the pages of the other folds (and not of fold k's held-out domains).
    titled = [i for i, p in enumerate(pages) if p["text"] is not None]
    title_gold = golds(args.shared, {pages[i]["id"] for i in titled}, "title")
    titled = [i for i in titled if title_gold[pages[i]["id"]]]
    author_gold = golds(args.shared, {pages[i]["id"] for i in titled if pages[i]["source"] in AUTHOR_SOURCES},
                        "author")
    rankers: list[dict] = [{}] * k
    shipped_rankers: dict = {}
    header_report: dict = {}
    if titled:
        fold_bundles = tuple(bundle_bytes(stage1[f], stage2[f], meta_models[f], fold_thresholds[f], {**info, "fold": f})
                             for f in range(k))
        golds_of = [(title_gold[pages[i]["id"]], author_gold.get(pages[i]["id"])) for i in titled]
        # spawned, not forked: a child forked after LightGBM has run its OpenMP threads here hangs in its first predict
        with multiprocessing.get_context("spawn").Pool(args.workers, initializer=_init,
                                                       initargs=(fold_bundles,)) as pool:
            examples = pool.map(header_examples, [(pages[i]["text"], int(page_fold[i]), *golds_of[n])
                                                  for n, i in enumerate(titled)], chunksize=8)
        ex_fold = page_fold[titled]
        usable = [np.array([ex_fold[n] != f and pages[i]["domain"] not in heldout_domains[f]
                            for n, i in enumerate(titled)]) for f in range(k)]
        rankers, shipped_rankers, report = train_rankers(examples, golds_of, ex_fold, usable, args.threads)
        header_report = {}
        for kind, rows in report.items():
            counts: dict[str, list[int]] = {}
            for n, plain, ranked in rows:
                i = titled[n]
                cell = counts.setdefault(f"{source_group(pages[i]['source'])}/{pages[i]['renderer']}", [0, 0, 0])
                cell[0] += 1
                cell[1] += bool(plain)
                cell[2] += bool(ranked)
            header_report[kind] = {key: {"pages": a, "without ranker": round(b / a, 3), "ranker": round(c / a, 3)}
                                   for key, (a, b, c) in sorted(counts.items())}
        header_report["author_min"] = {"folds": [r["author_min"] for r in rankers],
                                       "shipped": shipped_rankers["author_min"]}
        print(f"header rankers: {len(titled)} dumps ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    for f in range(k):
        (args.cv_dir / f"fold-{f}.model.gz").write_bytes(
            bundle_bytes(stage1[f], stage2[f], meta_models[f], fold_thresholds[f], {**info, "fold": f}, rankers[f]))
    (args.cv_dir / "folds.json").write_text(json.dumps(
        {"folds": k, "fold_sources": train_sources, "pages": dict(sorted(folds.items()))}, indent=0) + "\n")
    np.savez_compressed(args.cv_dir / "oof.npz", p1=p1.astype(np.float32), p2=p2.astype(np.float32),
                        offsets=offsets, ids=np.array([p["id"] for p in pages]),
                        renderers=np.array([p["renderer"] for p in pages]), thresholds=np.array(PAIRS), f1=f1)
    oof_report = {}
    for source in sorted({source_group(pages[i]["source"]) for i in article}):
        curve = f1[groups == source].mean(axis=0)
        one = [n for n, (t, k) in enumerate(PAIRS) if t == k]  # one threshold for every line: no vote
        oof_report[source] = {"one threshold": {str(PAIRS[n][0]): round(float(curve[n]), 4) for n in one},
                              "best pair": [*PAIRS[int(np.argmax(curve))], round(float(curve.max()), 4)]}
    # The shipped model: every page trains it; stage 2 and meta learn from the out-of-fold probabilities.
    final1 = fit(X, y_body, w, BASE_NAMES, args.threads, args.rounds)
    X2 = np.hstack((X, context(p1)))
    final2 = fit(X2, y_body, w, names2, args.threads, args.rounds)
    del X2
    m = train_mask(None, meta_pages)
    final_meta = fit(X3[m], y_meta[m], w[m], names2, args.threads, max(args.rounds // 2, 10), True)
    threshold = best_threshold(in_article)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    data = bundle_bytes(final1, final2, final_meta, threshold, info, shipped_rankers)
    args.out.write_bytes(data)
    print(json.dumps({"model": str(args.out), "bytes": len(data), "thresholds": threshold,
                      "oof_f1_by_source_and_threshold": oof_report, "oof_header_accuracy": header_report,
                      "seconds": round(time.perf_counter() - started)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
