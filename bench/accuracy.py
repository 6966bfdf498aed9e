"""Accuracy on the WCXB dev set, beside baselines measured in the same run.

    python bench/accuracy.py [--shared ../shared] [--only dumps|html] [--renderer bs4] [--limit N]

Text dumps (`dumps/{bs4,inscriptis}`): pagewash beside keep-every-line and keep-lines-of-10-or-more-words.
HTML (`html/`): pagewash beside plain `trafilatura.extract` (no comments, metadata from its JSON output).
Metric: shared/bench/README.md (word F1 per page, mean over pages; `with`/`without` snippet rates;
title, author, date exact match).
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import trafilatura  # noqa: E402

from pipeline.config import load_config  # noqa: E402
from pipeline.document import RawPage  # noqa: E402
from pipeline.evaluate import same_authors, same_date, same_title, snippet_found, word_f1  # noqa: E402
from pipeline.runner import Pipeline  # noqa: E402

_WORD = re.compile(r"\w+")


def keep_everything(text: str) -> str:
    return text


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


_PIPELINE: Pipeline | None = None


def _init_worker() -> None:
    global _PIPELINE
    _PIPELINE = Pipeline(load_config())


def _clean(dump: Path) -> tuple[str, dict]:
    outcome = _PIPELINE.process(RawPage(str(dump), dump.name, dump.read_bytes()))
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"))
    parser.add_argument("--renderer", action="append", choices=["bs4", "inscriptis"])
    parser.add_argument("--only", choices=["dumps", "html"], help="one of the two paths only")
    parser.add_argument("--limit", type=int, default=0, help="first N pages only (quick checks)")
    parser.add_argument("--worst", type=int, default=0, help="list the N pages with the lowest F1")
    parser.add_argument("--workers", type=int, default=multiprocessing.cpu_count())
    args = parser.parse_args(argv)
    bench = Path(args.shared) / "bench" / "wcxb-dev"
    renderers = args.renderer or ["bs4", "inscriptis"]
    pool = multiprocessing.Pool(args.workers, initializer=_init_worker)
    print(HEADER)
    all_ours = Tally()
    if args.only == "html":
        renderers = []
    for renderer in renderers:
        tallies = {"keep everything": Tally(), "lines of ≥10 words": Tally(), "pagewash": Tally()}
        worst = []
        dumps = sorted((bench / "dumps" / renderer).glob("*.txt.gz"))
        if args.limit:
            dumps = dumps[: args.limit]
        for dump, (text, meta) in zip(dumps, pool.imap(_clean, dumps, chunksize=8), strict=True):
            page_id = dump.name.split(".")[0]
            gold = json.loads((bench / "gold" / f"{page_id}.json").read_text(encoding="utf-8"))
            raw = gzip.decompress(dump.read_bytes()).decode("utf-8", errors="replace")
            tallies["keep everything"].add(keep_everything(raw), gold)
            tallies["lines of ≥10 words"].add(keep_long_lines(raw), gold)
            tallies["pagewash"].add(text, gold, meta)
            all_ours.add(text, gold, meta)
            worst.append((word_f1(text, gold["text"]).f1, renderer, page_id))
        for name, tally in tallies.items():
            print(tally.row(f"{name} ({renderer})"))
        for f1, rend, page_id in sorted(worst)[: args.worst]:
            print(f"  worst: {rend}/{page_id} F1={f1:.3f}", file=sys.stderr)
    if len(renderers) > 1:
        print(all_ours.row("pagewash (all dumps)"))
    if args.only != "dumps":
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
