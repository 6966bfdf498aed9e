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
import os
import re
import shutil
import sqlite3
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from pathlib import Path

import numpy as np
from rensa import RMinHash

from .config import DedupConfig
from .state import sql_chunks, sql_marks
from .writer import fsync_dir

# Bump when tokens, shingle hashing or band keys change: an index built otherwise must be rebuilt.
SCHEME = f"pagewash-3/rensa-{getattr(RMinHash, 'ALGORITHM_VERSION', 0)}"
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
CREATE TABLE IF NOT EXISTS dedup_band_runs (  -- the LSH buckets of kept documents: sorted runs in files
    name TEXT PRIMARY KEY,      -- a folder in the index folder: keys.npy and docs.npy, (bands, docs) each
    docs INTEGER NOT NULL
);
DROP TABLE IF EXISTS dedup_bands;  -- one SQLite row per document and band until 2026-12-01 (scheme 2)
"""
INDEX_DIR = "index"  # beside the state database: the band runs
MAX_RUNS = 8  # band runs beyond which the next one written merges them all (lookups search every run)


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
    return np.stack([order[_spans(lo, counts)], np.repeat(hit_docs, counts)], axis=1)


def _spans(lo: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The positions lo[k], lo[k] + 1, ..., lo[k] + counts[k] - 1 of every k, in one array."""
    return np.repeat(lo, counts) + np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)


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


class _Run:
    """One band run: for each band, the kept documents' keys in order (`keys[band]`) and their rowids."""

    def __init__(self, folder: Path) -> None:
        self.keys = np.load(folder / "keys.npy", mmap_mode="r")
        self.docs = np.load(folder / "docs.npy", mmap_mode="r")

    def hits(self, band: int, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(key, doc) of this run's documents whose key in `band` is among `keys` (sorted, unique)."""
        row = self.keys[band]
        lo, hi = np.searchsorted(row, keys, "left"), np.searchsorted(row, keys, "right")
        counts = hi - lo
        if not counts.any():
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        return np.repeat(keys, counts), np.asarray(self.docs[band][_spans(lo, counts)], dtype=np.int64)


def npy_layout(path: Path) -> tuple[int, tuple, np.dtype]:
    """(where the data starts, shape, dtype) of a .npy file, from its header."""
    with open(path, "rb") as handle:
        fmt = np.lib.format
        read_header = fmt.read_array_header_1_0 if fmt.read_magic(handle) == (1, 0) else fmt.read_array_header_2_0
        shape, _fortran, dtype = read_header(handle)
        return handle.tell(), shape, dtype


def read_npy(path: Path, start: int, count: int) -> np.ndarray:
    """Items `start` to `start + count` of a .npy file's data (flat, in file order), read rather than mapped:
    the caller's memory holds only those."""
    offset, _shape, dtype = npy_layout(path)
    with open(path, "rb") as handle:
        return np.fromfile(handle, dtype=dtype, count=count, offset=offset + start * dtype.itemsize)


class _RunWriter:
    """A band run being written: `add` spills each part's band keys to a scratch file (memory: one part),
    `finish` sorts them band by band (memory: one band of the run, 16 bytes a document), merged with the
    runs there are too many of, writes the run's files, renames its folder into place and names it in
    `dedup_band_runs` (in the caller's transaction)."""

    def __init__(self, index: DedupIndex) -> None:
        self.index = index
        self.temp = index.folder / f".run-{os.getpid()}.tmp"
        shutil.rmtree(self.temp, ignore_errors=True)
        self.temp.mkdir(parents=True)
        self.parts: list[tuple[Path, np.ndarray]] = []  # (keys file: bands x k, raw int64; rowids)

    def add(self, docs: np.ndarray, sigs: np.ndarray) -> None:
        if not len(docs):
            return
        cfg = self.index.cfg
        path = self.temp / f"part-{len(self.parts)}.keys"
        with open(path, "wb") as handle:
            for band in range(cfg.bands):
                handle.write(band_key(sigs, band, cfg.rows).astype("<i8").tobytes())
        self.parts.append((path, np.asarray(docs, dtype=np.int64)))

    def finish(self) -> None:
        index = self.index
        names = index._run_names()
        merge = names if len(names) >= MAX_RUNS else []
        if not self.parts:
            shutil.rmtree(self.temp, ignore_errors=True)
            return
        runs = [index.folder / name for name in merge]
        alive = np.array([r[0] for r in index.db.execute("SELECT doc FROM dedup_docs ORDER BY doc")],
                         dtype=np.int64) if runs else None
        widths = [int(index.db.execute("SELECT docs FROM dedup_band_runs WHERE name = ?", (name,)).fetchone()[0])
                  for name in merge]
        bands = index.cfg.bands
        top = max([int(docs.max()) for _path, docs in self.parts] + [_run_top(name) for name in merge])
        name = f"run-{top:012d}"
        keys_path, docs_path = self.temp / "keys.npy", self.temp / "docs.npy"
        docs_all = np.concatenate([docs for _path, docs in self.parts])
        ascending = not runs and bool(np.all(docs_all[1:] > docs_all[:-1]))
        del docs_all
        total = None
        with open(keys_path, "wb") as keys_out, open(docs_path, "wb") as docs_out:
            for band in range(bands):
                keys = [np.fromfile(path, dtype="<i8", count=len(docs), offset=band * len(docs) * 8)
                        for path, docs in self.parts]
                owners = [docs for _path, docs in self.parts]
                for run, width in zip(runs, widths, strict=True):
                    run_docs = read_npy(run / "docs.npy", band * width, width)
                    mine = np.isin(run_docs, alive)
                    keys.append(read_npy(run / "keys.npy", band * width, width)[mine])
                    owners.append(run_docs[mine])
                keys_b, docs_b = np.concatenate(keys), np.concatenate(owners)
                # rowids ascending (the parts' are, unless merged runs follow): a stable sort by key alone
                # orders by (key, rowid), several times faster than sorting by both
                order = np.argsort(keys_b, kind="stable") if ascending else np.lexsort((docs_b, keys_b))
                if total is None:
                    total = len(order)
                    for handle in (keys_out, docs_out):
                        np.lib.format.write_array_header_1_0(
                            handle, {"descr": "<i8", "fortran_order": False, "shape": (bands, total)})
                keys_out.write(keys_b[order].tobytes())
                docs_out.write(docs_b[order].tobytes())
            for handle in (keys_out, docs_out):
                handle.flush()
                os.fsync(handle.fileno())
        for path, _docs in self.parts:
            path.unlink()
        final = index.folder / name
        shutil.rmtree(final, ignore_errors=True)
        os.replace(self.temp, final)
        fsync_dir(index.folder)
        index.db.executemany("DELETE FROM dedup_band_runs WHERE name = ?", [(n,) for n in merge])
        index.db.execute("INSERT OR REPLACE INTO dedup_band_runs (name, docs) VALUES (?, ?)", (name, total))
        index._runs = None


class DedupIndex:
    """The documents kept by earlier rounds: signatures, exact keys and sizes in SQLite (`dedup_docs`), their
    LSH band keys in sorted runs of numpy files in the index folder (`INDEX_DIR` beside the database),
    named by the `dedup_band_runs` table. A round adds one run (a few sorted arrays written at once, instead
    of one SQLite row per document and band); beyond `MAX_RUNS` the new run merges them all. A forgotten
    document leaves its band keys behind until the next merge: lookups keep only the hits that are still in
    `dedup_docs`, so it is gone at once.

    Lookups only read; `stage`, `forget` and `reset` write without transaction handling, so that the
    caller commits them together with its own state (run files are written first; a run that no commit
    named is removed the next time an index is opened for writing).
    """

    def __init__(self, db: sqlite3.Connection, cfg: DedupConfig, rebuild: bool = False, check: bool = True) -> None:
        """Raises ValueError if the index was built with other parameters, unless `rebuild`: then the caller
        must `reset()` it (inside its own transaction) before using it. `check=False`: lookups only, by a
        task of a run that has checked the parameters (no schema statement, no write)."""
        self.db = db
        self.cfg = cfg
        self.folder = _index_folder(db)
        self._runs: list[_Run] | None = None
        if not check:
            return
        self.create_schema(db)
        params = self._params()
        stored = dict(db.execute("SELECT key, value FROM dedup_meta"))
        self._sweep()
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

    # --- the band runs ---------------------------------------------------------------------------------

    def _run_names(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT name FROM dedup_band_runs ORDER BY name")]

    def _sweep(self) -> None:
        """Remove run folders no commit named (a round killed before its commit, runs a merge replaced)."""
        if self.folder is None or not self.folder.exists():
            return
        named = set(self._run_names())
        for path in sorted(self.folder.iterdir()):
            if path.name not in named:
                shutil.rmtree(path, ignore_errors=True)

    def _band_hits(self, band: int, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(key, doc) of the documents whose key in `band` is among `keys`, in every run (a forgotten
        document's too: see `live`)."""
        if self._runs is None:
            self._runs = [_Run(self.folder / name) for name in self._run_names()] if self.folder else []
        if not self._runs:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        wanted = np.unique(keys)
        found = [run.hits(band, wanted) for run in self._runs]
        return np.concatenate([k for k, _d in found]), np.concatenate([d for _k, d in found])

    def live(self, docs: np.ndarray) -> np.ndarray:
        """Mask of the rowids still indexed (not forgotten since their run was written)."""
        unique = np.unique(docs)
        kept = {r[0] for r in self._docs_where("doc", unique.tolist(), fields="doc")}
        return np.isin(docs, np.array(sorted(kept), dtype=np.int64))

    def begin_run(self) -> _RunWriter:
        """A new band run, filled shard by shard (`_RunWriter.add`) and written by `_RunWriter.finish`."""
        if self.folder is None:
            raise ValueError("the dedup index needs a database file (its band runs live beside it)")
        return _RunWriter(self)

    # --- writes --------------------------------------------------------------------------------------

    def stage(self, batch: list[DedupItem], decisions: list[Decision]) -> None:
        """Index the kept items (no transaction handling): their rows, and one band run; staging twice
        changes nothing."""
        run = self.begin_run()
        run.add(*self.stage_docs(batch, decisions))
        run.finish()

    def stage_docs(self, batch: list[DedupItem], decisions: list[Decision]) -> tuple[np.ndarray, np.ndarray]:
        """The kept items' rows (`stage_rows`)."""
        kept = [item for item, decision in zip(batch, decisions, strict=True) if decision.duplicate_of is None]
        return self.stage_rows(KeptRows([it.id for it in kept], [it.exact for it in kept],
                                        [it.text_len for it in kept], [it.date for it in kept],
                                        _sig_matrix([it.sig for it in kept], self.cfg.num_perm),
                                        [it.shingles for it in kept]))

    def stage_rows(self, rows: KeptRows) -> tuple[np.ndarray, np.ndarray]:
        """Kept documents' rows (INSERTs only; an id already indexed, or met before in `rows`, skipped);
        returns their rowids and signature matrix for a `_RunWriter`, so that a caller staging shard by
        shard writes one run."""
        first: dict[str, int] = {}
        for k, doc_id in enumerate(rows.ids):
            first.setdefault(doc_id, k)
        known = self.known_ids(first)
        picked = [first[doc_id] for doc_id in sorted(first) if doc_id not in known]
        if not picked:
            return np.empty(0, dtype=np.int64), np.empty((0, self.cfg.num_perm), dtype="<u4")
        sigs = np.ascontiguousarray(rows.sigs[picked], dtype="<u4")
        if sigs.shape[1] != self.cfg.num_perm:
            raise ValueError(f"signatures of {sigs.shape[1]} slots, expected {self.cfg.num_perm}")
        # rowids never come back, even those of forgotten documents: their band keys may still be in a run
        base = max([self.db.execute("SELECT COALESCE(MAX(doc), 0) FROM dedup_docs").fetchone()[0]]
                   + [_run_top(name) for name in self._run_names()]) + 1
        self.db.executemany(
            "INSERT OR IGNORE INTO dedup_docs (doc, id, exact, sig, text_len, date, shingles) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            ((base + n, rows.ids[k], rows.exacts[k], sigs[n].tobytes(), rows.text_len[k], rows.dates[k],
              rows.shingles[k]) for n, k in enumerate(picked)))
        return np.arange(base, base + len(picked), dtype=np.int64), sigs

    def forget(self, ids: Iterable[str]) -> None:
        """Remove documents from the index (no transaction handling); their band keys stay in their runs,
        unseen by lookups (`live`), until the next merge."""
        for chunk in sql_chunks(sorted(set(ids))):
            self.db.execute(f"DELETE FROM dedup_docs WHERE id IN ({sql_marks(chunk)})", chunk)

    @staticmethod
    def clear(db: sqlite3.Connection) -> None:
        """Empty an index whatever its parameters (its run folders go when an index is next opened for
        writing), inside the caller's transaction."""
        for table in ("dedup_band_runs", "dedup_docs", "dedup_meta"):
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
        self._runs = None
        self.db.executemany("INSERT INTO dedup_meta (key, value) VALUES (?, ?)", self._params().items())


def _run_top(name: str) -> int:
    """The largest rowid in a run, which names it (`run-<rowid>`)."""
    return int(name.rpartition("-")[2])


def _index_folder(db: sqlite3.Connection) -> Path | None:
    """The band runs' folder: `INDEX_DIR` beside the database file (None for a database in memory)."""
    for _seq, name, file in db.execute("PRAGMA database_list"):
        if name == "main":
            return Path(file).parent / INDEX_DIR if file else None
    return None


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
