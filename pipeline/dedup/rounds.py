"""The driver's part of a dedup round: the round's folder (named by what its results depend on), the step
results it reads back, and installing the filtered files and moves a commit recorded (idempotent)."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..config import DedupConfig
from ..io.store import Store, replace_lines
from ..io.writer import shard_name, to_json
from ..state import DedupTables
from .decisions import KeptRows
from .tasks import ROUNDS, STAGED, DedupJob, _meta


def round_dir(state_dir: Path, tables: DedupTables, cfg: DedupConfig) -> Path:
    """The round's folder, named by what its results depend on: the parameters, the pending documents and
    the index (streamed through a hash: nothing is held)."""
    digest = hashlib.sha1(json.dumps([cfg.num_perm, cfg.bands, cfg.rows, cfg.ngram, cfg.seed, cfg.threshold,
                                      cfg.enabled, cfg.partitions, cfg.containment, cfg.containment_min,
                                      cfg.keep, cfg.recapture]).encode())
    # the run that cleaned each shard: a rerun after --full (same inputs, new records) is another round
    digest.update(json.dumps(tables.staged_shard_runs()).encode())
    for chunk in tables.pending_keys():  # one dump a chunk: the per-row dumps were most of this
        digest.update(json.dumps(chunk).encode())
    if cfg.enabled:
        digest.update(json.dumps([tables.doc_count(), tables.max_doc()]).encode())
    return state_dir / ROUNDS / f"round-{digest.hexdigest()[:16]}"


def kept_rows(job: DedupJob, seq: int) -> KeptRows:
    """The documents of shard `seq` that the round keeps, to be indexed."""
    meta = _meta(job, seq)
    decisions = json.loads(job.path("decisions", f"s{seq}.json").read_text(encoding="utf-8"))
    kept = [i for i in range(len(meta["ids"])) if str(i) not in decisions]
    sizes = np.load(job.path("sig", f"s{seq}.sizes.npy"))
    return KeptRows([meta["ids"][i] for i in kept], [meta["exact"][i] for i in kept],
                    [meta["text_len"][i] for i in kept], [meta["dates"][i] for i in kept],
                    np.load(job.path("sig", f"s{seq}.npy"))[kept], sizes[kept].tolist())


def duplicates_of(job: DedupJob, seq: int) -> list[tuple[str, str]]:
    """(doc_id, input) of the records the filter step sent to `duplicates`."""
    return [tuple(p) for p in json.loads(job.path("filtered", f"s{seq}.dups.json").read_text(encoding="utf-8"))]


def superseded_docs(job: DedupJob) -> list[tuple[int, float, str]]:
    """(index rowid, similarity, newer capture's input) of the kept documents this round supersedes."""
    path = job.path("versions", "superseded_docs.json")
    return [tuple(row) for row in json.loads(path.read_text(encoding="utf-8"))] if path.exists() else []


def replaced_docs(job: DedupJob) -> list[int]:
    """Index rowids of the kept documents with a newer capture (other text) in this round."""
    path = job.path("versions", "replaced.npy")
    return (-np.load(path)).tolist() if path.exists() else []


def apply_moves(store: Store, tables: DedupTables) -> int:
    """Move the records the state's `moves` names (kept documents a newer capture superseded) from their
    shard's `documents/` file to its `duplicates/` file, marked `superseded_by`, and forget each move.
    Idempotent: the duplicates file is written first (unless it holds the record already), then the
    documents file without it; a kill in between is mended by the next call. Returns records moved."""
    moved = 0
    for move, doc_id, seq, similarity, by in tables.moves():
        name = shard_name(seq)
        kept, record = [], None
        for line in _lines(store, "documents", name):
            found = json.loads(line) if record is None else None
            if found is not None and found["id"] == doc_id:  # a kept id is in one record only
                record = found
            else:
                kept.append(line)
        if record is not None:
            record["metadata"].update(duplicate_of=doc_id, similarity=similarity, dup_cluster=doc_id,
                                      superseded_by=by)
            duplicates = list(_lines(store, "duplicates", name))
            if not any((d := json.loads(line))["id"] == doc_id and d["metadata"].get("superseded_by") == by
                       for line in duplicates):
                replace_lines(store, "duplicates", name, [*duplicates, to_json(record) + "\n"])
            replace_lines(store, "documents", name, kept)
            moved += 1
        tables.forget_move(move)
    return moved


def _lines(store: Store, stream: str, name: str) -> Iterator[str]:
    """The lines of a shard file, each ending in a newline (none if the file does not exist)."""
    for line in store.lines(stream, name):
        yield line if line.endswith("\n") else line + "\n"


def install_rounds(store: Store, state_dir: Path, tables: DedupTables) -> int:
    """Publish the filtered files of the committed rounds (named in the state by the commit) into the
    store's `documents/` and `duplicates/`, remove their staged files and folders, and forget them; then
    make the moves the commits recorded (`apply_moves`). Idempotent: a file published twice (a kill after
    its upload) is the same file. Returns files published."""
    moved = 0
    for name in tables.committed_rounds():
        folder = state_dir / ROUNDS / name
        for stream in ("documents", "duplicates"):
            for path in sorted((folder / "filtered" / stream).glob("part-*")):  # in the output's format
                store.publish(stream, path.name, path)
                moved += 1
        job = folder / "job.json"
        for seq in json.loads(job.read_text(encoding="utf-8"))["seqs"] if job.exists() else []:
            (state_dir / STAGED / shard_name(seq)).unlink(missing_ok=True)
        shutil.rmtree(folder, ignore_errors=True)
        tables.forget_round(name)
    apply_moves(store, tables)
    return moved
