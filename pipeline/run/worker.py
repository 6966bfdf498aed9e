"""The per-page work of a run: the `Worker` each worker process builds once from the run's config, rules and
stamp, and what it sends back to the driver for each page."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from ..config import Config
from ..document import Document, Rejected
from ..records import Counters, document_id, record_of
from ..rules import RuleSet


@dataclass(slots=True)
class PageResult:
    key: str  # the input file it came from
    record: dict
    rejected: Rejected | None  # None: a kept document
    counters: Counters  # of this page alone
    exact: str | None = None
    sig: bytes | None = None
    shingles: int = 0


@dataclass(slots=True)
class EndOfInput:
    key: str
    failed: bool = False  # could not be read: not done, tried again next run


class Worker:
    """The pipeline of one worker process, built once (the executor calls `Worker(config, rules, stamp, source)` in each
    process), called with a chunk of items: a `PageResult` for each `(input key, RawPage)`, an `EndOfInput`
    passed through. Each page is processed before the next is taken (the local pool times each page from the
    moment it is taken: see executor.pool.LocalPoolExecutor)."""

    def __init__(self, config: Config, rules: RuleSet, stamp: str, source: str | None = None) -> None:
        # the stages' modules (trafilatura, dateparser, language models) load with the first worker, not with
        # the run: a rerun with nothing new never needs them (the run imports them before its pool forks)
        from ..stages.html import release_caches
        from ..stages.runner import Pipeline

        self.pipeline = Pipeline(config, rules)
        self.stamp, self.source = stamp, source
        self._release_caches = release_caches

    def __call__(self, chunk: Iterable) -> list:
        results = [self.one(item) for item in chunk]
        self._release_caches()
        return results

    def one(self, item) -> PageResult | EndOfInput:
        if isinstance(item, EndOfInput):
            return item
        key, page = item
        counters = Counters()
        outcome = self.pipeline.process(page, counters)
        doc = outcome.document
        if outcome.rejected is None:
            exact, sig, shingles = doc.fingerprint  # the Fingerprint stage's, for the dedup steps
            return PageResult(key, record_of(doc, self.stamp, self.source), None, counters, exact, sig, shingles)
        return PageResult(key, record_of(doc, self.stamp, self.source), outcome.rejected, counters)


def crash_result(stamp: str, item, reason: str = "crash", detail: str = "the worker processing this page died",
                 source: str | None = None) -> object:
    """What a page whose worker died (a segfault, the OOM killer; `timeout`: killed at the page's deadline)
    becomes: a reject."""
    if isinstance(item, EndOfInput):
        return item
    key, page = item
    doc = Document(id=document_id(page.rel_path, page.meta.get("url")), text="", metadata={
        "source_path": page.source_path, "url": page.meta.get("url"), "filter_reason": reason,
        "filter_detail": detail, "filter_stage": "worker"})
    counters = Counters(pages=1, rejects=Counter({reason: 1}), stage_rejects=Counter(worker=1))
    counters.count_reject(reason, page.source_path)
    return PageResult(key, record_of(doc, stamp, source), Rejected(reason, detail), counters)
