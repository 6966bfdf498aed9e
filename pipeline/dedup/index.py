"""The index of the documents kept by earlier rounds: signatures, exact keys and sizes in SQLite (`dedup_docs`),
LSH band keys in sorted runs of numpy files beside the database (`DedupIndex`, `_RunWriter`)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..config import DedupConfig
from ..io.writer import fsync_dir
from ..state import Connection, DedupTables
from .decisions import Decision, DedupItem, KeptRows
from .minhash import SCHEME, _sig_matrix, _spans, band_key

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
        alive = np.array(index.tables.alive_docs(), dtype=np.int64) if runs else None
        widths = [index.tables.band_run_width(name) for name in merge]
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
        index.tables.replace_band_runs(merge, name, total)
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

    def __init__(self, db: Connection, cfg: DedupConfig, rebuild: bool = False, check: bool = True) -> None:
        """Raises ValueError if the index was built with other parameters, unless `rebuild`: then the caller
        must `reset()` it (inside its own transaction) before using it. `check=False`: lookups only, by a
        task of a run that has checked the parameters (no schema statement, no write)."""
        self.tables = DedupTables(db)
        self.cfg = cfg
        folder = self.tables.folder()
        self.folder = folder / INDEX_DIR if folder is not None else None
        self._runs: list[_Run] | None = None
        if not check:
            return
        self.tables.create_index_schema()
        params = self._params()
        stored = self.tables.params()
        self._sweep()
        if rebuild:
            return
        if not stored:
            self.tables.set_params(params)
        elif stored != params:
            diff = ", ".join(f"{k} {stored.get(k)} -> {v}" for k, v in params.items() if stored.get(k) != v)
            raise ValueError(f"the dedup index was built with other parameters ({diff}); rebuild it")

    def _params(self) -> dict[str, str]:
        cfg = self.cfg
        return {"num_perm": str(cfg.num_perm), "bands": str(cfg.bands), "rows": str(cfg.rows),
                "ngram": str(cfg.ngram), "seed": str(cfg.seed), "scheme": SCHEME}

    def count(self) -> int:
        return self.tables.doc_count()

    def known_ids(self, ids: Iterable[str]) -> set[str]:
        """The ids among `ids` that are indexed (kept by an earlier batch)."""
        return self.tables.known_ids(ids)

    def docs_where(self, column: str, values: list, fields: tuple[str, ...] = ("doc", "id", "exact", "sig")
                   ) -> list[tuple]:
        """`fields` of the indexed documents whose `column` is among `values`."""
        return self.tables.docs_where(column, values, fields)

    # --- the band runs ---------------------------------------------------------------------------------

    def _run_names(self) -> list[str]:
        return self.tables.band_runs()

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
        kept = {r[0] for r in self.docs_where("doc", unique.tolist(), fields=("doc",))}
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
        base = max([self.tables.max_doc()] + [_run_top(name) for name in self._run_names()]) + 1
        self.tables.insert_docs(
            ((base + n, rows.ids[k], rows.exacts[k], sigs[n].tobytes(), rows.text_len[k], rows.dates[k],
              rows.shingles[k]) for n, k in enumerate(picked)))
        return np.arange(base, base + len(picked), dtype=np.int64), sigs

    def forget(self, ids: Iterable[str]) -> None:
        """Remove documents from the index (no transaction handling); their band keys stay in their runs,
        unseen by lookups (`live`), until the next merge."""
        self.tables.forget_ids(ids)

    def reset(self) -> None:
        """Empty the index and adopt the current parameters (for a rebuild); no transaction handling. (An
        index emptied whatever its parameters, `DedupTables.clear_index`, loses its run folders when an index
        is next opened for writing.)"""
        self.tables.clear_index()
        self._runs = None
        self.tables.set_params(self._params())


def _run_top(name: str) -> int:
    """The largest rowid in a run, which names it (`run-<rowid>`)."""
    return int(name.rpartition("-")[2])

