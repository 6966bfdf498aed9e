"""Exact and near-duplicate detection: the math and the index of the one dedup engine (pipeline/dedup_steps.py).

The map step (`fingerprint`, or `exact_key` and `signature`) is a pure function of one text and runs in the
workers: MinHash over word n-grams (character n-grams in scripts written without spaces). `link` decides
whether a candidate pair links (estimated Jaccard, or containment of the shorter text in the longer);
`band_key` makes the LSH buckets; `representatives` picks the document a cluster keeps. `DedupIndex` holds
the documents kept by earlier runs in SQLite: one signature and `bands` band keys per kept document. An LSH
collision alone never links two documents: every candidate pair is verified.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import sqlite3
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from rensa import RMinHash

from .config import DedupConfig
from .state import sql_chunks, sql_marks

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
    """`duplicate_of` None: kept. `cluster`: id of the kept representative (a kept document's own id).
    `superseded_by`: for an earlier capture of a URL replaced by a newer one with other text (`[dedup]
    recapture = "update"`), the input the newer capture came from."""

    id: str
    duplicate_of: str | None
    similarity: float | None
    cluster: str
    superseded_by: str | None = None


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


def _equal_share(sigs: np.ndarray, a: np.ndarray, b: np.ndarray, chunk: int = 32_768) -> np.ndarray:
    """Estimated Jaccard of each pair (a[k], b[k]): the share of equal signature slots."""
    out = np.empty(len(a), dtype=np.float64)
    for start in range(0, len(a), chunk):
        end = start + chunk
        out[start:end] = (sigs[a[start:end]] == sigs[b[start:end]]).mean(axis=1)
    return out


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


class DedupIndex:
    """The kept documents of earlier batches (signatures, exact keys, LSH band keys) in a SQLite database.

    Lookups only read; `stage`, `forget` and `reset` write without transaction handling, so that the
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


def apply_decision(record: dict, decision: Decision) -> str:
    """Write a decision into the record's metadata; the stream it goes to (`documents` or `duplicates`)."""
    record.setdefault("metadata", {}).update(duplicate_of=decision.duplicate_of, similarity=decision.similarity,
                                             dup_cluster=decision.cluster, superseded_by=decision.superseded_by)
    return "documents" if decision.duplicate_of is None else "duplicates"
