"""The HTML views (`OUT/report.html`, `explain --html`) in a real headless Chromium: they render (a screenshot
that is not blank, the charts' and lines' elements in the DOM after load), log no console error, and ask for
nothing over the network. Skipped where no Chromium is installed (`make test` installs Debian's as root)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SEEDS_RAW, seed_corpus

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (make test installs it as root)")
_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync")


def _browse(page: Path, tmp: Path) -> tuple[str, bytes, str, str]:
    """(DOM after load, screenshot PNG, console lines, the URLs the page asked for) of `page` in Chromium."""
    profile, shot, netlog = tmp / "profile", tmp / "shot.png", tmp / "net.json"
    url = page.resolve().as_uri()
    common = [CHROMIUM, *_FLAGS, f"--user-data-dir={profile}"]
    dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    proc = subprocess.run([*common, "--window-size=1200,1400", f"--screenshot={shot}", "--enable-logging=stderr",
                           "--v=0", f"--log-net-log={netlog}", url], capture_output=True, text=True, timeout=120)
    console = "\n".join(line for line in proc.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line)
    urls = " ".join(sorted(set(re.findall(r'"url":"([^"]+)"', netlog.read_text(errors="replace")))))
    return dom, shot.read_bytes(), console, urls


# Chromium's own background requests (time, sign-in, component updates), made whatever page is open
_BROWSER_HOSTS = re.compile(r"^(https?://)?([\w-]+\.)*(google\.com|gvt1\.com|googleapis\.com|gstatic\.com)(/|$)")


def _check(dom: str, png: bytes, console: str, urls: str) -> None:
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 30_000, len(png)  # a blank page compresses to ~5 kB
    assert console == "", console
    fetched = [u for u in urls.split() if re.match(r"(https?|wss?)://", u) and not _BROWSER_HOSTS.match(u)]
    assert fetched == [], fetched  # nothing but file:// asked for by the page
    # and nothing in the page that could ask: no remote src/href, CSS import or url(), no script that fetches
    assert not re.search(r'(src|href|action|poster|srcset)="(https?:)?//', dom), "a remote reference"
    assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//|fetch\(|XMLHttpRequest|WebSocket|import\(", dom)


@pytest.fixture(scope="module")
def output(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("views")
    raw = seed_corpus(base / "raw")
    out = base / "out"
    subprocess.run([sys.executable, str(ROOT / "cli.py"), "-q", "run", str(raw), "-o", str(out), "--workers", "1",
                    "--max-error-rate", "0.5"], check=True)
    return out


def test_the_run_report_renders_offline_with_its_charts(output: Path, tmp_path: Path):
    page = output / "report.html"
    dom, png, console, urls = _browse(page, tmp_path)
    _check(dom, png, console, urls)
    charts = re.findall(r'<figure class="chart" data-chart="([^"]+)"', dom)
    assert {"inputs by outcome", "rejects by reason", "rules hit (lines dropped)", "rules hit (words removed)",
            "languages", "top hosts", "duplicate clusters by size", "how copies were linked",
            "inputs read, by kind"} <= set(charts)
    report = json.loads((output / "report.json").read_text(encoding="utf-8"))
    assert report["input_kinds"] == {"page": 7} and len(report["settings_digest"]) == 12
    assert report["settings_digest"] in dom
    assert dom.count('class="bar"') >= 20 and "binary.txt" in dom  # bars drawn; a reject's example named
    assert re.search(r'href="documents/part-000000\.jsonl\.gz"', dom)  # links to the shards
    if os.environ.get("PAGEWASH_SCREENSHOTS"):  # docs/: refreshed by hand, shown in the README
        shutil.copy(tmp_path / "shot.png", Path(os.environ["PAGEWASH_SCREENSHOTS"]) / "report.png")


def test_stats_remakes_the_report(output: Path):
    (output / "report.html").unlink()
    subprocess.run([sys.executable, str(ROOT / "cli.py"), "stats", str(output), "--html"], check=True,
                   capture_output=True)
    assert "pagewash run report" in (output / "report.html").read_text(encoding="utf-8")


def test_the_explain_page_renders_offline_with_every_line(tmp_path: Path):
    seed = sorted(SEEDS_RAW.glob("*.txt"))[0]
    page = tmp_path / "explain.html"
    subprocess.run([sys.executable, str(ROOT / "cli.py"), "explain", str(seed), "--html", str(page)], check=True)
    dom, png, console, urls = _browse(page, tmp_path)
    _check(dom, png, console, urls)
    lines = re.findall(r'<tr class="(keep|drop|meta)" data-verdict="\1" data-rule="([^"]*)"', dom)
    explained = subprocess.run([sys.executable, str(ROOT / "cli.py"), "explain", str(seed), "--json"],
                               capture_output=True, text=True, check=True).stdout.splitlines()
    objects = [json.loads(line) for line in explained]
    assert [(o["verdict"], o["rule"] or "") for o in objects if "verdict" in o] == lines
    assert {"keep", "drop", "meta"} <= {verdict for verdict, _rule in lines}
    assert '<select id="rule-filter">' in dom and "nav.menu" in dom and "Menu and header links" in dom  # described
    if os.environ.get("PAGEWASH_SCREENSHOTS"):
        shutil.copy(tmp_path / "shot.png", Path(os.environ["PAGEWASH_SCREENSHOTS"]) / "explain.png")
