"""Command line: `pagewash run|extract|explain|dedup|rules check|stats`.

Data goes to stdout, logs to stderr. Exit codes: 0 ok, 1 too many failed inputs, 2 usage or
configuration error, 75 the output is in use by another run or its store failed (rerun), 128+N stopped by signal N.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import itertools
import json
import logging
import os
import shutil
import sys
from pathlib import Path
from types import MappingProxyType

from . import __version__, audit
from .api import Cleaner
from .audit_html import audit_page
from .cliargs import build_parser, logging_for
from .config import Config, ConfigError, load_config, to_toml
from .dedup.driver import tell
from .dedup.jsonl import dedup_jsonl
from .dedup.rebuild import rebuild_dedup
from .executor import default_workers
from .io.sources import input_root, kinds_help
from .io.store import MARKER, StoreError, is_url, open_output
from .io.writer import dump_record, to_json, write_atomic
from .records import processed_at
from .rules import load_rules
from .run.context import Selection
from .run.corpus import EXIT_BUSY, StoppedAtOnce, run_corpus, write_report_html
from .state import DEDUP_DB, STATE_DB, LockBusy, RunState, StateError, is_temporary, run_lock

EXIT_OK, EXIT_FAILURES, EXIT_USAGE = 0, 1, 2
HEARTBEAT_S = 300.0  # a progress line this often on stderr when no terminal is attached (cron)
log = logging.getLogger("pagewash")


def _input_keys(config: Config, args: argparse.Namespace) -> Config:
    """The [input] keys the flags name (`--text-key`, …, `--keep-fields a,b`) and `--languages` over the
    config's."""
    if getattr(args, "languages", None) is not None:
        keep = tuple(code.strip() for code in args.languages.split(",") if code.strip())
        config = dataclasses.replace(config, language=dataclasses.replace(config.language, keep=keep))
    changed = {name: getattr(args, name) for name in ("text_key", "html_key", "url_key", "id_key", "fetched_key")
               if getattr(args, name, None) is not None}
    if getattr(args, "keep_fields", None) is not None:
        changed["keep_fields"] = tuple(f.strip() for f in args.keep_fields.split(",") if f.strip())
    return dataclasses.replace(config, input=dataclasses.replace(config.input, **changed)) if changed else config


def _config(args: argparse.Namespace) -> Config:
    return _input_keys(load_config(
        getattr(args, "config", None),
        rules_dirs=getattr(args, "rules", None),
        max_error_rate=getattr(args, "max_error_rate", None),
    ), args)


def _busy(busy: LockBusy) -> int:
    print(f"pagewash: {busy}; not starting (use --wait to wait for it)", file=sys.stderr)
    return EXIT_BUSY


def cmd_run(args: argparse.Namespace) -> int:
    config = _config(args)
    raw, out = input_root(args.raw), args.output
    if not raw.exists():
        raise ConfigError(f"{raw}: no such file or folder")
    if not is_url(args.raw) and not raw.is_dir() and not raw.is_file():  # reading a FIFO would block
        raise ConfigError(f"{raw}: not a file or folder (a FIFO, socket or device): name a folder or a file")
    if args.workers is not None and args.workers < 1:
        raise ConfigError("--workers must be at least 1")
    try:
        result = run_corpus(raw, out, config, full=args.full, wait=args.wait, workers=args.workers,
                            progress=args.progress, executor=args.executor, address=args.address,
                            state_dir=args.state, accept_mixed=args.accept_mixed, source=args.source, fmt=args.format,
                            select=Selection(tuple(args.glob or ()), tuple(args.exclude or ()), args.limit or 0),
                            heartbeat=0.0 if args.quiet or sys.stderr.isatty() else HEARTBEAT_S)
    except LockBusy as busy:
        return _busy(busy)
    report = result.report
    inputs = report["inputs"]
    rejects = ", ".join(f"{reason} {n}" for reason, n in report["rejects"].items()) or "none"
    summary = (f"pagewash: {inputs['seen']} inputs ({inputs['new']} new, {inputs['changed']} changed, "
               f"{inputs['resumed']} resumed, {inputs['skipped']} unchanged, {inputs['deleted']} deleted), "
               f"{report['pages']} pages: "
               f"{report['documents']} documents, {report['duplicates']} duplicates, "
               f"{sum(report['rejects'].values())} rejects ({rejects}) in {report['seconds']:.1f}s "
               f"({report['throughput']['pages_per_s']} pages/s) -> {out}")
    skipped = report.get("files_skipped") or {}
    if skipped:
        summary += f"; {sum(skipped.values())} files skipped (" + ", ".join(f"{why} {n}" for why, n in
                                                                     skipped.items()) + ")"
    if report["status"] == "interrupted":
        summary += " [interrupted: the next run goes on from here]"
    if not args.quiet:
        print(summary, file=sys.stderr)
    if inputs["seen"] == 0 and not any(report["totals"].get(s) for s in ("documents", "duplicates", "rejects")):
        print(f"pagewash: error: no input under {args.raw}: pagewash reads\n{kinds_help()}", file=sys.stderr)
        return EXIT_USAGE
    if result.exit_code == 1:
        log.error("%d of %d pages failed (%.1f%% > max_error_rate %.1f%%)", result.failures, report["pages"],
                  100 * result.error_rate, 100 * config.max_error_rate)
    return result.exit_code


def cmd_dedup(args: argparse.Namespace) -> int:
    config = _config(args)
    store, state_dir = open_output(args.output, args.state)
    out = Path(str(store))
    inputs = [Path(name) for name in args.inputs]
    if not inputs and not args.rebuild:
        raise ConfigError("dedup needs IN.jsonl files, or --rebuild")
    for path in inputs:
        if not path.is_file():
            raise ConfigError(f"{path}: no such file")
    if args.workers is not None and args.workers < 0:
        raise ConfigError("--workers must be 0 (this process) or more")
    workers = default_workers() if args.workers is None else args.workers
    progress = tell if (sys.stderr.isatty() if args.progress is None else args.progress) else None
    if inputs and (store.remote or args.state):
        raise ConfigError(f"{args.output}: dedup of JSONL files keeps its index in OUT/_state of a local OUT "
                          "(a URL and --state are for outputs of `run`)")
    if inputs and ((state_dir / STATE_DB).exists() or store.read_text(MARKER) is not None):
        # its next run would sweep the shards its state never wrote: what dedup wrote would be deleted
        raise ConfigError(f"{args.output} is the output of `pagewash run`: dedup JSONL files into another "
                          "folder (`pagewash dedup --rebuild` recomputes this one's clusters)")
    try:
        with run_lock(state_dir, wait=args.wait):
            if args.rebuild:
                counts = rebuild_dedup(store, state_dir, config, workers, progress=progress)
            if inputs:
                counts = dedup_jsonl(inputs, out, config.dedup, workers, progress=progress,
                                     fmt=args.format or config.output.format,
                                     keys=(config.input.id_key, config.input.text_key))
    except ConfigError:
        raise
    except ValueError as exc:  # an index built with other parameters
        raise ConfigError(f"{out}: {exc} (pagewash dedup --rebuild -o {out})") from exc
    except LockBusy as busy:
        return _busy(busy)
    # the call's report, for `pagewash stats OUT` as a run's (its history is in the state)
    store.write_text("report.json", to_json({"command": "dedup --rebuild" if args.rebuild else "dedup",
                                             "status": "done", "processed_at": processed_at(),
                                             "pipeline_version": __version__, **counts}, indent=2) + "\n")
    if not args.quiet:
        print("pagewash dedup: " + ", ".join(f"{k} {v}" for k, v in counts.items()), file=sys.stderr)
    return EXIT_OK


def cmd_extract(args: argparse.Namespace) -> int:
    """One record a page, on stdout (a JSON-lines stream for an export or an archive)."""
    config = _config(args)
    cleaner = Cleaner(config, source=args.source)
    for page in audit.pages(args.file, config.max_input_bytes):
        print(dump_record(cleaner.record(page)))
    return EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    config = _config(args)
    target = audit.source_of(args.id, Path(args.file)) if args.id else args.file
    found = list(itertools.islice(audit.pages(target, config.max_input_bytes), 2))  # streamed: not a whole archive
    if len(found) > 1:
        raise ConfigError(f"{target} holds more than one page: name one as its records' source_path does, e.g. "
                          f"{found[0].source_path} (or find a record's page with --id ID OUT)")
    cleaner = Cleaner(config)
    result = audit.audit(cleaner, found[0])
    if args.html:
        write_atomic(Path(args.html), audit_page(result, cleaner.rules))
        return EXIT_OK
    if args.json:
        for item in result.as_json():
            print(to_json(item))
        return EXIT_OK
    width = args.width if args.width is not None else (shutil.get_terminal_size((120, 20)).columns
                                                       if sys.stdout.isatty() else 0)
    text_width = max(20, width - 60) if width else 0
    for line in result.lines:
        if line.label == "blank" and not line.rule and not args.all:  # a lynx link list is blank to the cleaners
            continue
        probability = f"{line.probability:.2f}" if line.probability is not None else "    "
        text = line.text if not text_width or len(line.text) <= text_width else line.text[:text_width - 1] + "…"
        verdict = {"keep": "KEEP", "drop": "drop", "meta": "META"}[line.verdict]
        print(f"{line.number:5} {verdict} {line.rule or '-':<26} {line.label:<11} {probability} | {text}")
    meta = result.record["metadata"]
    print("-" * min(width or 80, 80))
    if result.rejected:
        print(f"rejected: {result.rejected} ({result.detail or ''})")
    for key in ("title", "author", "date", "sitename", "language", "word_count"):
        print(f"{key:>10}: {meta.get(key)}")
    prov = {k: v for k, v in (meta.get("provenance") or {}).items() if v}
    if prov:
        print(f"{'provenance':>10}: {json.dumps(prov, ensure_ascii=False)}")
    return EXIT_OK


def cmd_rules_list(args: argparse.Namespace) -> int:
    """Every rule: id, file, action, whether enabled, and what it is for."""
    rules = load_rules(args.rules or [])
    for rule in rules.listing:
        state = "on " if rule.enabled else "off"
        print(f"{rule.id:<28} {state} {rule.action:<10} {rule.file:<16} {rule.description}")
    return EXIT_OK


def cmd_rules_check(args: argparse.Namespace) -> int:
    dirs = [args.dir] if args.dir else []
    ruleset = load_rules(dirs)
    print(f"ok: {len(ruleset.rules)} rules, {len(ruleset.meta)} metadata patterns in {len(ruleset.files)} files")
    return EXIT_OK


def cmd_stats(args: argparse.Namespace) -> int:
    store, state_dir = open_output(args.output, args.state)
    try:
        report = json.loads(store.read_text("report.json") or "")
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{store}/report.json: no readable run report ({exc})") from exc
    history = []
    name = STATE_DB if (state_dir / STATE_DB).exists() else DEDUP_DB  # a `run` output, or a `dedup` one
    if (state_dir / name).exists():
        state = RunState(state_dir, readonly=True, name=name)
        try:
            history = state.history(args.runs)
            totals = state.totals()
            store.fmt = state.output_format()  # the shards report.html links to
        finally:
            state.close()
        report = {**report, "totals": totals}
    if args.json:
        print(json.dumps({"last_run": report, "history": history}, indent=2, ensure_ascii=False))
        return EXIT_OK
    if args.html:
        write_report_html(store, report)
        print(f"{store}/report.html", file=sys.stderr)
        return EXIT_OK
    if str(report.get("command", "")).startswith("dedup"):
        print(f"last call: pagewash {report['command']} at {report['processed_at']} (pagewash "
              f"{report['pipeline_version']}): " + ", ".join(f"{k} {report[k]}" for k in (
                  "records", "kept", "duplicates", "rejects", "inputs_skipped", "seconds") if k in report))
        _print_history(report, history)
        return EXIT_OK
    inputs = report["inputs"]
    print(f"last run {report['run_id']} at {report['processed_at']} (pagewash {report['pipeline_version']}): "
          f"{report['status']}, {report['seconds']}s, {report['workers']} workers")
    print("inputs " + " ".join(f"{k} {v}" for k, v in inputs.items()))
    print(f"pages {report['pages']}  documents {report['documents']}  duplicates {report['duplicates']}  "
          f"failures {report['failures']} ({100 * report['error_rate']:.1f}%)")
    print(f"throughput {report['throughput']['pages_per_s']} pages/s, {report['throughput']['mb_per_s']} MB/s; "
          f"peak RSS driver {report['peak_rss_mb']['driver']} MB, "
          f"largest worker {report['peak_rss_mb']['largest_worker']} MB")
    print(f"lines kept {report['lines_kept']} of {report['lines_in']}")
    dedup = report.get("dedup") or {}
    if dedup.get("resolved"):
        sizes = ", ".join(f"{k}: {v}" for k, v in (dedup.get("cluster_sizes") or {}).items())
        links = ", ".join(f"{k} {v}" for k, v in (dedup.get("links") or {}).items())
        print(f"dedup: {dedup['duplicates']} duplicates in {dedup['clusters_with_duplicates']} clusters"
              f"{f' (sizes {sizes})' if sizes else ''}; links {links or 'none'}; {dedup['seconds']}s")
    for title, key in (("rejects", "rejects"), ("languages", "languages"), ("rules hit", "rules_hit")):
        items = list(report.get(key, {}).items())[:15]
        if items:
            print(f"{title}: " + ", ".join(f"{k} {v}" for k, v in items))
    _print_history(report, history)
    return EXIT_OK


def _print_history(report: dict, history: list[dict]) -> None:
    totals = report.get("totals")
    if totals:
        done = totals["inputs"]
        print(f"all runs: inputs {' '.join(f'{k} {v}' for k, v in sorted(done.items()))}; documents "
              f"{totals['documents']}, duplicates {totals['duplicates']}, rejects {totals['rejects']}")
    if history:
        print("history:")
        for run in history:
            r = run["report"] or {}
            print(f"  run {run['run_id']} {run['started']} {run['status']:<11} pages {r.get('pages', '-')} "
                  f"documents {r.get('documents', '-')} duplicates {r.get('duplicates', '-')} "
                  f"{r.get('seconds', '-')}s")


def cmd_config_show(args: argparse.Namespace) -> int:
    print(to_toml(_config(args)), end="")
    return EXIT_OK


COMMANDS = MappingProxyType({"run": cmd_run, "dedup": cmd_dedup, "extract": cmd_extract, "explain": cmd_explain,
                             "rules_check": cmd_rules_check, "rules_list": cmd_rules_list, "stats": cmd_stats,
                             "config_show": cmd_config_show})


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(COMMANDS)
    args = parser.parse_args(argv)
    with logging_for(args):
        return _dispatch(args, argv)


def _dispatch(args: argparse.Namespace, argv: list[str] | None) -> int:
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"pagewash: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `pagewash explain x | head`
        return EXIT_OK
    except StoppedAtOnce as stopped:
        print(f"pagewash: stopped at once by a second {stopped}; the next run goes on from the last committed "
              "shard", file=sys.stderr)
        if argv is None:  # the program itself: leave as a kill would, without the interpreter's exit hooks
            # (concurrent.futures' hook wakes the killed pool's manager thread through a pipe that may be
            # closed already: a spurious "Exception ignored ... Bad file descriptor" traceback)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(128 + stopped.signum)
        return 128 + stopped.signum
    except (OSError, StateError) as exc:
        # Input failures are rejects: what escapes a command is the output's side failing. Committed work
        # stands and the next run goes on from there; only a failure that can pass (a full disk, a read-only
        # mount, a store's network) is EX_TEMPFAIL, not a damaged state or a bug, which a rerun cannot mend.
        if _temporary(exc):
            print(f"pagewash: error: {_describe(exc)}; nothing committed is lost: fix it and rerun", file=sys.stderr)
            return EXIT_BUSY
        log.debug("the traceback", exc_info=exc)
        print(f"pagewash: error: {_describe(exc)} (not a failure a rerun mends; -v shows where it came from)",
              file=sys.stderr)
        return EXIT_FAILURES


_TEMPORARY_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EACCES, errno.EPERM,
                               errno.EAGAIN, errno.ENOMEM, errno.EMFILE, errno.ENFILE, errno.ESTALE, errno.ETIMEDOUT,
                               errno.ECONNRESET, errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH})


def _temporary(exc: OSError | StateError) -> bool:
    """A failure of the output's storage that may pass (EX_TEMPFAIL), as opposed to a damaged state or a bug."""
    if isinstance(exc, StoreError):
        return True
    if isinstance(exc, StateError):
        return is_temporary(exc)
    return isinstance(exc, OSError) and exc.errno in _TEMPORARY_ERRNOS


def _describe(exc: OSError | StateError) -> str:
    """One line for an OSError or SQLite error: what failed, and where."""
    if isinstance(exc, StateError):
        return f"the run's state (SQLite): {exc}"
    if isinstance(exc, StoreError) or not exc.strerror:
        return str(exc)
    return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
