"""The Python API: clean one page (a rendered-text dump or HTML) into the record `pagewash extract` prints.

    >>> from pipeline import Cleaner, clean_text
    >>> record = clean_text(open("dump.txt").read(), url="https://example.com/story")   # doctest: +SKIP
    >>> record["text"], record["metadata"]["title"], record["metadata"]["filter_reason"]  # doctest: +SKIP

    >>> cleaner = Cleaner()                      # loads rules, stop lists and models once (~0.4 s)
    >>> for html in pages:                       # doctest: +SKIP
    ...     record = cleaner.clean_html(html, url=url)

`clean_text` and `clean_html` build a `Cleaner` for each call: for more than a few pages, build one `Cleaner`
and reuse it. A `Cleaner` pickles small (its configuration and rules, not its loaded models), so it can be
shipped to other processes (multiprocessing, Spark, Ray, datatrove) and rebuilds its pipeline there on first use.

A page that gives no article is still a record: `metadata.filter_reason` says why (README, reject reasons),
and `text` holds the first 2,000 characters of what was read. Records follow the record schema
(pipeline/schema.py), as the shards of `pagewash run` do.

The time limit (`extract_timeout`) uses SIGALRM, which only a process's main thread can receive: called from
another thread, a `Cleaner` cleans without a time limit and says so once in the log (`time_limited` tells).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
from pathlib import Path

from .config import Config, load_config
from .document import Document, RawPage
from .records import processed_at, record_of
from .rules import RuleSet, load_rules

log = logging.getLogger("pagewash")

KINDS = ("auto", "text", "html")


class Cleaner:
    """Cleans pages one at a time with one configuration and one rule set, loaded once.

    `config`: a `Config`, the path of a TOML file, or None (the defaults); `rules_dirs`: extra rule folders, read
    after the packaged rules (as `--rules`); `rules`: a loaded `RuleSet` instead. `source` fills the records'
    `source` field.
    """

    def __init__(self, config: Config | str | Path | None = None, *, rules: RuleSet | None = None,
                 rules_dirs: tuple[str, ...] = (), source: str | None = None) -> None:
        if not isinstance(config, Config):
            config = load_config(config)
        if rules_dirs:
            config = dataclasses.replace(config, rules_dirs=(*config.rules_dirs, *(str(d) for d in rules_dirs)))
        self.config = config
        self.rules = rules if rules is not None else load_rules(config.rules_dirs)  # bad rules: refused now
        self.source = source
        self._pipeline = None
        self._warned = False

    def __getstate__(self) -> dict:
        """What a pickle holds: the configuration and the rules; the pipeline is rebuilt on first use."""
        return {"config": self.config, "rules": self.rules, "source": self.source}

    def __setstate__(self, state: dict) -> None:
        self.config, self.rules, self.source = state["config"], state["rules"], state["source"]
        self._pipeline = None
        self._warned = False

    @property
    def time_limited(self) -> bool:
        """Whether `extract_timeout` applies to a call from the current thread (only the main thread's do)."""
        return self.config.extract_timeout > 0 and threading.current_thread() is threading.main_thread()

    def clean(self, page: str | bytes, *, url: str | None = None, kind: str = "auto",
              fetched_at: str | None = None, name: str | None = None) -> dict:
        """The record of one page: `page` as text or bytes (any encoding, gzip too); `kind` `text` (a rendered
        dump), `html`, or `auto` (sniffed from the content, as `run` does); `url` and `fetched_at` as a
        sidecar or an export would give them. The id is the sha1 of the URL, else of `name` (the page's path, as a
        run names it), else of the page's bytes: two pages without either never share an id."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        data = page.encode("utf-8") if isinstance(page, str) else bytes(page)
        meta = {key: value for key, value in (("url", url), ("fetched_at", fetched_at)) if value}
        if kind != "auto":
            meta["kind"] = kind
        name = name or f"sha1:{hashlib.sha1(data).hexdigest()}"
        return self.record(RawPage(name, name, data, meta))

    def record(self, page: RawPage) -> dict:
        """The record of a page as a reader gives it (`pipeline.document.RawPage`: bytes, path, url…)."""
        return self.record_and_document(page)[0]

    def record_and_document(self, page: RawPage) -> tuple[dict, Document]:
        """The record of a page, and the document it was made from (with its line verdicts: `explain`)."""
        if self._pipeline is None:
            from .stages.runner import Pipeline  # the stages' libraries load with the first page, not the import

            self._pipeline = Pipeline(self.config, self.rules)
        if not self.time_limited and self.config.extract_timeout > 0 and not self._warned:
            log.warning("pagewash: cleaning off the main thread: extract_timeout (%ss) does not apply here",
                        self.config.extract_timeout)
            self._warned = True
        outcome = self._pipeline.process(page)
        return record_of(outcome.document, processed_at(), self.source), outcome.document

    def clean_text(self, text: str | bytes, *, url: str | None = None, **kwargs) -> dict:
        """The record of a rendered-text dump (one block a line)."""
        return self.clean(text, url=url, kind="text", **kwargs)

    def clean_html(self, html: str | bytes, *, url: str | None = None, **kwargs) -> dict:
        """The record of an HTML page."""
        return self.clean(html, url=url, kind="html", **kwargs)


def clean_text(text: str | bytes, *, url: str | None = None, config: Config | str | Path | None = None,
               rules_dirs: tuple[str, ...] = ()) -> dict:
    """The record of one rendered-text dump (builds a `Cleaner`: reuse one for many pages)."""
    return Cleaner(config, rules_dirs=rules_dirs).clean_text(text, url=url)


def clean_html(html: str | bytes, *, url: str | None = None, config: Config | str | Path | None = None,
               rules_dirs: tuple[str, ...] = ()) -> dict:
    """The record of one HTML page (builds a `Cleaner`: reuse one for many pages)."""
    return Cleaner(config, rules_dirs=rules_dirs).clean_html(html, url=url)
