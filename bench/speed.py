"""Throughput, scaling, memory and the no-op rerun of `pagewash run`, beside plain trafilatura, in one run.

    python bench/speed.py [--pages 20000] [--html-pages 2000] [--small 2000] [--workers 1,2] [--rounds 5] [--json]

Inputs are the WCXB dev pages (`../shared/bench/wcxb-dev`), repeated under new names until there are
`--pages` text dumps and `--html-pages` HTML pages; each copy gets one line of its own so that copies are
distinct files (dedup still sees them as the near-duplicates they are, as it would in a real crawl).
Every pagewash figure is a real `pagewash run` subprocess (start-up, reading, cleaning, dedup, writing):
- text dumps with 1 and 2 workers: pages/s, MB/s, pages/s per worker, speed-up of 2 over 1; and with one worker
  and the learned cleaner (`[clean] method = "model"`): its pages/s over the default heuristic's;
- HTML with 1 worker beside `trafilatura.extract` over the same pages in one process, plain and with
  `with_metadata=True` (the same work as pagewash's: title, author, date, site): time per page;
- peak RSS of the driver and of the largest worker at `--small` pages and at `--pages` pages;
- a rerun over the `--pages` output with nothing new: wall seconds;
- with `--rounds N`: issue 20's two ratios N times over, pagewash and trafilatura timed back to back in each
  round, and their median, least and greatest.
Quote ratios (same run, same machine), not absolute figures: these machines are noisy.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT.parent / "shared" / "bench" / "wcxb-dev"


def build_corpus(folder: Path, sources: list[Path], pages: int, suffix: str) -> int:
    """`pages` files cycling over `sources`, each with one line of its own; returns the bytes written."""
    folder.mkdir(parents=True)
    texts = [gzip.decompress(p.read_bytes()) for p in sources]
    total = 0
    for n in range(pages):
        data = texts[n % len(texts)]
        tag = f"\ncopy {n}\n".encode() if suffix == ".txt" else f"<!-- copy {n} -->".encode()
        blob = data + tag
        (folder / f"{n:06d}{suffix}").write_bytes(blob)
        total += len(blob)
    return total


def pagewash_run(raw: Path, out: Path, workers: int, executor: str = "local", config: Path | None = None) -> dict:
    args = [sys.executable, str(ROOT / "cli.py"), "-q", "run", str(raw), "-o", str(out), "--workers", str(workers),
            "--no-progress", "--max-error-rate", "1"]
    if config is not None:
        args += ["--config", str(config)]
    args += ["--executor", executor]
    started = time.perf_counter()
    # a pinned processed_at, so that runs with different executors can be compared byte for byte
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1760000000"}
    proc = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=env)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"pagewash run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    return {"wall_s": round(wall, 2), "pages": report["pages"], "documents": report["documents"],
            "duplicates": report["duplicates"], "peak_rss_mb": report["peak_rss_mb"],
            "dedup": {k: report["dedup"].get(k) for k in ("seconds", "steps", "driver_rss_mb")},
            "inputs": report["inputs"]}


_TRAFILATURA = """
import sys, time, trafilatura
from pathlib import Path
paths = sorted(Path(sys.argv[1]).iterdir())
with_metadata = sys.argv[2] == "metadata"
started = time.perf_counter()
for path in paths:
    trafilatura.extract(path.read_bytes().decode("utf-8", errors="replace"), with_metadata=with_metadata)
print(time.perf_counter() - started)
"""


def trafilatura_seconds(raw: Path, with_metadata: bool = False) -> float:
    """trafilatura.extract over every page, one process (import time excluded): plain (the issue's baseline),
    or with_metadata=True, which does the work pagewash does on HTML (title, author, date, site)."""
    proc = subprocess.run([sys.executable, "-c", _TRAFILATURA, str(raw), "metadata" if with_metadata else "plain"],
                          capture_output=True, text=True, check=True)
    return float(proc.stdout.strip().splitlines()[-1])


def profile(pages: int, top: int = 12) -> dict:
    """Where one page's time goes: each stage's mean milliseconds a page (the pipeline's own stage clocks), for
    text dumps and HTML pages in one process, then the functions with the most cumulative time (cProfile)."""
    import cProfile
    import pstats

    from pipeline.config import load_config
    from pipeline.document import RawPage
    from pipeline.records import Counters
    from pipeline.stages.runner import Pipeline

    pipeline = Pipeline(load_config())
    found: dict = {}
    for kind, folder, pattern in (("text", DEV / "dumps" / "bs4", "*.txt.gz"), ("html", DEV / "html", "*.html.gz")):
        paths = sorted(folder.glob(pattern))[:pages]
        datas = [(p.name, gzip.decompress(p.read_bytes())) for p in paths]
        counters = Counters()
        pipeline.process(RawPage("warm", "warm", datas[0][1]), Counters())  # first-use costs out of the figures
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for name, data in datas:
            pipeline.process(RawPage(name, name, data), counters)
        profiler.disable()
        wall = time.perf_counter() - started
        stats = pstats.Stats(profiler)
        functions = sorted(((value[3], f"{Path(func[0]).name}:{func[1]} {func[2]}") for func, value in
                            stats.stats.items()), reverse=True)[:top]
        found[kind] = {"pages": len(datas), "ms_per_page": round(1000 * wall / len(datas), 2),
                       "stages_ms_per_page": {stage: round(1000 * sec / len(datas), 2) for stage, sec in
                                              sorted(counters.stage_seconds.items(), key=lambda kv: -kv[1])},
                       "top_cumulative_ms_per_page": {name: round(1000 * sec / len(datas), 2)
                                                      for sec, name in functions}}
    return found


def _spread(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"median": round(statistics.median(ordered), 3), "least": round(ordered[0], 3),
            "greatest": round(ordered[-1], 3), "each": [round(v, 3) for v in values]}


def ratio_rounds(tmp: Path, rounds: int, pages: int, html_pages: int) -> dict:
    """Issue 20's ratios measured `rounds` times, the four timings of a round back to back (their order rotating
    from round to round), so that each ratio compares runs made within a minute of each other."""
    text_ratios, html_ratios, plain_ratios = [], [], []
    for k in range(rounds):
        timings: dict[str, float] = {}
        jobs = [
            ("text", lambda k=k: pagewash_run(tmp / "text", tmp / f"round_text_{k}", 1)["wall_s"]),
            ("plain", lambda: trafilatura_seconds(tmp / "html")),
            ("html", lambda k=k: pagewash_run(tmp / "html", tmp / f"round_html_{k}", 1)["wall_s"]),
            ("metadata", lambda: trafilatura_seconds(tmp / "html", with_metadata=True)),
        ]
        for name, job in jobs[k % len(jobs):] + jobs[:k % len(jobs)]:
            timings[name] = job()
        text_ratios.append((pages / timings["text"]) / (html_pages / timings["plain"]))
        html_ratios.append(timings["html"] / timings["metadata"])
        plain_ratios.append(timings["html"] / timings["plain"])
        for name in ("text", "html"):
            shutil.rmtree(tmp / f"round_{name}_{k}", ignore_errors=True)
    return {"rounds": rounds, "text_over_trafilatura_pages_per_s": _spread(text_ratios),
            "html_over_trafilatura_metadata_time": _spread(html_ratios),
            "html_over_trafilatura_plain_time": _spread(plain_ratios)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=20_000, help="text dumps in the large run")
    parser.add_argument("--small", type=int, default=2_000, help="text dumps in the small run (memory)")
    parser.add_argument("--html-pages", type=int, default=2_000, help="HTML pages (pagewash and trafilatura)")
    parser.add_argument("--workers", default="1,2", help="worker counts for the scaling figures")
    parser.add_argument("--executor", choices=("local", "ray"), default="local",
                        help="ray: also run the text corpus on a local Ray with the largest worker count, "
                             "beside the local pool in the same run")
    parser.add_argument("--skip-html", action="store_true", help="no HTML or trafilatura figures")
    parser.add_argument("--skip-memory", action="store_true", help="no small run for the memory comparison")
    parser.add_argument("--rounds", type=int, default=1, metavar="N",
                        help="also measure issue 20's two ratios N times, each round timing pagewash and trafilatura "
                             "back to back (text dumps with 1 worker over plain trafilatura's pages/s; HTML whole runs "
                             "over trafilatura with metadata), and print their median, least and greatest: on a noisy "
                             "machine a single sequence of runs can be off by a third")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--profile", type=int, nargs="?", const=200, metavar="PAGES",
                        help="only: where a page's time goes, stage by stage and by function (default 200 pages "
                             "of each kind, one process, under cProfile: its overhead inflates the figures)")
    args = parser.parse_args()
    if args.profile:
        found = profile(args.profile)
        if args.json:
            print(json.dumps(found, indent=2))
            return 0
        for kind, figures in found.items():
            print(f"{kind}: {figures['pages']} pages, {figures['ms_per_page']} ms/page under cProfile")
            for stage, ms in figures["stages_ms_per_page"].items():
                print(f"  stage {stage:<12} {ms:8.2f} ms/page")
            print("  most cumulative time:")
            for name, ms in figures["top_cumulative_ms_per_page"].items():
                print(f"    {ms:8.2f} ms/page  {name}")
        return 0
    worker_counts = [int(w) for w in args.workers.split(",")]
    results: dict = {"cores": len(os.sched_getaffinity(0))}
    with tempfile.TemporaryDirectory(prefix="pagewash-speed-") as tmp:
        tmp = Path(tmp)
        dumps = sorted((DEV / "dumps" / "bs4").glob("*.txt.gz"))
        html = sorted((DEV / "html").glob("*.html.gz"))
        big_bytes = build_corpus(tmp / "text", dumps, args.pages, ".txt")
        build_corpus(tmp / "text_small", dumps, args.small, ".txt")
        html_bytes = build_corpus(tmp / "html", html, args.html_pages, ".html")

        text = {}
        for workers in worker_counts:
            run = pagewash_run(tmp / "text", tmp / f"out_text_{workers}", workers)
            run["pages_per_s"] = round(run["pages"] / run["wall_s"], 1)
            run["pages_per_s_per_worker"] = round(run["pages_per_s"] / workers, 1)
            first = worker_counts[0]
            if first in text:  # scaling efficiency: speed-up over the fewest workers, per added worker
                run["efficiency"] = round(text[first]["wall_s"] / run["wall_s"] / (workers / first), 3)
            run["mb_per_s"] = round(big_bytes / 1e6 / run["wall_s"], 2)
            text[workers] = run
        results["text"] = text
        # the learned cleaner beside the default (heuristic) one, one worker each, same pages, same run
        model_toml = tmp / "model.toml"
        model_toml.write_text('[clean]\nmethod = "model"\n', encoding="utf-8")
        run = pagewash_run(tmp / "text", tmp / "out_text_model", 1, config=model_toml)
        run["pages_per_s"] = round(run["pages"] / run["wall_s"], 1)
        results["text_model"] = run
        if 1 in text:
            results["model_over_heuristic_pages_per_s"] = round(run["pages_per_s"] / text[1]["pages_per_s"], 3)
        if 1 in text and 2 in text:
            results["speedup_2_over_1"] = round(text[1]["wall_s"] / text[2]["wall_s"], 2)

        if args.executor == "ray":
            workers = worker_counts[-1]
            run = pagewash_run(tmp / "text", tmp / "out_text_ray", workers, "ray")
            run["pages_per_s"] = round(run["pages"] / run["wall_s"], 1)
            results["ray"] = {**run, "cpus": workers,
                              "ratio_to_local_pool": round(run["wall_s"] / text[workers]["wall_s"], 3)}
            same = all((tmp / f"out_text_{workers}" / stream).is_dir() and sorted(
                p.read_bytes() for p in (tmp / f"out_text_{workers}" / stream).glob("part-*")) == sorted(
                p.read_bytes() for p in (tmp / "out_text_ray" / stream).glob("part-*"))
                for stream in ("documents", "duplicates"))
            results["ray"]["same_records_as_local_pool"] = same

        started = time.perf_counter()
        rerun = pagewash_run(tmp / "text", tmp / f"out_text_{worker_counts[-1]}", worker_counts[-1])
        results["noop_rerun"] = {"inputs": args.pages, "wall_s": round(time.perf_counter() - started, 2),
                                 "skipped": rerun["inputs"]["skipped"]}

        if not args.skip_memory:
            small = pagewash_run(tmp / "text_small", tmp / "out_small", 1)
            results["memory"] = {"pages_small": args.small, "peak_rss_small_mb": small["peak_rss_mb"],
                                 "pages_large": args.pages,
                                 "peak_rss_large_mb": text[worker_counts[0]]["peak_rss_mb"]}
        if args.skip_html:
            shutil.rmtree(tmp, ignore_errors=True)
            return _print(results, text, args.json)
        html_run = pagewash_run(tmp / "html", tmp / "out_html", 1)
        traf = trafilatura_seconds(tmp / "html")
        traf_meta = trafilatura_seconds(tmp / "html", with_metadata=True)
        results["html"] = {
            "pages": args.html_pages, "mb": round(html_bytes / 1e6, 1),
            "pagewash_ms_per_page": round(1000 * html_run["wall_s"] / args.html_pages, 2),
            "trafilatura_ms_per_page": round(1000 * traf / args.html_pages, 2),
            "trafilatura_metadata_ms_per_page": round(1000 * traf_meta / args.html_pages, 2),
            "ratio": round(html_run["wall_s"] / traf, 3),
            "ratio_to_metadata": round(html_run["wall_s"] / traf_meta, 3),
            "pagewash_documents": html_run["documents"], "pagewash_duplicates": html_run["duplicates"],
        }
        if 1 in text:  # issue 20's first target: text dumps, one worker, over plain trafilatura's pages/s on HTML
            results["text_over_trafilatura_pages_per_s"] = round(
                text[1]["pages_per_s"] / (1000 / results["html"]["trafilatura_ms_per_page"]), 2)
        if args.rounds > 1:
            results["rounds"] = ratio_rounds(tmp, args.rounds, args.pages, args.html_pages)
        shutil.rmtree(tmp, ignore_errors=True)
    return _print(results, text, args.json)


def _print(results: dict, text: dict, as_json: bool) -> int:
    if as_json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"cores: {results['cores']}")
    print("| text dumps | workers | pages | wall s | pages/s | pages/s per worker | MB/s "
          "| peak RSS driver / worker MB |")
    print("|---|---|---|---|---|---|---|---|")
    for workers, run in text.items():
        print(f"| pagewash | {workers} | {run['pages']} | {run['wall_s']} | {run['pages_per_s']} | "
              f"{run['pages_per_s_per_worker']} | {run['mb_per_s']} | {run['peak_rss_mb']['driver']} / "
              f"{run['peak_rss_mb']['largest_worker']} |")
    h = results["text_model"]
    print(f"| pagewash, learned cleaner | 1 | {h['pages']} | {h['wall_s']} | {h['pages_per_s']} | {h['pages_per_s']} | "
          f"| {h['peak_rss_mb']['driver']} / {h['peak_rss_mb']['largest_worker']} |")
    if "model_over_heuristic_pages_per_s" in results:
        print(f"learned cleaner over heuristic, pages/s with 1 worker: {results['model_over_heuristic_pages_per_s']}x")
    if "speedup_2_over_1" in results:
        print(f"speed-up, 2 workers over 1: {results['speedup_2_over_1']}x")
    for workers, run in text.items():
        if "efficiency" in run and workers != min(text):
            print(f"scaling efficiency, {workers} workers over {min(text)}: {run['efficiency']}")
    if "text_over_trafilatura_pages_per_s" in results:
        print(f"text dumps (1 worker) over plain trafilatura.extract's pages/s on HTML: "
              f"{results['text_over_trafilatura_pages_per_s']}x")
    if "rounds" in results:
        r = results["rounds"]
        for key, label in (("text_over_trafilatura_pages_per_s", "text dumps (1 worker) over plain trafilatura's "
                            "pages/s"), ("html_over_trafilatura_metadata_time", "HTML over trafilatura with "
                            "metadata, time a page"), ("html_over_trafilatura_plain_time", "HTML over plain "
                            "trafilatura, time a page")):
            f = r[key]
            print(f"{label}, {r['rounds']} rounds: median {f['median']}x "
                  f"(least {f['least']}, greatest {f['greatest']})")
    if "ray" in results:
        r = results["ray"]
        print(f"Ray, local, {r['cpus']} CPUs: {r['wall_s']} s, {r['pages_per_s']} pages/s; "
              f"{r['ratio_to_local_pool']}x the local pool's time; same records: {r['same_records_as_local_pool']}")
    if "memory" in results:
        m = results["memory"]
        print(f"peak RSS at {m['pages_small']} pages: {m['peak_rss_small_mb']}; at {m['pages_large']} pages: "
              f"{m['peak_rss_large_mb']}")
    r = results["noop_rerun"]
    print(f"rerun with nothing new over {r['inputs']} inputs: {r['wall_s']} s ({r['skipped']} skipped)")
    if "html" in results:
        h = results["html"]
        print(f"HTML, {h['pages']} pages, 1 worker: pagewash {h['pagewash_ms_per_page']} ms/page (whole run), "
              f"trafilatura.extract {h['trafilatura_ms_per_page']} ms/page; ratio {h['ratio']}; "
              f"trafilatura.extract(with_metadata=True) {h['trafilatura_metadata_ms_per_page']} ms/page; "
              f"ratio {h['ratio_to_metadata']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
