"""What the dedup steps decide and keep: the items and decisions, the keep policy (`representatives`), and the
records' dedup fields (`apply_decision`; `stage_as_kept` / `staged_as_kept`, the filter step's short way)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from json.encoder import encode_basestring  # type: ignore[attr-defined]

import numpy as np


@dataclass(slots=True)
class DedupItem:
    """What the global step needs of a document: no text, only its length, date and fingerprints."""

    id: str
    text_len: int
    date: str | None
    exact: str
    sig: bytes
    shingles: int  # distinct n-grams (0: unknown, then it links by Jaccard only)


@dataclass(slots=True)
class KeptRows:
    """Kept documents to index, as columns (no object per document): what `DedupItem`s hold, the
    signatures as one matrix (a row a document)."""

    ids: list[str]
    exacts: list[str]
    text_len: list[int]
    dates: list[str | None]
    sigs: np.ndarray
    shingles: list[int]


@dataclass(slots=True)
class Decision:
    """`duplicate_of` None: kept. `cluster`: id of the kept representative (a kept document's own id).
    `superseded_by`: for an earlier capture of a URL replaced by a newer one with other text (`[dedup]
    recapture = "update"`), the input the newer capture came from."""

    id: str
    duplicate_of: str | None
    similarity: float | None
    cluster: str
    superseded_by: str | None = None


def representatives(roots: np.ndarray, pinned: np.ndarray, seen: np.ndarray, dates: np.ndarray,
                    text_len: np.ndarray, keep: str = "longest") -> np.ndarray:
    """Position of each node's representative, by component (`roots`, positions). A pinned node (kept by an
    earlier run) always wins, the one indexed first among several. Otherwise `keep`: `longest` text, then
    the earliest date; `earliest` date, then the longest text; `first_seen` neither. Ties go to the node
    seen first (`seen`: a rank in processing order), never to an id, so a mirror does not beat the original
    merely by a smaller id. The dates and lengths of pinned nodes are not read.

    `dates` is a numpy string array (UTF-8 bytes, `S`, or `U`: ISO dates sort as strings); an empty date is
    no date, and sorts last. Nothing here is a Python object per node."""
    total = len(roots)
    dated = (dates != dates.dtype.type()) & ~pinned
    known = np.unique(dates[dated])
    date_key = np.where(dated, np.searchsorted(known, dates), len(known))
    length_key = np.where(pinned, 0, -np.asarray(text_len, dtype=np.int64))
    date_key = np.where(pinned, 0, date_key)
    seen = np.asarray(seen, dtype=np.int64)
    if keep == "longest":
        keys = (seen, date_key, length_key)
    elif keep == "earliest":
        keys = (seen, length_key, date_key)
    elif keep == "first_seen":
        keys = (seen,)
    else:
        raise ValueError(f"unknown keep policy {keep!r}")
    order = np.lexsort((*keys, ~pinned, roots))
    sorted_roots = roots[order]
    first = np.r_[True, sorted_roots[1:] != sorted_roots[:-1]] if total else np.zeros(0, dtype=bool)
    rep_of_root = np.empty(total, dtype=np.int64)
    rep_of_root[sorted_roots[first]] = order[first]
    return rep_of_root[roots]


def utf8_array(values: Iterable[str | None]) -> np.ndarray:
    """Strings as a numpy `S` array of their UTF-8 bytes (None as empty), which sorts as the strings do."""
    return np.array([(v or "").encode("utf-8") for v in values], dtype=np.bytes_)


class _UnionFind:
    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def roots(self) -> np.ndarray:
        return np.array([self.find(x) for x in range(len(self.parent))], dtype=np.int64)


def apply_decision(record: dict, decision: Decision) -> str:
    """Write a decision into the record's metadata; the stream it goes to (`documents` or `duplicates`)."""
    record.setdefault("metadata", {}).update(duplicate_of=decision.duplicate_of, similarity=decision.similarity,
                                             dup_cluster=decision.cluster, superseded_by=decision.superseded_by)
    return "documents" if decision.duplicate_of is None else "duplicates"


def stage_as_kept(record: dict) -> dict:
    """Write the kept decision into a record about to be staged (what most records end up with), so that
    the filter step copies a kept record's staged line as it is (`staged_as_kept`) instead of parsing and
    writing it again. Returns the record."""
    apply_decision(record, Decision(record["id"], None, None, record["id"]))
    return record


def staged_as_kept(line: str, doc_id: str) -> bool:
    """Whether a staged JSON line (`writer.to_json`'s) is record `doc_id` holding the kept decision in the
    metadata's schema order (`records.record_of`): then it is the line a kept decision writes, byte for
    byte. Keys are the only places a bare `"` appears, so the test cannot be fooled by text; a record in
    any other shape gets False and goes the long way (parse, decide, write)."""
    quoted = encode_basestring(doc_id)  # as `to_json` writes it, but for lone surrogates (then: the long way)
    return line.startswith(f'{{"id":{quoted},') and \
        f'"duplicate_of":null,"dup_cluster":{quoted},"similarity":null,"superseded_by":null,' in line
