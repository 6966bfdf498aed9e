"""Command line: `pagewash run|extract|explain|rules check|stats`.

Data goes to stdout, logs to stderr. Exit codes: 0 ok, 1 too many failed inputs, 2 usage or
configuration error.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from pathlib import Path

from . import __version__
from .config import Config, ConfigError, load_config
from .document import RawPage
from .rules import load_rules
from .runner import Pipeline, processed_at, record_of, run_corpus
from .writer import dump_record

EXIT_OK, EXIT_FAILURES, EXIT_USAGE = 0, 1, 2
log = logging.getLogger("pagewash")


def _config(args: argparse.Namespace) -> Config:
    return load_config(
        getattr(args, "config", None),
        rules_dirs=getattr(args, "rules", None),
        max_error_rate=getattr(args, "max_error_rate", None),
    )


def _read_input(name: str) -> RawPage:
    if name == "-":
        return RawPage(source_path="-", rel_path="stdin", data=sys.stdin.buffer.read())
    path = Path(name)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read: {exc.strerror}") from exc
    return RawPage(source_path=name, rel_path=path.name, data=data)


def cmd_run(args: argparse.Namespace) -> int:
    config = _config(args)
    raw, out = Path(args.raw), Path(args.output)
    if not raw.exists():
        raise ConfigError(f"{raw}: no such file or folder")
    result = run_corpus(raw, out, config)
    c = result.counters
    rejects = ", ".join(f"{reason} {n}" for reason, n in sorted(c.rejects.items())) or "none"
    summary = (f"pagewash: {c.inputs} inputs, {c.documents} documents, {sum(c.rejects.values())} rejects "
               f"({rejects}) in {result.report['seconds']:.1f}s -> {out}")
    if not args.quiet:
        print(summary, file=sys.stderr)
    if result.exit_code:
        log.error("%d of %d inputs failed (%.1f%% > max_error_rate %.1f%%)", result.failures, c.inputs,
                  100 * result.error_rate, 100 * config.max_error_rate)
    return result.exit_code


def cmd_extract(args: argparse.Namespace) -> int:
    config = _config(args)
    outcome = Pipeline(config).process(_read_input(args.file))
    print(dump_record(record_of(outcome.document, processed_at())))
    return EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    config = _config(args)
    outcome = Pipeline(config).process(_read_input(args.file))
    doc = outcome.document
    width = shutil.get_terminal_size((120, 20)).columns if sys.stdout.isatty() else 200
    text_width = max(20, width - 40)
    for v in doc.lines or []:
        if v.label == "blank" and not args.all:
            continue
        verdict = "KEEP" if v.kept else "drop"
        reason = v.rule_id or v.label
        text = v.text if len(v.text) <= text_width else v.text[: text_width - 1] + "…"
        print(f"{v.index + 1:5} {verdict} {reason:<26} | {text}")
    meta = doc.metadata
    print("-" * min(width, 80))
    if outcome.reject_reason:
        print(f"rejected: {outcome.reject_reason} ({meta.get('filter_detail', '')})")
    for key in ("title", "author", "date", "sitename", "language", "word_count"):
        print(f"{key:>10}: {meta.get(key)}")
    prov = meta.get("provenance")
    if prov:
        print(f"{'provenance':>10}: {json.dumps(prov, ensure_ascii=False)}")
    return EXIT_OK


def cmd_rules_check(args: argparse.Namespace) -> int:
    dirs = [args.dir] if args.dir else []
    ruleset = load_rules(dirs)
    print(f"ok: {len(ruleset.rules)} rules, {len(ruleset.meta)} metadata patterns in {len(ruleset.files)} files")
    return EXIT_OK


def cmd_stats(args: argparse.Namespace) -> int:
    report_path = Path(args.output) / "report.json"
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{report_path}: no readable run report ({exc})") from exc
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return EXIT_OK
    print(f"run at {report['processed_at']} (pagewash {report['pipeline_version']}), {report['seconds']}s")
    print(f"inputs {report['inputs']}  documents {report['documents']}  "
          f"failures {report['failures']} ({100 * report['error_rate']:.1f}%)")
    print(f"lines kept {report['lines_kept']} of {report['lines_in']}")
    for title, key in (("rejects", "rejects"), ("languages", "languages"), ("rules hit", "rules_hit")):
        items = list(report.get(key, {}).items())[:15]
        if items:
            print(f"{title}: " + ", ".join(f"{k} {v}" for k, v in items))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pagewash", description="Clean raw web-page dumps into article text.")
    parser.add_argument("--version", action="version", version=f"pagewash {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every input to stderr")
    parser.add_argument("-q", "--quiet", action="store_true", help="no summary line, only errors")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", help="TOML file overriding the default configuration key by key")
        p.add_argument("--rules", action="append", metavar="DIR",
                       help="extra rule folder read after the packaged rules (repeatable)")

    p = sub.add_parser("run", help="clean every dump under RAW into OUT")
    p.add_argument("raw")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--max-error-rate", type=float, metavar="RATE",
                   help="share of failed inputs above which the run exits 1 (default 0.05)")
    common(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("extract", help="one dump (or - for stdin) to one JSON record on stdout")
    p.add_argument("file")
    common(p)
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("explain", help="every line of a dump with its verdict and the rule that decided")
    p.add_argument("file")
    p.add_argument("--all", action="store_true", help="show blank lines too")
    common(p)
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("rules", help="rule files")
    rules_sub = p.add_subparsers(dest="rules_command", required=True)
    check = rules_sub.add_parser("check", help="validate the packaged rules and DIR; exit 2 on the first error")
    check.add_argument("dir", nargs="?")
    check.set_defaults(func=cmd_rules_check)

    p = sub.add_parser("stats", help="summarise the last run's report in OUT")
    p.add_argument("output")
    p.add_argument("--json", action="store_true", help="the whole report as JSON")
    p.set_defaults(func=cmd_stats)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.ERROR if args.quiet else logging.WARNING
    logging.basicConfig(level=level, format="pagewash: %(levelname)s: %(message)s", stream=sys.stderr)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"pagewash: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `pagewash explain x | head`
        return EXIT_OK
