"""Accuracy on the WCXB dev set and the train/ sources, beside baselines measured in the same run.

    python bench/accuracy.py [--shared ../shared] [--only dumps|html|train] [--renderer bs4] [--limit N]
        [--cv-dir bench/.cache/cleaner] [--train-data bench/.cache/train_data] [--wrap 80] [--link-refs]

Text dumps (`wcxb-dev/dumps/{bs4,inscriptis}`): the learned cleaner under grouped cross-validation (each page
cleaned by the fold model that never saw its site: `--cv-dir`, written by bench/train_cleaner.py) beside the
heuristic cleaner (`[clean] method = "heuristic"`), keep-every-line and keep-lines-of-10-or-more-words.
`--wrap N` hard-wraps those dumps at N columns first, as lynx and w3m print a page (each piece keeps its line's
indentation): how both cleaners, and their titles above all, hold up on a renderer that wraps. `--link-refs`
cleans wcxb-dev's HTML rendered as `lynx -dump` prints a page by default, emulated (lxml text with `[n]` before
each link's text, wrapped at 79, the links' targets numbered under `References` at the end; lynx itself is kept
for evaluation): how both cleaners hold up on a renderer's link references.
train/ (`--only train`): leave-one-source-out, each source's bs4 and inscriptis renderings from the training data
cleaned by the fold model that never saw that source, beside the heuristic.
HTML (`html/`): pagewash beside plain `trafilatura.extract` (no comments, metadata from its JSON output).
Metric: shared/bench/README.md (word F1 per page, mean over pages; `with`/`without` snippet rates;
title, author, date exact match).
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import multiprocessing
import re
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import trafilatura  # noqa: E402
from train_data import Habits, apply_habits, render_lxml  # noqa: E402

from pipeline.clean.decode import is_gzip  # noqa: E402
from pipeline.clean.linemodel import ModelError, model_bytes, read_bundle  # noqa: E402
from pipeline.config import load_config  # noqa: E402
from pipeline.document import RawPage  # noqa: E402
from pipeline.evaluate import same_authors, same_date, same_title, snippet_found, word_f1  # noqa: E402
from pipeline.stages.runner import Pipeline  # noqa: E402

_WORD = re.compile(r"\w+")


def keep_everything(text: str) -> str:
    return text


def hard_wrap(text: str, width: int) -> str:
    """`text` with every line longer than `width` columns broken between words, as lynx and w3m print a page: the
    pieces keep the line's indentation (up to half the width)."""
    out = []
    for line in text.split("\n"):
        if len(line) <= width:
            out.append(line)
            continue
        indent = line[: len(line) - len(line.lstrip())]
        indent = indent if len(indent) <= width // 2 else ""
        out.extend(textwrap.wrap(line.strip(), width, initial_indent=indent, subsequent_indent=indent,
                                 break_long_words=False, break_on_hyphens=False) or [line])
    return "\n".join(out)


def link_refs_dump(html: str) -> str:
    """The page as lynx prints it by default, emulated (lynx itself renders evaluation dumps, never ours): `[n]`
    before each link's text, lines wrapped at 79 columns, and the links' targets numbered under `References` at
    the end."""
    links: list[str] = []
    habits = Habits("* ", "keep", 79)
    lines = apply_habits(render_lxml(html, habits, links), habits)
    if links:
        lines += ["", "References", ""] + [f"{n:4d}. {target}" for n, target in enumerate(links, 1)]
    return "\n".join(lines)


def keep_long_lines(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if len(_WORD.findall(line)) >= 10)


class Tally:
    def __init__(self) -> None:
        self.p = self.r = self.f = 0.0
        self.pages = 0
        self.with_found = self.with_total = 0
        self.without_avoided = self.without_total = 0
        self.meta = {"title": [0, 0], "author": [0, 0], "date": [0, 0]}

    def add(self, text: str, gold: dict, meta: dict | None = None) -> None:
        score = word_f1(text, gold["text"])
        self.p += score.precision
        self.r += score.recall
        self.f += score.f1
        self.pages += 1
        for snippet in gold.get("with") or []:
            self.with_total += 1
            self.with_found += snippet_found(snippet, text)
        for snippet in gold.get("without") or []:
            self.without_total += 1
            self.without_avoided += not snippet_found(snippet, text)
        if meta is not None:
            for key, same in (("title", same_title), ("author", same_authors), ("date", same_date)):
                if key not in gold:  # a source without that gold (train/ gives titles for readability and wcxb)
                    continue
                self.meta[key][0] += bool(same(meta.get(key), gold.get(key)))
                self.meta[key][1] += 1

    def row(self, name: str) -> str:
        n = max(self.pages, 1)
        w = self.with_found / max(self.with_total, 1)
        wo = self.without_avoided / max(self.without_total, 1)
        metas = " | ".join(
            f"{ok / total:.3f}" if total else "–" for ok, total in self.meta.values()
        )
        return (f"| {name} | {self.pages} | {self.p / n:.3f} | {self.r / n:.3f} | {self.f / n:.3f} "
                f"| {w:.3f} | {wo:.3f} | {metas} |")


_PIPELINES: dict[str, Pipeline] = {}


def _init_worker(cv_dir: str | None = None, folds: int = 0) -> None:
    """One pipeline per cleaner: the packaged default, the heuristic, and each cross-validation fold's model."""
    config = load_config()
    _PIPELINES["default"] = Pipeline(config)
    rules = _PIPELINES["default"].rules
    _PIPELINES["heuristic"] = Pipeline(dataclasses.replace(
        config, clean=dataclasses.replace(config.clean, method="heuristic")), rules)
    _PIPELINES["model"] = Pipeline(dataclasses.replace(
        config, clean=dataclasses.replace(config.clean, method="model")), rules)
    for fold in range(folds):
        model = str(Path(cv_dir) / f"fold-{fold}.model.gz")
        _PIPELINES[f"fold-{fold}"] = Pipeline(dataclasses.replace(
            config, clean=dataclasses.replace(config.clean, method="model", model=model)), rules)


def _clean(dump: Path, cleaner: str = "default") -> tuple[str, dict]:
    return _clean_bytes((str(dump), dump.read_bytes(), cleaner))


def _clean_bytes(job: tuple[str, bytes, str]) -> tuple[str, dict]:
    name, data, cleaner = job
    outcome = _PIPELINES[cleaner].process(RawPage(name, Path(name).name, data))
    meta = outcome.document.metadata
    return outcome.document.text, {k: meta.get(k) for k in ("title", "author", "date")}


def _trafilatura(page: Path) -> tuple[str, dict]:
    html = gzip.decompress(page.read_bytes()).decode("utf-8", errors="replace")
    result = trafilatura.extract(html, include_comments=False, with_metadata=True, output_format="json")
    if not result:
        return "", {}
    data = json.loads(result)
    return data.get("text") or "", {k: data.get(k) for k in ("title", "author", "date")}


HEADER = ("| method | pages | P | R | F1 | with | without | title | author | date |\n"
          "|---|---|---|---|---|---|---|---|---|---|")


def _train_dumps(train_data: Path, renderers: list[str], limit: int) -> list[dict]:
    """The train/ pages' renderings from bench/train_data.py (wcxb-dev's own dumps are read from shared/)."""
    out = []
    for renderer in renderers:
        paths = sorted(train_data.rglob(f"{renderer}.jsonl.gz"))
        if not paths:
            raise SystemExit(f"no {renderer} renderings under {train_data}: run bench/train_data.py")
        taken: dict[str, int] = {}
        with gzip.open(paths[0], "rt", encoding="utf-8") as fh:
            for line in fh:
                record = json.loads(line)
                if record["source"] == "wcxb-dev":
                    continue
                taken[record["source"]] = taken.get(record["source"], 0) + 1
                if limit and taken[record["source"]] > limit:
                    continue
                text = "\n".join(item[0] for item in record["lines"])
                out.append({"id": record["id"], "source": record["source"], "renderer": renderer, "text": text})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"))
    parser.add_argument("--renderer", action="append", choices=["bs4", "inscriptis"])
    parser.add_argument("--only", choices=["dumps", "train", "html"], help="one part only")
    parser.add_argument("--limit", type=int, default=0, help="first N pages (per source) only: quick checks")
    parser.add_argument("--worst", type=int, default=0, help="list the N pages with the lowest F1")
    parser.add_argument("--wrap", type=int, default=0, help="hard-wrap the wcxb-dev dumps at N columns first")
    parser.add_argument("--link-refs", action="store_true",
                        help="wcxb-dev's HTML rendered as lynx prints it by default ([n] link markers, References)")
    parser.add_argument("--workers", type=int, default=multiprocessing.cpu_count())
    parser.add_argument("--cv-dir", type=Path, default=ROOT / "bench" / ".cache" / "cleaner")
    parser.add_argument("--train-data", type=Path, default=ROOT / "bench" / ".cache" / "train_data")
    args = parser.parse_args(argv)
    bench = Path(args.shared) / "bench" / "wcxb-dev"
    renderers = ["link-refs"] if args.link_refs else args.renderer or ["bs4", "inscriptis"]
    folds_path = args.cv_dir / "folds.json"
    cv = folds_path.exists()
    if not cv and args.only != "html":
        print(f"no cross-validation models in {args.cv_dir} (bench/train_cleaner.py writes them): the model rows "
              "use the packaged model, which trained on these pages; they are NOT out-of-sample figures",
              file=sys.stderr)
    folds = json.loads(folds_path.read_text()) if cv else {"folds": 0, "pages": {}}
    model_row = "model (grouped CV)" if cv else "model (packaged, in-sample)"

    def cleaner_of(page_id: str) -> str:
        return f"fold-{folds['pages'][page_id]}" if cv else "model"
    # a model file this pagewash cannot use fails here, once, not in every worker the pool would start again (and
    # without loading LightGBM in this process: its OpenMP threads do not survive the fork into the workers)
    for path in [None] + [str(args.cv_dir / f"fold-{fold}.model.gz") for fold in range(folds["folds"])]:
        try:
            read_bundle(model_bytes(path))
        except ModelError as exc:
            raise SystemExit(f"accuracy: {path or 'the packaged model'}: {exc}") from None
    pool = multiprocessing.Pool(args.workers, initializer=_init_worker, initargs=(str(args.cv_dir), folds["folds"]))
    print(HEADER)
    if args.only in (None, "dumps"):
        model_all, heuristic_all = Tally(), Tally()
        for renderer in renderers:
            tallies = {"keep everything": Tally(), "lines of ≥10 words": Tally(), "heuristic": Tally(),
                       model_row: Tally()}
            worst = []
            folder = bench / ("html" if args.link_refs else f"dumps/{renderer}")
            dumps = sorted(folder.glob("*.gz"))
            if args.limit:
                dumps = dumps[: args.limit]
            jobs = []
            for dump in dumps:
                data = dump.read_bytes()
                if args.link_refs:
                    data = link_refs_dump(gzip.decompress(data).decode("utf-8", errors="replace")).encode()
                elif args.wrap:  # (the emulated lynx dumps are wrapped at 79 already)
                    data = hard_wrap(gzip.decompress(data).decode("utf-8", errors="replace"), args.wrap).encode()
                jobs.append((str(dump), data, cleaner_of(f"wcxb-dev-{dump.name.split('.')[0]}")))
                jobs.append((str(dump), data, "heuristic"))
            results = pool.map(_clean_bytes, jobs, chunksize=8)
            for n, dump in enumerate(dumps):
                (text, meta), (h_text, h_meta) = results[2 * n], results[2 * n + 1]
                page_id = dump.name.split(".")[0]
                gold = json.loads((bench / "gold" / f"{page_id}.json").read_text(encoding="utf-8"))
                data = jobs[2 * n][1]
                raw = (gzip.decompress(data) if is_gzip(data) else data).decode("utf-8", errors="replace")
                tallies["keep everything"].add(keep_everything(raw), gold)
                tallies["lines of ≥10 words"].add(keep_long_lines(raw), gold)
                tallies["heuristic"].add(h_text, gold, h_meta)
                tallies[model_row].add(text, gold, meta)
                model_all.add(text, gold, meta)
                heuristic_all.add(h_text, gold, h_meta)
                worst.append((word_f1(text, gold["text"]).f1, renderer, page_id))
            wrapped = f", wrapped at {args.wrap}" if args.wrap else ""
            for name, tally in tallies.items():
                print(tally.row(f"{name} (wcxb-dev {renderer}{wrapped})"))
            for f1, rend, page_id in sorted(worst)[: args.worst]:
                print(f"  worst: {rend}/{page_id} F1={f1:.3f}", file=sys.stderr)
        if len(renderers) > 1:
            print(heuristic_all.row("heuristic (wcxb-dev, all dumps)"))
            print(model_all.row(f"{model_row} (wcxb-dev, all dumps)"))
    has_train = any(args.train_data.rglob("*.jsonl.gz")) if args.train_data.exists() else False
    if args.only == "train" and not has_train:
        raise SystemExit(f"no training renderings under {args.train_data}: run bench/train_data.py")
    if args.only is None and not has_train:
        print(f"no training renderings under {args.train_data}: the train/ sources are skipped", file=sys.stderr)
    if args.only in (None, "train") and has_train:
        dumps = _train_dumps(args.train_data, renderers, args.limit)
        train_golds = Path(args.shared) / "bench" / "train" / "gold"
        jobs = []
        for d in dumps:
            data = d["text"].encode("utf-8")
            jobs += [(d["id"] + ".txt", data, cleaner_of(d["id"])), (d["id"] + ".txt", data, "heuristic")]
        results = pool.map(_clean_bytes, jobs, chunksize=8)
        cells: dict[tuple[str, str, str], Tally] = {}
        for n, d in enumerate(dumps):
            gold = json.loads((train_golds / f"{d['id']}.json").read_text(encoding="utf-8"))
            for k, name in enumerate(("model (leave-one-source-out)" if cv else model_row, "heuristic")):
                text, meta = results[2 * n + k]
                cells.setdefault((d["source"], d["renderer"], name), Tally()).add(text, gold, meta)
        for (source, renderer, name), tally in sorted(cells.items()):
            print(tally.row(f"{name} ({source} {renderer})"))
    if args.only in (None, "html"):
        pages = sorted((bench / "html").glob("*.html.gz"))
        if args.limit:
            pages = pages[: args.limit]
        ours, theirs = Tally(), Tally()
        golds = [json.loads((bench / "gold" / f"{p.name.split('.')[0]}.json").read_text(encoding="utf-8"))
                 for p in pages]
        for gold, (text, meta) in zip(golds, pool.imap(_trafilatura, pages, chunksize=8), strict=True):
            theirs.add(text, gold, meta)
        for gold, (text, meta) in zip(golds, pool.imap(_clean, pages, chunksize=8), strict=True):
            ours.add(text, gold, meta)
        print(theirs.row("trafilatura.extract (html)"))
        print(ours.row("pagewash (html)"))
    pool.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
