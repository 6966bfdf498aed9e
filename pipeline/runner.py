"""Run the stages over inputs: one page in, a document or a reject out; counters for the report."""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from . import __version__
from .base import Stage
from .config import Config
from .document import Document, RawPage, Rejected
from .language import load_profiles
from .rules import RuleSet, load_rules
from .sources import discover, read_inputs
from .stages import decode_page, document_id, html_stages, text_stages
from .stopwords import StopwordIndex
from .timelimit import TimeLimitExceeded, time_limit
from .writer import ShardWriter, write_atomic

log = logging.getLogger("pagewash")


@dataclass
class Outcome:
    document: Document
    reject_reason: str | None = None  # None: a kept document


@dataclass
class Counters:
    inputs: int = 0
    documents: int = 0
    rejects: Counter = field(default_factory=Counter)
    rules_hit: Counter = field(default_factory=Counter)
    languages: Counter = field(default_factory=Counter)
    stage_seconds: Counter = field(default_factory=Counter)
    stage_rejects: Counter = field(default_factory=Counter)
    lines_in: int = 0
    lines_kept: int = 0

    def as_dict(self) -> dict:
        return {
            "inputs": self.inputs,
            "documents": self.documents,
            "rejects": dict(sorted(self.rejects.items())),
            "lines_in": self.lines_in,
            "lines_kept": self.lines_kept,
            "rules_hit": dict(sorted(self.rules_hit.items(), key=lambda kv: (-kv[1], kv[0]))),
            "languages": dict(sorted(self.languages.items(), key=lambda kv: (-kv[1], kv[0]))),
            "stages": {
                name: {"seconds": round(self.stage_seconds[name], 3), "rejected": self.stage_rejects[name]}
                for name in self.stage_seconds
            },
        }


class Pipeline:
    """Rules, stop lists and stages, built once; `process` maps one page to an outcome."""

    def __init__(self, config: Config, rules: RuleSet | None = None) -> None:
        self.config = config
        self.rules = rules if rules is not None else load_rules(config.rules_dirs)
        self.stopwords = StopwordIndex.load()
        load_profiles()
        self.stages: dict[str, list[Stage]] = {
            "text": text_stages(config, self.rules, self.stopwords),
            "html": html_stages(config, self.rules, self.stopwords),
        }

    def process(self, page: RawPage, counters: Counters | None = None) -> Outcome:
        counters = counters if counters is not None else Counters()
        counters.inputs += 1
        stage_name = "decode"
        started = time.perf_counter()
        doc = Document(id="", text="", metadata={"source_path": page.source_path})
        try:
            if page.meta.get("reject"):
                raise Rejected(*page.meta["reject"])
            with time_limit(self.config.extract_timeout):
                doc = decode_page(page, self.config)
                for stage in self.stages[doc.metadata["source_format"]]:
                    counters.stage_seconds[stage_name] += time.perf_counter() - started
                    stage_name, started = stage.name, time.perf_counter()
                    doc = stage.process(doc)
        except TimeLimitExceeded:
            detail = f"processing took longer than extract_timeout = {self.config.extract_timeout}s"
            return self._reject(doc, page, "timeout", detail, stage_name, counters)
        except Rejected as rejected:
            return self._reject(doc, page, rejected.reason, rejected.detail, stage_name, counters)
        except Exception as exc:  # a bug or a pathological page must not stop the run
            detail = f"{type(exc).__name__}: {exc}"
            return self._reject(doc, page, "error", detail, stage_name, counters)
        finally:
            counters.stage_seconds[stage_name] += time.perf_counter() - started
        counters.documents += 1
        cleaning = doc.metadata.get("cleaning", {})
        counters.rules_hit.update(cleaning.get("rules_hit", {}))
        counters.lines_in += cleaning.get("lines_in", 0)
        counters.lines_kept += cleaning.get("lines_kept", 0)
        counters.languages[doc.metadata.get("language") or "unknown"] += 1
        return Outcome(doc)

    def _reject(self, doc: Document, page: RawPage, reason: str, detail: str, stage: str,
                counters: Counters) -> Outcome:
        if not doc.id:
            doc.id = document_id(page.rel_path, page.meta.get("url"))
        doc.metadata["source_path"] = page.source_path
        if page.meta.get("url"):
            doc.metadata.setdefault("url", page.meta["url"])
        doc.metadata["filter_reason"] = reason
        doc.metadata["filter_detail"] = detail
        doc.metadata["filter_stage"] = stage
        counters.rejects[reason] += 1
        counters.stage_rejects[stage] += 1
        cleaning = doc.metadata.get("cleaning", {})
        counters.rules_hit.update(cleaning.get("rules_hit", {}))
        return Outcome(doc, reject_reason=reason)


# --- whole runs ---------------------------------------------------------------------------------------

# Reasons that mean an input failed (as opposed to holding no article); they count toward max_error_rate.
FAILURE_REASONS = frozenset(
    {"error", "binary", "undecodable", "bad_gzip", "unreadable", "too_large", "timeout", "bad_jsonl", "bad_warc"}
)
_METADATA_ORDER = (
    "source_path", "source_format", "url", "fetched_at", "title", "author", "date", "sitename", "hostname",
    "language", "language_score", "word_count", "content_hash", "duplicate_of", "dup_cluster",
    "similarity", "categories", "tags", "cleaning", "provenance", "encoding",
)


def processed_at(now: float | None = None) -> str:
    """Run start in UTC; SOURCE_DATE_EPOCH, when set, pins it for byte-identical reruns."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = float(epoch) if epoch else (now if now is not None else time.time())
    return datetime.fromtimestamp(moment, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def record_of(doc: Document, stamp: str) -> dict:
    """The datatrove envelope: every schema key present (null when unknown), in the documented order.

    Text dumps, HTML, exports and archives thus share one schema, whatever each path could fill in.
    """
    meta = {key: doc.metadata.get(key) for key in _METADATA_ORDER}
    for key in sorted(doc.metadata):
        if key not in meta:
            meta[key] = doc.metadata[key]
    meta["pipeline_version"] = __version__
    meta["processed_at"] = stamp
    return {"id": doc.id, "text": doc.text, "metadata": meta}


@dataclass
class RunResult:
    counters: Counters
    failures: int
    error_rate: float
    exit_code: int
    report: dict


def run_corpus(raw: Path, out: Path, config: Config, pipeline: Pipeline | None = None) -> RunResult:
    """Clean every input under `raw` into `out/documents`, `out/rejects` and `out/report.json`."""
    started = time.time()
    stamp = processed_at(started)
    pipeline = pipeline or Pipeline(config)
    counters = Counters()
    documents = ShardWriter(out / "documents")
    rejects = ShardWriter(out / "rejects")
    try:
        for path in discover(raw):
            for page in read_inputs(path, raw, config.max_input_bytes):
                outcome = pipeline.process(page, counters)
                log.debug("%s: %s", page.source_path, outcome.reject_reason or "kept")
                sink = documents if outcome.reject_reason is None else rejects
                sink.write(record_of(outcome.document, stamp))
    except BaseException:
        documents.abort()
        rejects.abort()
        raise
    documents.close()
    rejects.close()
    failures = sum(n for reason, n in counters.rejects.items() if reason in FAILURE_REASONS)
    error_rate = failures / counters.inputs if counters.inputs else 0.0
    exit_code = 1 if error_rate > config.max_error_rate else 0
    report = {
        "pipeline_version": __version__,
        "processed_at": stamp,
        "input": str(raw),
        "output": str(out),
        **counters.as_dict(),
        "failures": failures,
        "error_rate": round(error_rate, 4),
        "max_error_rate": config.max_error_rate,
        "seconds": round(time.time() - started, 3),
    }
    write_atomic(out / "report.json", json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return RunResult(counters, failures, error_rate, exit_code, report)
