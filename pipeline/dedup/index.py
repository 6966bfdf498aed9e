"""The index of the documents kept by earlier rounds: signatures, exact keys and sizes in SQLite (`dedup_docs`),
LSH band keys in sorted runs of numpy files beside the database (`DedupIndex`, `_RunWriter`)."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..config import DedupConfig
from ..io.writer import fsync_dir
from ..state import sql_chunks, sql_marks
from .decisions import Decision, DedupItem, KeptRows
from .minhash import SCHEME, _sig_matrix, _spans, band_key

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
