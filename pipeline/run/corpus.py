"""A whole run (`run_corpus`): parallel, streaming, incremental, crash-safe, one at a time per output folder.

A run has two phases.

1. Clean (parallel). Inputs are found and triaged against the state (new, changed, half done by a killed
   run, or done and skipped), read lazily and sent in small chunks to the executor, whose results come
   back in input order. Every `shard_pages` pages make a shard: its rejects go straight to
   `rejects/part-N.jsonl`, its documents to `_state/staged/part-N.jsonl`, their MinHash signatures to the
   state's `pending` table, all published (temp file, fsync, rename) and then recorded in one SQLite
   transaction together with how far each input got. A kill at any moment loses at most the shard in hand,
   which the next run redoes; files the state does not name are leftovers and are removed first.
2. Dedup (the executor's workers; see pipeline/dedup/steps.py). The staged shards go through four steps,
   signatures → buckets (a file-based band shuffle) → components → filter, each task leaving a completion
   marker, so a killed run resumes at the step it reached. Every pending document is decided together
   against the persistent index, so the outcome does not depend on shard boundaries, worker counts or
   where an earlier run was killed. The driver then commits the index, the shards' status and the records'
   streams in one transaction and moves the filtered files into `documents/` and `duplicates/`; a kill
   before that commit leaves the round to be resumed, a kill after it leaves the move to the next run.

Shard boundaries depend only on the order of the inputs, never on the number of workers, so the output is
byte-identical for any `--workers` (with SOURCE_DATE_EPOCH pinning `processed_at`).
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from pathlib import Path

from ..config import Config, ConfigError
from ..dedup.driver import sweep
from ..dedup.rounds import install_rounds
from ..dedup.tasks import ROUNDS
from ..executor import default_workers
from ..fingerprint import changes, settings_fingerprint
from ..io.card import CARD, dataset_card
from ..io.formats import SUFFIXES, format_of, physical
from ..io.store import StoreError, bind, open_output
from ..io.writer import to_json
from ..layout import SETTINGS_KEY
from ..records import processed_at
from ..rules import RuleSet, load_rules
from ..state import STREAMS, RunState, run_lock
from .batch import BatchRun
from .context import Engine, RunContext, Selection, Stop, StoppedAtOnce
from .probes import cap_workers
from .report import RunResult, build_report
from .report_html import report_page

log = logging.getLogger("pagewash")

EXIT_OK, EXIT_FAILURES, EXIT_BUSY = 0, 1, 75


def run_corpus(raw: Path, out: Path | str, config: Config, *, rules: RuleSet | None = None, full: bool = False,
               wait: bool = False, workers: int | None = None, progress: bool | None = None,
               executor: str | None = None, address: str | None = None, state_dir: Path | str | None = None,
               accept_mixed: bool = False, source: str | None = None, fmt: str | None = None,
               select: Selection | None = None, heartbeat: float = 0.0) -> RunResult:
    """Clean what is new under `raw` into `out` (a folder, or an fsspec URL with `state_dir`: see
    pipeline/store.py); raises LockBusy if another run holds its state."""
    started = time.time()
    stamp = processed_at(started)
    rules = rules if rules is not None else load_rules(config.rules_dirs)  # bad rules: refused before any input
    # the arguments (the CLI's flags) override the config's [run] table
    workers = cap_workers(workers if workers is not None else (config.run.workers or default_workers()))
    engine = Engine(executor or config.run.engine, workers, address or config.run.address or None)
    progress = sys.stderr.isatty() if progress is None else progress
    store, state_dir = open_output(str(out), str(state_dir) if state_dir else None, fmt or config.output.format)
    state_dir.mkdir(parents=True, exist_ok=True)
    source = source or default_source(raw)
    ctx = RunContext(raw, store, state_dir, config, rules, engine, stamp, started, progress, full, accept_mixed, source,
                     select or Selection(), 0.0 if progress else heartbeat)
    with run_lock(state_dir, wait=wait), Stop() as stop:
        state = RunState(state_dir)
        try:
            return _run_locked(ctx, state, stop)
        finally:
            state.close()


def write_report_html(store, report: dict) -> None:
    """OUT/report.html from a run's report, with links to the output's shard files (atomically)."""
    shards = {stream: [physical(name, store.fmt) for name in store.names(stream) if format_of(name)]
              for stream in STREAMS}
    store.write_text("report.html", report_page(report, shards))


def default_source(raw: Path) -> str:
    """The records' `source` when the user names none: the input folder's name (a file's folder's)."""
    folder = raw if raw.is_dir() else raw.parent
    return folder.name or Path(str(folder)).resolve().name


def check_settings(state: RunState, config: Config, rules: RuleSet, *, full: bool,
                   accept_mixed: bool) -> tuple[list[str], str | None]:
    """Refuse (ConfigError) a run whose settings differ from those that made the output's records, unless it
    starts over (`--full`) or the user accepts mixing (`--accept-mixed`). Returns what changed and the
    fingerprint to record (None: the recorded one stands); `--full` records it in the transaction that
    empties the state, so that a kill between the two cannot leave old records under new settings. A state
    from before fingerprints adopts the current one."""
    now = settings_fingerprint(config, rules)
    stored = state.setting(SETTINGS_KEY)
    changed = changes(json.loads(stored), now) if stored is not None else []
    if changed and not full and not state.is_empty():
        if not accept_mixed:
            listed = "".join(f"\n  {line}" for line in changed[:20])
            more = f"\n  … and {len(changed) - 20} more" if len(changed) > 20 else ""
            raise ConfigError(
                f"the settings differ from those that made the records in this output:{listed}{more}\n"
                "rerun with --full to reprocess every input with the new settings, or with --accept-mixed to keep "
                "the earlier records and clean only new or changed inputs with the new settings")
        log.warning("settings changed (%s); --accept-mixed: earlier records are kept as they are", "; ".join(changed))
    return changed, json.dumps(now, sort_keys=True) if stored is None or changed else None


def _run_locked(ctx: RunContext, state: RunState, stop: Stop) -> RunResult:
    store, state_dir, config, stamp, full = ctx.store, ctx.state_dir, ctx.config, ctx.stamp, ctx.full
    changed, fingerprint = check_settings(state, config, ctx.rules, full=full, accept_mixed=ctx.accept_mixed)
    run_id = state.begin_run(stamp)
    if full:  # the state and the index are emptied together, so neither outlives the other
        state.dedup.create_index_schema()
        with state.transaction() as db:
            state.dedup.clear_index()
            state.reset(db)
            if fingerprint is not None:
                state.set_setting(SETTINGS_KEY, fingerprint, db)
        shutil.rmtree(state_dir / ROUNDS, ignore_errors=True)  # no earlier round may be resumed or installed
    elif fingerprint is not None:
        state.set_setting(SETTINGS_KEY, fingerprint)
    bind(store, state_dir, state.state_id(), bool(state.shard_status()), full=full)
    state.adopt_format(store.fmt, full, str(store))
    store.write_text(CARD, dataset_card(SUFFIXES[store.fmt][1:]))  # how `datasets` loads the output
    batch = BatchRun(ctx, state, run_id, stop)
    install_rounds(store, state_dir, state.dedup)  # a run killed between its dedup commit and the files' move
    removed = sweep(store, batch.staged, state)  # after --full the state names no shard: every shard file goes
    if removed:
        log.info("removed %d shard files the state does not name (an interrupted run, or --full)", removed)
    status = "failed"
    try:
        try:
            batch.clean()
            if not stop.signum:
                batch.dedup()
        except BaseException:  # stopped at once, or failing: nothing waits for the workers' tasks any more
            batch.close(now=True)
            raise
        batch.close()
        status = "interrupted" if stop.signum else "done"
    except StoppedAtOnce:
        status = "interrupted"
        raise
    finally:
        c = batch.counters
        failures = c.failures
        error_rate = failures / c.pages if c.pages else 0.0
        report = build_report(ctx, state, run_id, status, c, changed, batch.dedup_report, batch.clean_peak_kb,
                              time.time() - ctx.started)
        try:
            store.write_text("report.json", to_json(report, indent=2) + "\n")
            write_report_html(store, report)
        except StoreError as exc:  # the run's own failure, if any, is the one to raise; the state keeps the report
            log.error("report.json or report.html not written: %s", exc)
        state.end_run(run_id, status, processed_at(), report)
    if stop.signum:
        exit_code = 128 + stop.signum
    else:
        exit_code = EXIT_FAILURES if error_rate > config.max_error_rate else EXIT_OK
    return RunResult(batch.counters, failures, error_rate, exit_code, report)


__all__ = ["EXIT_BUSY", "EXIT_FAILURES", "EXIT_OK", "RunContext", "RunResult", "StoppedAtOnce", "check_settings",
           "run_corpus"]
