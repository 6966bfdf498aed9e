"""Run the stages over inputs: one page in, a document or a reject out; counters for the report."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from .base import Stage
from .config import Config
from .document import Document, RawPage, Rejected
from .rules import RuleSet, load_rules
from .stages import decode_page, text_stages
from .stopwords import StopwordIndex


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
        self.stages: list[Stage] = text_stages(config, self.rules, self.stopwords)

    def process(self, page: RawPage, counters: Counters | None = None) -> Outcome:
        counters = counters if counters is not None else Counters()
        counters.inputs += 1
        stage_name = "decode"
        started = time.perf_counter()
        doc = Document(id="", text="", metadata={"source_path": page.source_path})
        try:
            doc = decode_page(page, self.config)
            for stage in self.stages:
                counters.stage_seconds[stage_name] += time.perf_counter() - started
                stage_name, started = stage.name, time.perf_counter()
                doc = stage.process(doc)
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
        from .stages import document_id

        if not doc.id:
            doc.id = document_id(page.rel_path, page.meta.get("url"))
        doc.metadata["source_path"] = page.source_path
        doc.metadata["filter_reason"] = reason
        doc.metadata["filter_detail"] = detail
        doc.metadata["filter_stage"] = stage
        counters.rejects[reason] += 1
        counters.stage_rejects[stage] += 1
        cleaning = doc.metadata.get("cleaning", {})
        counters.rules_hit.update(cleaning.get("rules_hit", {}))
        return Outcome(doc, reject_reason=reason)
