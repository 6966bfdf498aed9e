"""What a page's processing yields beyond the document: counters, the record envelope, the stable id.

Kept apart from the stages (and their trafilatura, dateparser and language models) so that a run's driver,
which only schedules, triages inputs and writes records, starts without importing them: a rerun with
nothing new does not pay for a pipeline it never builds.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from . import __version__
from .document import Document
from .schema import conform


def document_id(rel_path: str, url: str | None = None) -> str:
    """Stable id: sha1 of the URL when known, else of the path relative to the input root. A name that is
    not UTF-8 (lone surrogates: `os.fsdecode`) is hashed as its bytes; any other lone surrogate (a JSON
    `\\ud800`) as `surrogatepass` encodes it. Valid text keeps the id it always had."""
    name = url or rel_path
    try:
        data = name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        data = name.encode("utf-8", "surrogatepass")
    return hashlib.sha1(data).hexdigest()


@dataclass
class Counters:
    """What `Pipeline.process` counts; a run adds these up over its pages (batch.RunCounters)."""

    pages: int = 0
    documents: int = 0
    rejects: Counter = field(default_factory=Counter)
    rules_hit: Counter = field(default_factory=Counter)  # lines each rule or signal dropped
    rules_words: Counter = field(default_factory=Counter)  # and their words
    languages: Counter = field(default_factory=Counter)
    stage_seconds: Counter = field(default_factory=Counter)
    stage_rejects: Counter = field(default_factory=Counter)
    lines_in: int = 0
    lines_kept: int = 0
    hosts: Counter = field(default_factory=Counter)  # kept documents by host
    length_bins: Counter = field(default_factory=Counter)  # (`in`|`kept`, bin): documents by lines in and kept
    reject_examples: dict = field(default_factory=dict)  # reason -> the first EXAMPLES source paths

    def merge(self, other: Counters) -> None:
        self.pages += other.pages
        self.documents += other.documents
        self.lines_in += other.lines_in
        self.lines_kept += other.lines_kept
        for name in ("rejects", "rules_hit", "rules_words", "languages", "stage_seconds", "stage_rejects", "hosts",
                     "length_bins"):
            getattr(self, name).update(getattr(other, name))
        for reason, paths in other.reject_examples.items():
            mine = self.reject_examples.setdefault(reason, [])
            mine += paths[:EXAMPLES - len(mine)]

    def count_document(self, lines_in: int, lines_kept: int, host: str | None) -> None:
        """A kept document's length before and after cleaning (lines, in power-of-two bins) and its host."""
        self.length_bins[("in", length_bin(lines_in))] += 1
        self.length_bins[("kept", length_bin(lines_kept))] += 1
        self.hosts[host or "(no host)"] += 1

    def count_reject(self, reason: str, source: str) -> None:
        examples = self.reject_examples.setdefault(reason, [])
        if len(examples) < EXAMPLES:
            examples.append(source)


EXAMPLES = 3  # source paths kept per reject reason for the report


def length_bin(n: int) -> str:
    """`0`, `1`, `2-3`, `4-7`, `8-15`, …: a power-of-two bin of a count."""
    if n < 2:
        return str(max(n, 0))
    low = 1 << (n.bit_length() - 1)
    return f"{low}-{2 * low - 1}"


# Reasons that mean an input failed (as opposed to holding no article); they count toward max_error_rate.
FAILURE_REASONS = frozenset(
    {"error", "binary", "undecodable", "bad_gzip", "unreadable", "too_large", "timeout", "memory", "crash",
     "bad_jsonl", "bad_warc"}
)


def processed_at(now: float | None = None) -> str:
    """Run start in UTC; SOURCE_DATE_EPOCH, when set, pins it for byte-identical reruns."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = float(epoch) if epoch else (now if now is not None else time.time())
    return datetime.fromtimestamp(moment, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def record_of(doc: Document, stamp: str, source: str | None = None) -> dict:
    """The record (the datatrove envelope with dolma's `source`, `added`, `created`): every field of the schema
    present, null when unknown, in the documented order (pipeline/schema.py), so that text dumps, HTML, exports
    and archives share one schema whatever each path could fill in."""
    meta = dict(doc.metadata, pipeline_version=__version__, processed_at=stamp)
    created = meta.get("date") or meta.get("fetched_at")
    return conform({"id": doc.id, "text": doc.text, "source": source, "added": stamp,
                    "created": created if isinstance(created, str) else None, "metadata": meta})


def count_cleaning(counters: Counters, cleaning: dict | None) -> None:
    """Add a record's `metadata.cleaning` to the run's counters."""
    if not cleaning:
        return
    for hit in cleaning.get("rules_hit") or ():
        counters.rules_hit[hit["rule"]] += hit["lines"]
        counters.rules_words[hit["rule"]] += hit["words"]


def from_input(source_path: str, key: str, rivals: Iterable[str] = (), root: Path | None = None) -> bool:
    """Whether a record's source_path (`path`, `path:line` or `path@offset`) names input `key`.

    `root`: the folder this run's input keys are relative to. A path equal to `root/key` is the input's, one
    equal to `root/rival` is not (`rivals`: keys of other inputs that left a record with the same id in the
    same shard). Otherwise (the record was written by a run that spelled the input root otherwise) the key
    is matched as a path suffix, the most specific key winning: the record of `a/x.warc` is not `x.warc`'s,
    though its path ends in `/x.warc` too.
    """
    for sep in ("@", ":"):
        head, _, tail = source_path.rpartition(sep)
        if head and tail.isdigit():
            source_path = head
            break
    if root is not None:
        if source_path == str(root / key):
            return True
        if any(source_path == str(root / rival) for rival in rivals):
            return False

    def names(candidate: str) -> bool:
        return source_path == candidate or source_path.endswith("/" + candidate)

    return names(key) and not any(len(rival) > len(key) and names(rival) for rival in rivals)
