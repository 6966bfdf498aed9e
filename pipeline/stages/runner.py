"""One page through its chain: a document or a reject out, with counters; whole runs are in `run/`."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from ..base import Stage
from ..clean.language import load_profiles
from ..clean.linemodel import load_model
from ..clean.stopwords import StopwordIndex
from ..config import Config
from ..document import Document, RawPage, Rejected
from ..records import Counters, count_cleaning, document_id
from ..rules import RuleSet, load_rules
from ..timelimit import TimeLimitExceeded, time_limit
from .chain import FIRST, chains

log = logging.getLogger("pagewash")

REJECT_TEXT_CHARS = 2000  # a reject keeps this much of its text: enough to see the page, never a whole huge input


def cut_reject_text(doc: Document) -> None:
    """Keep the first REJECT_TEXT_CHARS characters of a reject's text; `text_chars` notes the full length."""
    if len(doc.text) > REJECT_TEXT_CHARS:
        doc.metadata["text_chars"] = len(doc.text)
        doc.text = doc.text[:REJECT_TEXT_CHARS]


@dataclass
class Outcome:
    """A page's document, and the reject it became (None: a kept document); the reject's reason, detail and
    stage are in the document's metadata too (`filter_reason`, `filter_detail`, `filter_stage`)."""

    document: Document
    rejected: Rejected | None = None

    @property
    def reject_reason(self) -> str | None:
        return self.rejected.reason if self.rejected is not None else None


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
        stage_name = FIRST
        started = time.perf_counter()
        doc = Document(id="", text="", metadata={"source_path": page.source_path}, page=page)
        try:
            with time_limit(self.config.extract_timeout):
                chain, step = self.stages[FIRST], 0
                while step < len(chain):
                    stage, step = chain[step], step + 1
                    counters.stage_seconds[stage_name] += time.perf_counter() - started
                    stage_name, started = stage.name, time.perf_counter()
                    doc = stage.process(doc)
                    if doc.reroute is not None:  # the rest of the way through another chain, from its start
                        chain, step, doc.reroute = self.stages[doc.reroute], 0, None
        except TimeLimitExceeded:
            detail = f"processing took longer than extract_timeout = {self.config.extract_timeout}s"
            return self._reject(doc, page, Rejected("timeout", detail), stage_name, counters)
        except MemoryError:  # the worker's memory guard (memory_limit_mb) tripped on this page
            detail = f"processing needed more than memory_limit_mb = {self.config.memory_limit_mb} MB"
            return self._reject(doc, page, Rejected("memory", detail), stage_name, counters)
        except Rejected as rejected:
            return self._reject(doc, page, rejected, stage_name, counters)
        except Exception as exc:  # a bug or a pathological page must not stop the run
            detail = f"{type(exc).__name__}: {exc}"
            return self._reject(doc, page, Rejected("error", detail), stage_name, counters)
        finally:
            counters.stage_seconds[stage_name] += time.perf_counter() - started
        counters.documents += 1
        cleaning = doc.metadata.get("cleaning") or {}
        count_cleaning(counters, cleaning)
        counters.lines_in += cleaning.get("lines_in", 0)
        counters.lines_kept += cleaning.get("lines_kept", 0)
        counters.count_document(cleaning.get("lines_in", 0), cleaning.get("lines_kept", 0),
                                doc.metadata.get("hostname"))
        counters.languages[doc.metadata.get("language") or "unknown"] += 1
        return Outcome(doc)

    def _reject(self, doc: Document, page: RawPage, rejected: Rejected, stage: str, counters: Counters) -> Outcome:
        doc.page = None
        if not doc.id:
            doc.id = document_id(page.rel_path, page.meta.get("url"))
        doc.metadata["source_path"] = page.source_path
        if page.meta.get("url"):
            doc.metadata.setdefault("url", page.meta["url"])
        doc.metadata["filter_reason"] = rejected.reason
        doc.metadata["filter_detail"] = rejected.detail
        doc.metadata["filter_stage"] = stage
        cut_reject_text(doc)
        counters.rejects[rejected.reason] += 1
        counters.count_reject(rejected.reason, page.source_path)
        counters.stage_rejects[stage] += 1
        count_cleaning(counters, doc.metadata.get("cleaning"))
        return Outcome(doc, rejected)
