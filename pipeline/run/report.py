"""The run's counters, its result, and `report.json`."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field

from .. import __version__
from ..layout import SETTINGS_KEY
from ..records import FAILURE_REASONS, Counters
from ..state import RunState
from .context import RunContext
from .probes import peak_rss_mb


@dataclass
class RunCounters(Counters):
    inputs: Counter = field(default_factory=Counter)  # files: seen, new, changed, resumed, skipped, failed, deleted
    duplicates: int = 0
    bytes_read: int = 0
    records_skipped: Counter = field(default_factory=Counter)  # archive records that are not pages, by why
    files_skipped: Counter = field(default_factory=Counter)  # files under RAW that are no input, by why
    input_kinds: Counter = field(default_factory=Counter)  # inputs read (new, changed, resumed), by kind

    @property
    def failures(self) -> int:
        return sum(n for reason, n in self.rejects.items() if reason in FAILURE_REASONS)


TOP_HOSTS = 20  # hosts named in the report (the rest are in the records)


def _bins(counts: dict[str, int]) -> dict[str, int]:
    """Power-of-two bins (`records.length_bin`) in their numeric order."""
    return dict(sorted(counts.items(), key=lambda kv: int(kv[0].split("-")[0])))


def _digest(fingerprint: str | None) -> str | None:
    """A short name of the settings that made the output's records (`stats` and report.html show it)."""
    return hashlib.sha1(fingerprint.encode("utf-8")).hexdigest()[:12] if fingerprint else None


def _sorted_counts(counter: Counter) -> dict:
    return dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


@dataclass
class RunResult:
    counters: RunCounters
    failures: int
    error_rate: float
    exit_code: int
    report: dict


def build_report(ctx: RunContext, state: RunState, run_id: int, status: str, counters: RunCounters, changed: list[str],
                 dedup_report: dict, clean_peak_kb: int, seconds: float) -> dict:
    """`report.json`: what the run did (inputs, pages, records, rejects, rules, languages, stages, dedup), how fast,
    with how much memory, and the output's totals."""
    c = counters
    failures = c.failures
    error_rate = failures / c.pages if c.pages else 0.0
    return {
        "pipeline_version": __version__,
        "run_id": run_id,
        "status": status,
        "processed_at": ctx.stamp,
        "input": str(ctx.raw),
        "output": str(ctx.store),
        "workers": ctx.engine.workers,
        "executor": ctx.engine.kind,
        "settings_changed": changed,
        "inputs": {k: c.inputs[k] for k in ("seen", "new", "changed", "resumed", "skipped", "failed", "deleted")},
        "pages": c.pages,
        "records_skipped": _sorted_counts(c.records_skipped),
        "files_skipped": _sorted_counts(c.files_skipped),
        "input_kinds": _sorted_counts(c.input_kinds),
        "settings_digest": _digest(state.setting(SETTINGS_KEY)),
        "documents": c.documents - c.duplicates,
        "duplicates": c.duplicates,
        "rejects": dict(sorted(c.rejects.items())),
        "failures": failures,
        "error_rate": round(error_rate, 4),
        "max_error_rate": ctx.config.max_error_rate,
        "lines_in": c.lines_in,
        "lines_kept": c.lines_kept,
        "rules_hit": _sorted_counts(c.rules_hit),
        "rules_words": _sorted_counts(c.rules_words),
        "reject_examples": {reason: c.reject_examples[reason] for reason in sorted(c.reject_examples)},
        "lengths": {side: _bins({b: n for (s, b), n in c.length_bins.items() if s == side}) for side in ("in", "kept")},
        "hosts": dict(list(_sorted_counts(c.hosts).items())[:TOP_HOSTS]),
        "languages": _sorted_counts(c.languages),
        "stages": {name: {"seconds": round(c.stage_seconds[name], 3), "rejected": c.stage_rejects[name]}
                   for name in c.stage_seconds},
        "dedup": dedup_report,
        "throughput": {"pages_per_s": round(c.pages / seconds, 1) if seconds else 0.0,
                       "mb_per_s": round(c.bytes_read / 1e6 / seconds, 2) if seconds else 0.0},
        "peak_rss_mb": peak_rss_mb(clean_peak_kb),
        "seconds": round(seconds, 3),
        "totals": state.totals(),
    }
