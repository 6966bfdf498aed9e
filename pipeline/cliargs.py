"""The command line's shape: the parser, each command's help with exit codes and an example, and logging."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType

from . import __version__
from .config import ENGINES, OUTPUT_FORMATS
from .io.sources import kinds_help

_STATE_HELP = ("the run's state (SQLite, lock, staged shards, dedup round): default OUT/_state; required when OUT "
               "is a URL, a local folder or, on a cluster, a shared POSIX one")


EXIT_CODES = """exit codes: 0 done; 1 more failed pages than --max-error-rate allows; 2 usage or configuration
error; 75 the output is in use by another run, or writing it failed for a reason that may pass (disk full,
read-only, a store's network): rerun; 130/143 stopped by SIGINT/SIGTERM after committing the shard in hand"""
EXAMPLES = MappingProxyType({
    "run": "pagewash run raw/ -o cleaned/                      # what is new or changed since the last run\n"
           "pagewash run s3://bucket/raw -o s3://bucket/clean --state /var/lib/pagewash/state --format parquet",
    "dedup": "pagewash dedup crawl-*.jsonl.gz -o deduped/          # records with `id` and `text`\n"
             "pagewash dedup --rebuild -o cleaned/                 # recompute the clusters with new [dedup] keys",
    "extract": "pagewash extract page.html --source crawl-1 | jq .metadata.title",
    "explain": "pagewash explain raw/story.txt | grep -v KEEP      # every dropped line and the rule that dropped it",
    "rules": "pagewash rules check my-rules/",
    "stats": "pagewash stats cleaned/ --runs 5",
    "config": "pagewash config show --config site.toml > effective.toml",
})


def _epilog(command: str) -> str:
    return f"example:\n  {EXAMPLES[command].replace(chr(10), chr(10) + '  ')}\n\n{EXIT_CODES}"


def _logging_flags(p: argparse.ArgumentParser, top: bool = False) -> None:
    """-v, -q and --log-file, before or after the command (after it, they override nothing when not given)."""
    default = {} if top else {"default": argparse.SUPPRESS}
    p.add_argument("-v", "--verbose", action="count", help="-v: pagewash's debug lines (every input); -vv: the "
                   "libraries' too (trafilatura, htmldate, …, otherwise at ERROR)", **({"default": 0} if top
                                                                                    else default))
    p.add_argument("-q", "--quiet", action="store_true", help="no summary line, only errors",
                   **({"default": False} if top else default))
    p.add_argument("--log-file", metavar="FILE", help="also append the log, with time stamps, to FILE",
                   **({"default": None} if top else default))


def build_parser(commands: Mapping[str, Callable[[argparse.Namespace], int]]) -> argparse.ArgumentParser:
    """The command line: `commands` maps each command's name to its function (pipeline/cli.py)."""
    parser = argparse.ArgumentParser(prog="pagewash", description="Clean raw web-page dumps into article text.",
                                     epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"pagewash {__version__}")
    _logging_flags(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text, description=help_text, epilog=_epilog(name),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        _logging_flags(command)
        return command

    def keys(p: argparse.ArgumentParser) -> None:
        for name, default in (("text", "text"), ("html", "html"), ("url", "url"), ("id", "id"),
                              ("fetched", "fetched_at")):
            p.add_argument(f"--{name}-key", metavar="FIELD",
                           help=f"exports: the field of the page's {name} (default: [input] {name}_key, `{default}`)")
        p.add_argument("--keep-fields", metavar="A,B", help="exports: fields carried into each record's metadata")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", help="TOML file overriding the default configuration key by key")
        p.add_argument("--rules", action="append", metavar="DIR",
                       help="extra rule folder read after the packaged rules (repeatable)")

    p = add("run", "clean every dump under RAW into OUT")
    p.epilog = f"input kinds (by name; other files are skipped and counted):\n{kinds_help()}\n\n{p.epilog}"
    p.add_argument("raw", help="a folder or file, or an fsspec URL (s3://bucket/raw; install its backend, e.g. s3fs)")
    p.add_argument("-o", "--output", required=True,
                   help="a folder, or an fsspec URL (s3://bucket/cleaned) with --state")
    p.add_argument("--state", metavar="DIR", help=_STATE_HELP)
    p.add_argument("--max-error-rate", type=float, metavar="RATE",
                   help="share of failed inputs above which the run exits 1 (default 0.05)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="worker processes (default: [run] workers; 0 there: one per core)")
    p.add_argument("--executor", choices=ENGINES,
                   help="local process pool or Ray core tasks (needs pagewash[ray]); default: [run] engine, local")
    p.add_argument("--address", metavar="ADDR",
                   help="with --executor ray: the Ray cluster to join (default: start a local Ray with --workers CPUs)")
    p.add_argument("--full", action="store_true", help="forget what earlier runs did and reprocess every input")
    p.add_argument("--accept-mixed", action="store_true",
                   help="when the settings (config, rules, library versions) differ from those that made OUT's "
                        "records, keep those records and clean only new or changed inputs with the new settings")
    p.add_argument("--wait", action="store_true", help="if another run holds OUT, wait for it instead of exit 75")
    p.add_argument("--source", metavar="NAME", help="the records' `source` field (default: the input folder's name)")
    p.add_argument("--format", choices=OUTPUT_FORMATS,
                   help="shard files: jsonl.gz, jsonl, jsonl.zst or parquet (default: [output] format, jsonl.gz)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: only when stderr is a terminal)")
    p.add_argument("--languages", metavar="CODES", help="keep only these languages (`en,de`); others become "
                   "`language` rejects (default: [language] keep, all)")
    p.add_argument("--glob", action="append", metavar="PATTERN",
                   help="take only inputs whose path under RAW matches (fnmatch, repeatable: `2024/*.warc.gz`)")
    p.add_argument("--exclude", action="append", metavar="PATTERN", help="leave out inputs whose path matches")
    p.add_argument("--limit", type=int, metavar="N", help="stop after N pages (try a corpus on its first pages; the "
                   "next run goes on from there). A run with --glob, --exclude or --limit deletes no earlier records")
    keys(p)
    common(p)
    p.set_defaults(func=commands["run"])

    p = add("dedup", "near-duplicate removal over JSONL files with `id` and `text`")
    p.add_argument("inputs", nargs="*", metavar="IN.jsonl")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--state", metavar="DIR", help=_STATE_HELP)
    p.add_argument("--rebuild", action="store_true",
                   help="recompute every cluster of OUT (a `run` or `dedup` output) from the records on disk, "
                        "with the current [dedup] settings")
    p.add_argument("--workers", type=int, metavar="N",
                   help="worker processes of the dedup steps (default: one per core; 0: this process)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="a line on stderr per step (default: only when stderr is a terminal)")
    p.add_argument("--wait", action="store_true", help="if another run holds OUT, wait for it instead of exit 75")
    p.add_argument("--format", choices=[f for f in OUTPUT_FORMATS if f != "parquet"],
                   help="shard files of IN.jsonl's records (default: [output] format, jsonl.gz); --rebuild keeps "
                        "the output's")
    p.add_argument("--id-key", metavar="FIELD", help="the records' id field, moved to `id` (default: [input] id_key)")
    p.add_argument("--text-key", metavar="FIELD",
                   help="the records' text field, moved to `text` (default: [input] text_key)")
    common(p)
    p.set_defaults(func=commands["dedup"])

    p = add("extract", "a page (or - for stdin) to its JSON record on stdout; an export or archive: one a page")
    p.add_argument("file", help="FILE, FILE:LINE or FILE@OFFSET (one page of an export or archive)")
    p.add_argument("--source", metavar="NAME", help="the record's `source` field (default: null)")
    common(p)
    p.set_defaults(func=commands["extract"])

    p = add("explain", "every line of a page with its verdict and the rule that decided")
    p.add_argument("file", help="FILE, FILE:LINE (an export's page), FILE@OFFSET (an archive's record), or OUT "
                   "with --id")
    p.add_argument("--id", metavar="ID", help="explain the page of record ID of the output FILE names")
    p.add_argument("--json", action="store_true", help="one JSON object a line (text, verdict, rule, label, "
                   "probability), then the page's")
    p.add_argument("--width", type=int, metavar="N", help="cut lines to N columns (0: never; default: the terminal's)")
    p.add_argument("--html", metavar="FILE", help="write a self-contained HTML page of the audit to FILE")
    p.add_argument("--all", action="store_true", help="show blank lines too")
    common(p)
    p.set_defaults(func=commands["explain"])

    p = add("rules", "rule files")
    rules_sub = p.add_subparsers(dest="rules_command", required=True)
    check = rules_sub.add_parser("check", help="validate the packaged rules and DIR; exit 2 on the first error")
    check.add_argument("dir", nargs="?")
    check.set_defaults(func=commands["rules_check"])
    listed = rules_sub.add_parser("list", help="every rule: id, on/off, action, file, what it is for")
    listed.add_argument("--rules", action="append", metavar="DIR", help="a user rule folder, read after the packaged")
    listed.set_defaults(func=commands["rules_list"])

    p = add("stats", "the last run's report in OUT, totals over all runs, and the run history")
    p.add_argument("output")
    p.add_argument("--state", metavar="DIR", help=_STATE_HELP)
    p.add_argument("--runs", type=int, default=10, metavar="N", help="runs of the history to show (default 10)")
    p.add_argument("--json", action="store_true", help="the last report and the history as JSON")
    p.add_argument("--html", action="store_true", help="(re)write OUT/report.html from the last run's report")
    p.set_defaults(func=commands["stats"])

    p = add("config", "the configuration")
    config_sub = p.add_subparsers(dest="config_command", required=True)
    show = config_sub.add_parser("show", help="the effective configuration (defaults, then --config) as TOML")
    common(show)
    show.set_defaults(func=commands["config_show"])
    return parser


_LIBRARIES_QUIET_AT = logging.ERROR  # third-party loggers below -vv


@contextmanager
def logging_for(args: argparse.Namespace) -> Iterator[None]:
    """pagewash's log on stderr (`-v` its debug lines, `-q` errors only), the libraries' loggers at ERROR
    unless `-vv`, each line under its logger's name; time stamps when stderr is not a terminal (cron), and in
    `--log-file`. The logging set-up before is restored after (`main` called from Python leaves it as it was)."""
    root, ours_logger = logging.getLogger(), logging.getLogger("pagewash")
    before = (list(root.handlers), root.level, ours_logger.level)
    try:
        _configure(args)
        yield
    finally:
        for handler in root.handlers:
            if handler not in before[0]:
                handler.close()
        root.handlers[:] = before[0]
        root.setLevel(before[1])
        ours_logger.setLevel(before[2])


def _configure(args: argparse.Namespace) -> None:
    verbose = args.verbose or 0
    ours = logging.DEBUG if verbose else logging.ERROR if args.quiet else logging.WARNING
    stamp = "" if sys.stderr.isatty() else "%(asctime)s "
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    handlers[0].setFormatter(logging.Formatter(stamp + "%(name)s: %(levelname)s: %(message)s", "%Y-%m-%dT%H:%M:%S"))
    if args.log_file:
        handler = logging.FileHandler(args.log_file, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(levelname)s: %(message)s",
                                               "%Y-%m-%dT%H:%M:%S"))
        handlers.append(handler)
    logging.basicConfig(level=logging.DEBUG if verbose >= 2 else _LIBRARIES_QUIET_AT, handlers=handlers,
                        force=True)
    logging.getLogger("pagewash").setLevel(ours)
