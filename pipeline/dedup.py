"""Exact and near-duplicate detection: MinHash over word n-grams, LSH banding, verified pairs, union-find.

The map step (`fingerprint`, or `exact_key` and `signature`) is a pure function of one text and runs in the
workers. The global step (`DedupIndex.resolve`) groups a batch by exact key, finds candidate pairs by LSH
banding within the batch and against the documents kept by earlier runs (the index in SQLite), verifies
every candidate by the share of equal signature slots, and keeps one document per connected component.
An LSH collision alone never links two documents. Only kept documents are indexed, so the index grows
with the kept corpus by one signature and `bands` band keys per document.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import re
import sqlite3
import time
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rensa import RMinHash

from .config import DedupConfig
from .state import STATE_DIR, STREAMS, content_sha1, sql_chunks, sql_marks
from .store import LocalStore
from .writer import ShardSet, shard_name, shard_seq

# Bump when tokens, shingle hashing or band keys change: an index built otherwise must be rebuilt.
SCHEME = f"pagewash-2/rensa-{getattr(RMinHash, 'ALGORITHM_VERSION', 0)}"
_RUN_ALL_PAIRS = 8  # documents sharing one band key: pairs up to this distance apart, and all with the first


def _separator_class() -> str:
    """Punctuation, symbols, separators and controls of the Basic Multilingual Plane, plus emoji.

    A negated class over the BMP compiles to one bitmap, as fast as `\\w`; unlike `\\w` it keeps combining
    marks (Devanagari vowel signs, Thai tone marks) inside their words. Astral ranges would be tested one by
    one, so only the emoji blocks are listed there.
    """
    ranges, start = [], None
    for cp in range(0x10000):
        separator = unicodedata.category(chr(cp))[0] in "PSZC"
        if separator and start is None:
            start = cp
        elif not separator and start is not None:
            ranges.append((start, cp - 1))
            start = None
    if start is not None:
        ranges.append((start, 0xFFFF))
    ranges.append((0x1F000, 0x1FBFF))
    return "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)


# Scripts written without spaces between words (Han, kana, Thai, Lao, Myanmar, Khmer): each character is a
# token, so their shingles are character n-grams; other scripts' words stay whole (mixed text: per script)
_UNSPACED = ("\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
             "\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f")
_WORD = re.compile(f"[^{_separator_class()}]+")
_HAS_UNSPACED = re.compile(f"[{_UNSPACED}]")
_SPLIT_UNSPACED = re.compile(f"[{_UNSPACED}]|[^{_UNSPACED}]+")
# odd 64-bit multipliers (powers of the golden ratio constant) weighting the words of a shingle
_SHINGLE_MUL = np.array([pow(0x9E3779B97F4A7C15, k + 1, 1 << 64) for k in range(64)], dtype=np.uint64)


def _words(text: str) -> list[str]:
    words = _WORD.findall(text.casefold())
    if _HAS_UNSPACED.search(text) is None:  # most texts: one pass
        return words
    return [part for word in words for part in _SPLIT_UNSPACED.findall(word)]


def normalise(text: str) -> str:
    """Casefolded words separated by single spaces: punctuation, symbols and layout removed."""
    return " ".join(_words(text))


def _exact(words: list[str]) -> str:
    return hashlib.blake2b(" ".join(words).encode("utf-8"), digest_size=16).hexdigest()


def exact_key(text: str) -> str:
    """Hash of the normalised text: equal for copies that differ only in case, punctuation or spacing."""
    return _exact(_words(text))


def _signature(words: list[str], cfg: DedupConfig) -> tuple[bytes, int]:
    """The MinHash signature of the words' n-grams and the number of distinct n-grams (the set's size, which
    turns an estimated Jaccard similarity into an estimated containment: `link`)."""
    n = cfg.ngram
    count = len(words) - n + 1
    if count > 0 and n <= len(_SHINGLE_MUL):
        # shingle hash = weighted sum of its word hashes: one numpy pass instead of joining strings
        word_hashes = np.array(RMinHash.hash_token_sets([words])[0], dtype=np.uint64)
        shingles = word_hashes[:count] * _SHINGLE_MUL[0]
        for k in range(1, n):
            shingles += word_hashes[k:count + k] * _SHINGLE_MUL[k]
    else:  # shorter than one shingle: the whole text is one (n-grams beyond 64 words: joined strings)
        shingles = np.array(RMinHash.hash_token_sets([[" ".join(words[i:i + n]) for i in range(max(count, 1))]])[0],
                            dtype=np.uint64)
    offsets = np.array([0, len(shingles)], dtype=np.uint64)
    digest = RMinHash.digest_matrix_from_flat_token_hashes(shingles, offsets, cfg.num_perm, cfg.seed)
    ordered = np.sort(shingles)  # distinct shingles: np.unique costs 5x more on a page's few hundred
    distinct = 1 + int(np.count_nonzero(ordered[1:] != ordered[:-1])) if len(ordered) else 0
    return np.array(digest.to_rows()[0], dtype="<u4").tobytes(), distinct


def signature(text: str, cfg: DedupConfig) -> bytes:
    """MinHash of the text's word n-grams: `cfg.num_perm` little-endian uint32 values as bytes."""
    return _signature(_words(text), cfg)[0]


def fingerprint(text: str, cfg: DedupConfig) -> tuple[str, bytes, int]:
    """`(exact_key(text), signature(text, cfg), distinct n-grams)` from one tokenisation: the map step's work."""
    words = _words(text)
    return _exact(words), *_signature(words, cfg)


def link(share: np.ndarray, size_a: np.ndarray, size_b: np.ndarray, cfg: DedupConfig) -> np.ndarray:
    """Which candidate pairs link: estimated Jaccard `share` at least `threshold`, or the shorter text
    (at least `containment_min` n-grams) estimated to lie within the longer by at least `containment`.

    With set sizes a <= b and Jaccard J, the intersection is J (a + b) / (1 + J) and the containment of the
    shorter in the longer that over a: a copy cut to its first third has J ~ 0.3 but containment ~ 1. A
    size of 0 (unknown: a signature from before sizes were kept) links by Jaccard only. The estimate is
    capped at 1, so a `containment` above 1 turns this second test off."""
    share = np.asarray(share, dtype=np.float64)
    a = np.asarray(size_a, dtype=np.float64)
    b = np.asarray(size_b, dtype=np.float64)
    small = np.minimum(a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        contained = np.where(small > 0, np.minimum(share * (a + b) / ((1.0 + share) * small), 1.0), 0.0)
    return (share >= cfg.threshold - 1e-9) | ((contained >= cfg.containment - 1e-9) & (small >= cfg.containment_min))


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
class Decision:
    """`duplicate_of` None: kept. `cluster`: id of the kept representative (a kept document's own id)."""

    id: str
    duplicate_of: str | None
    similarity: float | None
    cluster: str


_SCHEMA = """
CREATE TABLE IF NOT EXISTS dedup_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dedup_docs (
    doc INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    exact TEXT NOT NULL,
    sig BLOB NOT NULL,
    text_len INTEGER NOT NULL,
    date TEXT,
    shingles INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS dedup_docs_exact ON dedup_docs (exact);
CREATE TABLE IF NOT EXISTS dedup_bands (  -- the LSH buckets of kept documents
    band INTEGER NOT NULL,
    key INTEGER NOT NULL,
    doc INTEGER NOT NULL,
    PRIMARY KEY (band, key, doc)
) WITHOUT ROWID;
"""


def band_key(sigs: np.ndarray, band: int, rows: int) -> np.ndarray:
    """The LSH key of one band for each signature: a signed 64-bit hash of the band's `rows` slots."""
    block = sigs[:, band * rows:(band + 1) * rows].astype(np.uint64)
    h = block[:, 0] * _SHINGLE_MUL[0]
    for j in range(1, rows):
        h ^= block[:, j] * _SHINGLE_MUL[j]
        h *= _SHINGLE_MUL[0]
    h ^= h >> np.uint64(29)  # splitmix64 finaliser: every input bit reaches the key's every bit
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(32)
    return h.view(np.int64)


def _sig_matrix(sigs: list[bytes], num_perm: int) -> np.ndarray:
    width = 4 * num_perm
    for sig in sigs:
        if len(sig) != width:
            raise ValueError(f"signature of {len(sig)} bytes, expected {width} (num_perm {num_perm})")
    return np.frombuffer(b"".join(sigs), dtype="<u4").reshape(len(sigs), num_perm)


def _bucket_pairs(keys: np.ndarray) -> np.ndarray:
    """Pairs (i, j), i < j, of positions with equal keys: a (k, 2) int64 array.

    A bucket of up to `_RUN_ALL_PAIRS` + 1 members yields all its pairs; the members of a larger one pair
    with that many neighbours (in key, then position order) and with the bucket's first member.
    """
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    found = []
    distance = 1
    while distance <= _RUN_ALL_PAIRS and distance < len(order):
        same = np.flatnonzero(sorted_keys[distance:] == sorted_keys[:-distance])
        if not len(same):
            break
        found.append(np.stack([order[same], order[same + distance]], axis=1))
        distance += 1
    if distance > _RUN_ALL_PAIRS:
        starts = np.r_[0, np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1]
        first = np.repeat(starts, np.diff(np.r_[starts, len(order)]))
        far = np.flatnonzero(np.arange(len(order)) - first > _RUN_ALL_PAIRS)
        found.append(np.stack([order[first[far]], order[far]], axis=1))
    if not found:
        return np.empty((0, 2), dtype=np.int64)
    return np.sort(np.concatenate(found).astype(np.int64), axis=1)


def _hits_to_pairs(keys: np.ndarray, hit_keys: np.ndarray, hit_docs: np.ndarray) -> np.ndarray:
    """(position in `keys`, doc) for every position whose key equals a hit's key."""
    order = np.argsort(keys, kind="stable")
    column = keys[order]
    lo = np.searchsorted(column, hit_keys, side="left")
    counts = np.searchsorted(column, hit_keys, side="right") - lo
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.stack([order[np.repeat(lo, counts) + offsets], np.repeat(hit_docs, counts)], axis=1)


def _unique_pairs(pairs: np.ndarray, size: int) -> np.ndarray:
    if not len(pairs):
        return pairs
    codes = np.unique(pairs[:, 0] * size + pairs[:, 1])
    return np.stack([codes // size, codes % size], axis=1)


def _equal_share(sigs: np.ndarray, a: np.ndarray, b: np.ndarray, chunk: int = 32_768) -> np.ndarray:
    """Estimated Jaccard of each pair (a[k], b[k]): the share of equal signature slots."""
    out = np.empty(len(a), dtype=np.float64)
    for start in range(0, len(a), chunk):
        end = start + chunk
        out[start:end] = (sigs[a[start:end]] == sigs[b[start:end]]).mean(axis=1)
    return out


def representatives(roots: np.ndarray, pinned: np.ndarray, ids: np.ndarray, dates: np.ndarray,
                    text_len: np.ndarray) -> np.ndarray:
    """Position of each node's representative, by component (`roots`, positions): the pinned node (kept
    by an earlier run) with the smallest id, else the longest text, then the earliest date (none last),
    then the smallest id. The dates and lengths of pinned nodes are not read.

    `ids` and `dates` are numpy string arrays (UTF-8 bytes, `S`, or `U`; their order is that of the
    strings); an empty date is no date. Nothing here is a Python object per node."""
    total = len(ids)
    id_rank = np.empty(total, dtype=np.int64)
    id_rank[np.argsort(ids, kind="stable")] = np.arange(total)
    dated = (dates != dates.dtype.type()) & ~pinned
    known = np.unique(dates[dated])
    date_key = np.where(dated, np.searchsorted(known, dates), len(known))
    lengths = np.asarray(text_len, dtype=np.int64)
    order = np.lexsort((id_rank, np.where(pinned, 0, date_key), np.where(pinned, 0, -lengths), ~pinned, roots))
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

    def grow(self, size: int) -> None:
        self.parent.extend(range(len(self.parent), size))

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


_NODE_FIELDS = "doc, id, exact, sig, shingles"


class _Nodes:
    """The documents one `resolve` reasons about: the batch's items first, then indexed documents found."""

    def __init__(self, items: list[DedupItem], num_perm: int) -> None:
        self.num_perm = num_perm
        self.ids = [item.id for item in items]
        self.exact = [item.exact for item in items]
        self.sigs = _sig_matrix([item.sig for item in items], num_perm)
        self.sizes = [item.shingles for item in items]
        self.of_id = {item.id: k for k, item in enumerate(items)}
        self.of_doc: dict[int, int] = {}  # index rowid -> node

    def add_indexed(self, rows: list[tuple], pinned: set[str]) -> list[tuple[str, int]]:
        """Adds the rows `(doc, id, exact, sig, shingles)` not yet known; returns `(exact, node)` for every row."""
        found, new_sigs = [], []
        for doc, doc_id, exact, sig, shingles in rows:
            node = self.of_doc.get(doc)
            if node is None:
                node = self.of_id.get(doc_id)
                if node is None:  # not in the batch: a document kept by an earlier batch
                    node = self.of_id[doc_id] = len(self.ids)
                    self.ids.append(doc_id)
                    self.exact.append(exact)
                    self.sizes.append(shingles)
                    new_sigs.append(sig)
                    pinned.add(doc_id)
                self.of_doc[doc] = node
            found.append((exact, node))
        if new_sigs:
            self.sigs = np.concatenate([self.sigs, _sig_matrix(new_sigs, self.num_perm)])
        return found


class DedupIndex:
    """The kept documents of earlier batches (signatures, exact keys, LSH band keys) in a SQLite database.

    `resolve` only reads; `stage`, `forget` and `reset` write without transaction handling, so that the
    caller commits them together with its own state.
    """

    def __init__(self, db: sqlite3.Connection, cfg: DedupConfig, rebuild: bool = False, check: bool = True) -> None:
        """Raises ValueError if the index was built with other parameters, unless `rebuild`: then the caller
        must `reset()` it (inside its own transaction) before using it. `check=False`: lookups only, by a
        task of a run that has checked the parameters (no schema statement, no write)."""
        self.db = db
        self.cfg = cfg
        if not check:
            return
        self.create_schema(db)
        params = self._params()
        stored = dict(db.execute("SELECT key, value FROM dedup_meta"))
        if rebuild:
            return
        if not stored:
            db.executemany("INSERT INTO dedup_meta (key, value) VALUES (?, ?)", params.items())
        elif stored != params:
            diff = ", ".join(f"{k} {stored.get(k)} -> {v}" for k, v in params.items() if stored.get(k) != v)
            raise ValueError(f"the dedup index was built with other parameters ({diff}); rebuild it")

    def _params(self) -> dict[str, str]:
        cfg = self.cfg
        return {"num_perm": str(cfg.num_perm), "bands": str(cfg.bands), "rows": str(cfg.rows),
                "ngram": str(cfg.ngram), "seed": str(cfg.seed), "scheme": SCHEME}

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM dedup_docs").fetchone()[0]

    def known_ids(self, ids: Iterable[str]) -> set[str]:
        """The ids among `ids` that are indexed (kept by an earlier batch)."""
        found: set[str] = set()
        for chunk in sql_chunks(sorted(set(ids))):
            found.update(r[0] for r in self.db.execute(f"SELECT id FROM dedup_docs WHERE id IN ({sql_marks(chunk)})",
                                                       chunk))
        return found

    def _docs_where(self, column: str, values: list, fields: str = "doc, id, exact, sig") -> list[tuple]:
        rows = []
        for chunk in sql_chunks(values):
            rows += self.db.execute(
                f"SELECT {fields} FROM dedup_docs WHERE {column} IN ({sql_marks(chunk)})", chunk).fetchall()
        return rows

    def _band_hits(self, band: int, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(key, doc) of the indexed documents whose key in `band` is among `keys`."""
        hits = []
        for chunk in sql_chunks(np.unique(keys).tolist()):
            hits += self.db.execute(f"SELECT key, doc FROM dedup_bands WHERE band = ? AND key IN ({sql_marks(chunk)})",
                                    [band, *chunk]).fetchall()
        found = np.array(hits, dtype=np.int64).reshape(-1, 2)
        return found[:, 0], found[:, 1]

    def resolve(self, batch: list[DedupItem]) -> list[Decision]:
        """One decision per item, in input order; reads the index, never writes it."""
        if not batch:
            return []
        cfg = self.cfg
        first_of: dict[str, int] = {}
        for i, item in enumerate(batch):
            first_of.setdefault(item.id, i)
        # nodes 0..m-1: the batch's distinct ids in id order, so that input order cannot matter;
        # then the indexed documents that a lookup finds
        items = [batch[i] for i in sorted(first_of.values(), key=lambda i: batch[i].id)]
        m = len(items)
        nodes = _Nodes(items, cfg.num_perm)
        indexed = self.db.execute("SELECT 1 FROM dedup_docs LIMIT 1").fetchone() is not None
        pinned = self.known_ids(nodes.ids) if indexed else set()  # kept before: kept again, never a duplicate
        links = _UnionFind(m)
        # 1) exact copies, within the batch and against the index
        leaders: dict[str, int] = {}
        for k, item in enumerate(items):
            if item.exact in leaders:
                links.union(leaders[item.exact], k)
            else:
                leaders[item.exact] = k
        if indexed:
            found = nodes.add_indexed(self._docs_where("exact", sorted(leaders), _NODE_FIELDS), pinned)
            links.grow(len(nodes.ids))
            for exact, node in found:
                links.union(leaders[exact], node)
        # 2) near copies: LSH candidates among the exact leaders and against the index, each one verified
        lead = np.array(sorted(leaders.values()), dtype=np.int64)
        lead_sigs = nodes.sigs[:m] if len(lead) == m else nodes.sigs[lead]
        pairs, doc_pairs = [], []
        for band in range(cfg.bands):
            keys = band_key(lead_sigs, band, cfg.rows)
            pairs.append(lead[_bucket_pairs(keys)])
            if indexed:
                hit_keys, hit_docs = self._band_hits(band, keys)
                if len(hit_keys):
                    doc_pairs.append(_hits_to_pairs(keys, hit_keys, hit_docs))
        if doc_pairs:
            doc_pairs = np.unique(np.concatenate(doc_pairs), axis=0)
            wanted = sorted(set(doc_pairs[:, 1].tolist()) - set(nodes.of_doc))
            nodes.add_indexed(self._docs_where("doc", wanted, _NODE_FIELDS), pinned)
            links.grow(len(nodes.ids))
            other = np.array([nodes.of_doc[doc] for doc in doc_pairs[:, 1].tolist()], dtype=np.int64)
            mine = lead[doc_pairs[:, 0]]
            keep = mine != other  # an item indexed before meets its own band keys
            pairs.append(np.sort(np.stack([mine[keep], other[keep]], axis=1), axis=1))
        pairs = _unique_pairs(np.concatenate(pairs), len(nodes.ids))
        if len(pairs):
            share = _equal_share(nodes.sigs, pairs[:, 0], pairs[:, 1])
            sizes = np.asarray(nodes.sizes, dtype=np.int64)
            for a, b in pairs[link(share, sizes[pairs[:, 0]], sizes[pairs[:, 1]], cfg)].tolist():
                links.union(a, b)
        # 3) one representative per component; every other member of the batch is its duplicate
        rep_of = self._representatives(items, nodes, pinned, links.roots())
        dups = np.flatnonzero(rep_of[:m] != np.arange(m))
        dups = dups[np.array([nodes.ids[k] not in pinned for k in dups.tolist()], dtype=bool)]
        share = _equal_share(nodes.sigs, dups, rep_of[dups])
        decided = [Decision(item.id, None, None, item.id) for item in items]
        for k, rep, sim in zip(dups.tolist(), rep_of[dups].tolist(), share.tolist(), strict=True):
            sim = 1.0 if nodes.exact[k] == nodes.exact[rep] else round(sim, 4)
            decided[k] = Decision(nodes.ids[k], nodes.ids[rep], sim, nodes.ids[rep])
        if len(first_of) == len(batch):
            order = sorted(range(m), key=lambda k: first_of[items[k].id])
            return [decided[k] for k in order]
        out = []
        for i, item in enumerate(batch):
            node = nodes.of_id[item.id]
            decision = decided[node]
            if first_of[item.id] != i:  # the same id again: a copy of what its first occurrence was kept as
                target = node if decision.duplicate_of is None else int(rep_of[node])
                own = _sig_matrix([item.sig], cfg.num_perm)[0]
                sim = 1.0 if item.exact == nodes.exact[target] else round(float((nodes.sigs[target] == own).mean()), 4)
                decision = Decision(item.id, nodes.ids[target], sim, nodes.ids[target])
            out.append(decision)
        return out

    @staticmethod
    def _representatives(items: list[DedupItem], nodes: _Nodes, pinned: set[str], roots: np.ndarray) -> np.ndarray:
        """Node of each node's representative (`representatives`); nodes past the batch's are indexed."""
        m = len(items)
        extra = len(nodes.ids) - m
        return representatives(roots, np.array([node_id in pinned for node_id in nodes.ids], dtype=bool),
                               utf8_array(nodes.ids), utf8_array([item.date for item in items] + [None] * extra),
                               np.array([item.text_len for item in items] + [0] * extra, dtype=np.int64))

    def stage(self, batch: list[DedupItem], decisions: list[Decision]) -> None:
        """Index the kept items (INSERTs only, no transaction handling); staging twice changes nothing."""
        kept: dict[str, DedupItem] = {}
        for item, decision in zip(batch, decisions, strict=True):
            if decision.duplicate_of is None:
                kept.setdefault(item.id, item)
        new = sorted(set(kept) - self.known_ids(kept))
        if not new:
            return
        items = [kept[i] for i in new]
        base = self.db.execute("SELECT COALESCE(MAX(doc), 0) FROM dedup_docs").fetchone()[0] + 1
        self.db.executemany(
            "INSERT OR IGNORE INTO dedup_docs (doc, id, exact, sig, text_len, date, shingles) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            ((base + k, it.id, it.exact, it.sig, it.text_len, it.date, it.shingles) for k, it in enumerate(items)))
        self._write_bands("INSERT OR IGNORE INTO dedup_bands (band, key, doc) VALUES (?, ?, ?)",
                          np.arange(base, base + len(items), dtype=np.int64), [it.sig for it in items])

    def _write_bands(self, sql: str, docs: np.ndarray, sigs: list[bytes], chunk: int = 65_536) -> None:
        """Run `sql` for every (band, key, doc), band by band in key order: b-tree appends, bounded memory."""
        matrix = _sig_matrix(sigs, self.cfg.num_perm)
        for band in range(self.cfg.bands):
            keys = band_key(matrix, band, self.cfg.rows)
            order = np.lexsort((docs, keys))
            for start in range(0, len(order), chunk):
                part = order[start:start + chunk]
                self.db.executemany(sql, zip(itertools.repeat(band), keys[part].tolist(), docs[part].tolist()))

    def forget(self, ids: Iterable[str]) -> None:
        """Remove documents from the index (their input changed); no transaction handling."""
        for chunk in sql_chunks(sorted(set(ids))):
            rows = self.db.execute(f"SELECT doc, sig FROM dedup_docs WHERE id IN ({sql_marks(chunk)})",
                                   chunk).fetchall()
            if not rows:
                continue
            self._write_bands("DELETE FROM dedup_bands WHERE band = ? AND key = ? AND doc = ?",
                              np.array([r[0] for r in rows], dtype=np.int64), [r[1] for r in rows])
            self.db.executemany("DELETE FROM dedup_docs WHERE doc = ?", [(r[0],) for r in rows])

    @staticmethod
    def clear(db: sqlite3.Connection) -> None:
        """Empty an index whatever its parameters, schema first (executescript commits, so call this
        outside the caller's transaction only for the schema: the DELETEs join it)."""
        for table in ("dedup_bands", "dedup_docs", "dedup_meta"):
            db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names

    @staticmethod
    def create_schema(db: sqlite3.Connection) -> None:
        db.executescript(_SCHEMA)
        if "shingles" not in {row[1] for row in db.execute("PRAGMA table_info(dedup_docs)")}:
            # an index from before containment links (its scheme differs, so it is rebuilt before use)
            db.execute("ALTER TABLE dedup_docs ADD COLUMN shingles INTEGER NOT NULL DEFAULT 0")

    def reset(self) -> None:
        """Empty the index and adopt the current parameters (for a rebuild); no transaction handling."""
        self.clear(self.db)
        self.db.executemany("INSERT INTO dedup_meta (key, value) VALUES (?, ?)", self._params().items())


# --- `pagewash dedup`: any JSONL with `id` and `text` ----------------------------------------------------

_JSONL_STATE = """
CREATE TABLE IF NOT EXISTS dedup_inputs (  -- how far each input file (by content) is in committed shards
    sha1 TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    lines INTEGER NOT NULL,
    complete INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dedup_shards (  -- publishing: its files may exist but the index does not know them
    seq INTEGER PRIMARY KEY,
    status TEXT NOT NULL
);
"""


@dataclass
class _Batch:
    lines: list[tuple[str, int, str]]  # (source path, line number, line)
    progress: dict[str, tuple[str, int, bool]]  # sha1 -> (path, lines consumed, complete)


def _open_lines(path: Path):
    with open(path, "rb") as handle:
        gzipped = handle.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def _read_batches(inputs: list[Path], db: sqlite3.Connection, batch_size: int, counts: dict) -> Iterator[_Batch]:
    """Lines of the inputs in batches, skipping what committed batches already hold."""
    batch = _Batch([], {})
    seen: set[str] = set()
    for path in inputs:
        sha1 = content_sha1(path)
        row = db.execute("SELECT lines, complete FROM dedup_inputs WHERE sha1 = ?", (sha1,)).fetchone()
        if sha1 in seen or (row and row[1]):
            counts["inputs_skipped"] += 1
            continue
        seen.add(sha1)
        skip = row[0] if row else 0
        lineno = 0
        with _open_lines(path) as handle:
            for lineno, raw in enumerate(handle, 1):
                if lineno <= skip or not raw.strip():
                    continue
                batch.lines.append((str(path), lineno, raw.decode("utf-8", errors="replace")))
                batch.progress[sha1] = (str(path), lineno, False)
                if len(batch.lines) >= batch_size:
                    yield batch
                    batch = _Batch([], {})
        batch.progress[sha1] = (str(path), max(lineno, skip), True)
    if batch.lines or batch.progress:
        yield batch


def _parse(source: str, lineno: int, line: str) -> tuple[dict, bool]:
    """The record and whether it can be deduplicated; a bad line becomes a reject that keeps it whole and
    says why (`bad_record`, or `empty` for a blank `text`)."""
    try:
        record = json.loads(line)
    except ValueError as exc:
        record, why = None, f"not JSON: {exc}"
    else:
        why = "not a JSON object"
    if not isinstance(record, dict):
        return {"id": None, "text": None, "raw": line.rstrip("\r\n"),
                "metadata": {"filter_reason": "bad_record", "filter_detail": f"{source}:{lineno}: {why}",
                             "source_path": source, "line": lineno}}, False
    reason, why = "bad_record", None
    if not isinstance(record.get("id"), str):
        why = "needs a string `id`"
    elif not isinstance(record.get("text"), str):
        why = "needs a string `text`"
    elif not record["text"].strip():
        reason, why = "empty", "`text` is blank"
    meta = record.get("metadata")
    if meta is None or isinstance(meta, dict):
        record["metadata"] = dict(meta or {})
    else:  # a metadata value that cannot take our fields
        record["metadata"] = {"original_metadata": meta}
        why = why or "`metadata` is not an object"
    if why is not None:
        record["metadata"].update(filter_reason=reason, filter_detail=f"{source}:{lineno}: {why}",
                                  source_path=source, line=lineno)
    return record, why is None


def _clean_unpublished(db: sqlite3.Connection, out: Path) -> int:
    """Remove the files of shards published but never committed (a killed call); the next shard number."""
    for (seq,) in db.execute("SELECT seq FROM dedup_shards WHERE status = 'publishing'").fetchall():
        for stream in STREAMS:
            (out / stream / shard_name(seq)).unlink(missing_ok=True)
        db.execute("DELETE FROM dedup_shards WHERE seq = ?", (seq,))
    last = db.execute("SELECT COALESCE(MAX(seq), -1) FROM dedup_shards").fetchone()[0]
    for stream in STREAMS:
        for path in (out / stream).glob(".part-*.jsonl.tmp"):
            path.unlink()
        for path in (out / stream).glob("part-*.jsonl"):
            last = max(last, shard_seq(path) if shard_seq(path) is not None else -1)
    return last + 1


def _commit_batch(db: sqlite3.Connection, index: DedupIndex, items: list[DedupItem], decisions: list[Decision],
                  progress: dict[str, tuple[str, int, bool]], seq: int | None) -> None:
    """The index, the inputs' progress and the shard's status, in one transaction."""
    db.execute("BEGIN IMMEDIATE")
    try:
        index.stage(items, decisions)
        db.executemany("INSERT OR REPLACE INTO dedup_inputs (sha1, path, lines, complete) VALUES (?, ?, ?, ?)",
                       [(sha1, path, lines, int(done)) for sha1, (path, lines, done) in progress.items()])
        if seq is not None:
            db.execute("UPDATE dedup_shards SET status = 'done' WHERE seq = ?", (seq,))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def dedup_jsonl(inputs: list[Path], out: Path, cfg: DedupConfig, batch_size: int = 10_000) -> dict:
    """Deduplicate JSONL files (plain or gzip) of records with `id` and `text` into OUT/{documents,duplicates,rejects}.

    The index lives in OUT/_state/dedup.sqlite, so a later call dedups its inputs against everything kept
    before; input files already done (same content) are skipped. Each batch is published (temp file, fsync,
    rename), then committed; files of a batch killed before its commit are removed by the next call, which
    redoes that batch, so the final output does not depend on where a call was killed. A record whose id is
    already kept goes to duplicates with `duplicate_of` its own id.
    """
    started = time.perf_counter()
    counts = {"records": 0, "kept": 0, "duplicates": 0, "rejects": 0, "inputs_skipped": 0}
    state = out / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(state / "dedup.sqlite", isolation_level=None)
    try:
        index = DedupIndex(db, cfg)
        db.executescript(_JSONL_STATE)
        seq = _clean_unpublished(db, out)
        for batch in _read_batches(inputs, db, batch_size, counts):
            shard = ShardSet(LocalStore(out), seq)
            try:
                items, decisions = _fill_shard(shard, batch, index)
            except BaseException:
                shard.abort()
                raise
            written = None
            if shard.counts:
                written = seq
                db.execute("INSERT OR REPLACE INTO dedup_shards (seq, status) VALUES (?, 'publishing')", (seq,))
                shard.publish()
                seq += 1
            _commit_batch(db, index, items, decisions, batch.progress, written)
            counts["records"] += len(batch.lines)
            for stream, key in zip(STREAMS, ("kept", "duplicates", "rejects"), strict=True):
                counts[key] += shard.counts.get(stream, 0)
    finally:
        db.close()
    counts["seconds"] = round(time.perf_counter() - started, 3)
    return counts


def _fill_shard(shard: ShardSet, batch: _Batch, index: DedupIndex) -> tuple[list[DedupItem], list[Decision]]:
    """Decide a batch and write its records into the shard's temp files; the items and their decisions."""
    records, items = [], []
    for source, lineno, line in batch.lines:
        record, ok = _parse(source, lineno, line)
        if not ok:
            shard.write("rejects", record)
            continue
        records.append(record)
        items.append(record_item(record, index.cfg))
    decisions = resolve_new(index, items)
    for record, item, decision in zip(records, items, decisions, strict=True):
        record["metadata"]["content_hash"] = item.exact
        shard.write(apply_decision(record, decision), record)
    return items, decisions


def record_item(record: dict, cfg: DedupConfig) -> DedupItem:
    """The dedup item of a record with `id` and `text` (a string `metadata.date` breaks ties)."""
    exact, sig, shingles = fingerprint(record["text"], cfg)
    date = (record.get("metadata") or {}).get("date")
    return DedupItem(record["id"], len(record["text"]), date if isinstance(date, str) else None, exact, sig, shingles)


def apply_decision(record: dict, decision: Decision) -> str:
    """Write a decision into the record's metadata; the stream it goes to (`documents` or `duplicates`)."""
    record.setdefault("metadata", {}).update(duplicate_of=decision.duplicate_of, similarity=decision.similarity,
                                             dup_cluster=decision.cluster)
    return "documents" if decision.duplicate_of is None else "duplicates"


def resolve_new(index: DedupIndex, items: list[DedupItem]) -> list[Decision]:
    """`resolve` for documents new to the index: one whose id is kept already (the same URL scraped again)
    is a duplicate of that document, with `duplicate_of` its own id."""
    decisions = index.resolve(items)
    known = index.known_ids(item.id for item in items)
    if not known:
        return decisions
    stored = {}
    for chunk in sql_chunks(sorted(known)):
        stored.update((r[0], (r[1], r[2])) for r in index.db.execute(
            f"SELECT id, exact, sig FROM dedup_docs WHERE id IN ({sql_marks(chunk)})", chunk))
    num_perm = index.cfg.num_perm
    for k, item in enumerate(items):
        if item.id in known and decisions[k].duplicate_of is None:
            exact, sig = stored[item.id]
            share = (_sig_matrix([sig], num_perm) == _sig_matrix([item.sig], num_perm)).mean()
            decisions[k] = Decision(item.id, item.id, 1.0 if exact == item.exact else round(float(share), 4), item.id)
    return decisions
