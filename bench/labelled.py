"""The labelled HTML pages of `../shared/bench` (wcxb-dev and the six train/ sources) and the options the small
per-source benches share (bench/html_dates.py, bench/html_fast.py)."""

from __future__ import annotations

import argparse
import multiprocessing
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def source_of(page_id: str) -> str:
    """A train/ page's source from its id: `cleaneval-dev`, `cleaneval-final`, `dragnet`, `portal`, `readability`,
    or `wcxb non-articles` (wcxb-dev's articles are in their own folder)."""
    if page_id.startswith("cleaneval-"):
        return page_id.rsplit("-", 1)[0]
    return "wcxb non-articles" if page_id.startswith("wcxb-") else page_id.split("-")[0]


def html_pages(shared: Path, limit: int = 0) -> list[tuple[str, str, str]]:
    """(HTML file, gold file, source) of every labelled page, wcxb-dev first; `limit`: the first N of each source."""
    dev = shared / "bench" / "wcxb-dev"
    out = [(str(path), str(dev / "gold" / f"{path.name[:-len('.html.gz')]}.json"), "wcxb-dev")
           for path in sorted((dev / "html").glob("*.html.gz"))[: limit or None]]
    train = shared / "bench" / "train"
    by_source: dict[str, list[Path]] = {}
    for path in sorted((train / "html").glob("*.html.gz")):
        by_source.setdefault(source_of(path.name[:-len(".html.gz")]), []).append(path)
    for source, paths in sorted(by_source.items()):
        out += [(str(path), str(train / "gold" / f"{path.name[:-len('.html.gz')]}.json"), source)
                for path in paths[: limit or None]]
    return out


def parser(description: str) -> argparse.ArgumentParser:
    """`--shared`, `--limit` and `--workers`, as every per-source bench takes them."""
    out = argparse.ArgumentParser(description=description)
    out.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    out.add_argument("--limit", type=int, default=0, help="first N pages of each source only")
    out.add_argument("--workers", type=int, default=multiprocessing.cpu_count())
    return out
