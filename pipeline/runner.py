"""The stages over one page: a document or a reject out, with counters; whole runs are in batch.py."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from .base import Stage
from .config import Config
from .document import Document, RawPage, Rejected
from .language import load_profiles
from .linemodel import load_model
from .records import Counters, document_id
from .rules import RuleSet, load_rules
from .stages import chains, decode_page
from .stopwords import StopwordIndex
from .timelimit import TimeLimitExceeded, time_limit

log = logging.getLogger("pagewash")

REJECT_TEXT_CHARS = 2000  # a reject keeps this much of its text: enough to see the page, never a whole huge input


def cut_reject_text(doc: Document) -> None:
    """Keep the first REJECT_TEXT_CHARS characters of a reject's text; `text_chars` notes the full length."""
    if len(doc.text) > REJECT_TEXT_CHARS:
        doc.metadata["text_chars"] = len(doc.text)
        doc.text = doc.text[:REJECT_TEXT_CHARS]


@dataclass
class Outcome:
    document: Document
    reject_reason: str | None = None  # None: a kept document


class Pipeline:
    """Rules, stop lists and stages, built once; `process` maps one page to an outcome."""

    def __init__(self, config: Config, rules: RuleSet | None = None) -> None:
        self.config = config
        self.rules = rules if rules is not None else load_rules(config.rules_dirs)
        self.stopwords = StopwordIndex.load()
        load_profiles()
        self.model = load_model(config.clean.model) if config.clean.method == "model" else None
        self.stages: dict[str, list[Stage]] = chains(config, self.rules, self.stopwords, self.model)

    def process(self, page: RawPage, counters: Counters | None = None) -> Outcome:
        counters = counters if counters is not None else Counters()
        counters.pages += 1
        stage_name = "decode"
        started = time.perf_counter()
        doc = Document(id="", text="", metadata={"source_path": page.source_path})
        try:
            if page.meta.get("reject"):
                raise Rejected(*page.meta["reject"])
            with time_limit(self.config.extract_timeout):
                doc = decode_page(page, self.config)
                chain, step = self.stages[doc.metadata["source_format"]], 0
                while step < len(chain):
                    stage, step = chain[step], step + 1
                    counters.stage_seconds[stage_name] += time.perf_counter() - started
                    stage_name, started = stage.name, time.perf_counter()
                    doc = stage.process(doc)
                    if doc.reroute is not None:  # the rest of the way through another chain, from its start
                        chain, step, doc.reroute = self.stages[doc.reroute], 0, None
        except TimeLimitExceeded:
            detail = f"processing took longer than extract_timeout = {self.config.extract_timeout}s"
            return self._reject(doc, page, "timeout", detail, stage_name, counters)
        except MemoryError:  # the worker's memory guard (memory_limit_mb) tripped on this page
            detail = f"processing needed more than memory_limit_mb = {self.config.memory_limit_mb} MB"
            return self._reject(doc, page, "memory", detail, stage_name, counters)
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
        cut_reject_text(doc)
        counters.rejects[reason] += 1
        counters.stage_rejects[stage] += 1
        cleaning = doc.metadata.get("cleaning", {})
        counters.rules_hit.update(cleaning.get("rules_hit", {}))
        return Outcome(doc, reject_reason=reason)
