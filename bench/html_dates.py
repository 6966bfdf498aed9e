"""Dates on the HTML path, per source: trafilatura's markup search alone, its extensive search, and pagewash's fallback.

    python bench/html_dates.py [--limit N] [--workers N]

`[html] extensive_date_search` was decided with these figures (docs/model.md, "Dates on the HTML path"). Only
wcxb-dev has date gold; for dragnet, CleanEval and readability a reference date is read from the first ten lines of
the gold text (the byline or dateline those sources keep) with pagewash's own date parser, so their pages without
one are left out: their date may lie outside the gold text. Each page's metadata comes from
`trafilatura.extract_metadata`, as `bare_extraction` computes it:

- `markup`: no extensive search (`extensive_search = false`, pagewash's call to trafilatura);
- `extensive`: htmldate's extensive search on every page (trafilatura's default);
- `pagewash`: the markup's date, else `pipeline.stages.html.free_text_date` (what `extensive_date_search = true`
  does).

A date is right when it is the reference's calendar day; on a page without a date, when none is given.
"""

from __future__ import annotations

import collections
import gzip
import json
import logging
import multiprocessing
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import labelled  # noqa: E402
from trafilatura.metadata import extract_metadata  # noqa: E402

from pipeline.clean.dates import parse_date  # noqa: E402
from pipeline.rules import load_rules  # noqa: E402
from pipeline.stages.html import date_options, free_text_date  # noqa: E402

SOURCES = ("cleaneval", "dragnet", "readability")  # train/ sources whose gold text carries the byline or dateline
SETTINGS = ("markup", "extensive", "pagewash")
_VOCAB = load_rules().vocab


def reference_date(gold_text: str) -> str | None:
    """The first date in the first ten lines of a gold text (lines of up to 25 words)."""
    for line in gold_text.split("\n")[:10]:
        if len(line.split()) <= 25:
            found = parse_date(line)
            if found:
                return found.isoformat()
    return None


def _date(html: str, url: str | None, extensive: bool) -> str:
    return (extract_metadata(html, default_url=url, date_config=date_options(extensive)).date or "")[:10]


def page_dates(job: tuple[str, str, str]) -> dict | None:
    html_path, gold_path, source = job
    gold = json.loads(Path(gold_path).read_text(encoding="utf-8"))
    reference = (gold.get("date") or "")[:10] if source == "wcxb-dev" else reference_date(gold["text"])
    if source != "wcxb-dev" and not reference:
        return None
    html = gzip.decompress(Path(html_path).read_bytes()).decode("utf-8", errors="replace")
    url = gold.get("url")
    markup = _date(html, url, False)
    found = {"markup": markup, "extensive": _date(html, url, True),
             "pagewash": markup or free_text_date(html, url, _VOCAB) or ""}
    return {"source": source, "reference": reference or "", **found}


def jobs(shared: Path, limit: int) -> list[tuple[str, str, str]]:
    """wcxb-dev's pages and those of SOURCES (CleanEval's two sets as one)."""
    out = []
    for html, gold, source in labelled.html_pages(shared, limit):
        source = source.split("-")[0] if source.startswith("cleaneval") else source
        if source == "wcxb-dev" or source in SOURCES:
            out.append((html, gold, source))
    return out


def table(rows: list[dict]) -> list[str]:
    cells: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for row in rows:
        groups = [row["source"]] + ([f"{row['source']}, no date"] if not row["reference"] else
                                    [f"{row['source']}, dated"] if row["source"] == "wcxb-dev" else [])
        for group in groups:
            cells[group]["pages"] += 1
            for setting in SETTINGS:
                cells[group][setting] += row[setting] == row["reference"]
    lines = ["| source | pages | " + " | ".join(SETTINGS) + " |", "|---" * (len(SETTINGS) + 2) + "|"]
    for group, count in sorted(cells.items()):
        lines.append(f"| {group} | {count['pages']} | "
                     + " | ".join(f"{count[s] / count['pages']:.3f}" for s in SETTINGS) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = labelled.parser(__doc__.split("\n\n")[0]).parse_args(argv)
    logging.disable(logging.WARNING)  # htmldate and trafilatura warn about every odd page
    with multiprocessing.Pool(args.workers) as pool:
        rows = [row for row in pool.map(page_dates, jobs(args.shared, args.limit), chunksize=8) if row]
    print("\n".join(table(rows)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
