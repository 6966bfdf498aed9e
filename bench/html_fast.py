"""trafilatura's fast mode against its full extraction, per source, and a gate between them (docs/speed.md).

    python bench/html_fast.py [--limit N] [--workers N] [--gates 500,1000,3000]

Every labelled HTML page (wcxb-dev and the six train/ sources) is extracted as pagewash calls
`trafilatura.bare_extraction`, once with `fast=True` (no readability/jusText comparison) and once with `fast=False`,
each timed twice in one process (the faster kept). Word F1 is of trafilatura's own text, before pagewash's rules.
A gate keeps the fast result where it is at least L characters long, has paragraph text and is not table-dominated
(the library's own reasons to prefer readability), and runs the full extraction as well elsewhere; its time is the
fast run's plus, where it fires, the full run's. Timings are ratios within one process: run it on a quiet machine.
"""

from __future__ import annotations

import collections
import gzip
import json
import logging
import multiprocessing
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import labelled  # noqa: E402
import trafilatura  # noqa: E402

from pipeline.evaluate import word_f1  # noqa: E402
from pipeline.stages.html import extraction_options  # noqa: E402


def page_figures(job: tuple[str, str, str]) -> dict:
    html_path, gold_path, source = job
    gold = json.loads(Path(gold_path).read_text(encoding="utf-8"))
    raw = gzip.decompress(Path(html_path).read_bytes())
    out: dict = {"source": source}
    for fast in (True, False, True, False):
        kind = "fast" if fast else "full"
        started = time.perf_counter()
        result = trafilatura.bare_extraction(raw, url=gold.get("url"), **extraction_options(fast))
        out[f"s_{kind}"] = min(out.get(f"s_{kind}", float("inf")), time.perf_counter() - started)
        text = (result.text or "") if result is not None else ""
        out[f"f1_{kind}"], out[f"chars_{kind}"] = word_f1(text, gold["text"]).f1, len(text)
        if fast:
            body = getattr(result, "body", None) if result is not None else None
            out["sound"] = body is not None and bool(body.xpath(".//p//text()")) \
                and len(body.findall(".//table")) <= len(body.findall(".//p"))
    return out


def report(rows: list[dict], gates: list[int]) -> list[str]:
    by_source: dict[str, list[dict]] = collections.defaultdict(list)
    for row in rows:
        by_source[row["source"]].append(row)
    lines = ["| source | pages | F1 fast | F1 full | fast's time over full's | pages whose text differs |",
             "|---|---|---|---|---|---|"]
    for source, group in sorted(by_source.items()):
        n, full_s = len(group), sum(r["s_full"] for r in group)
        lines.append(f"| {source} | {n} | {sum(r['f1_fast'] for r in group) / n:.3f} | "
                     f"{sum(r['f1_full'] for r in group) / n:.3f} | {sum(r['s_fast'] for r in group) / full_s:.2f} | "
                     f"{sum(r['chars_fast'] != r['chars_full'] for r in group)} |")
    lines += ["", "| gate L (characters) | " + " | ".join(sorted(by_source)) + " |",
              "|---" * (len(by_source) + 1) + "|"]
    for least in gates:
        cells = []
        for _source, group in sorted(by_source.items()):
            kept = [r["chars_fast"] >= least and r["sound"] for r in group]
            f1 = sum(r["f1_fast"] if k else r["f1_full"] for r, k in zip(group, kept, strict=True)) / len(group)
            seconds = sum(r["s_fast"] + (0 if k else r["s_full"]) for r, k in zip(group, kept, strict=True))
            cells.append(f"F1 {f1:.3f}, time {seconds / sum(r['s_full'] for r in group):.2f}, "
                         f"fires {1 - sum(kept) / len(group):.2f}")
        lines.append(f"| {least} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = labelled.parser(__doc__.split("\n\n")[0])
    parser.add_argument("--gates", default="500,1000,1500,3000,5000")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    with multiprocessing.Pool(args.workers) as pool:
        rows = pool.map(page_figures, labelled.html_pages(args.shared, args.limit), chunksize=4)
    print("\n".join(report(rows, [int(g) for g in args.gates.split(",")])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
