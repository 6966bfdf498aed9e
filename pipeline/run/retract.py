"""Retraction: the records an earlier version of an input left (changed, or gone) leave the shard files and
the state, idempotently."""

from __future__ import annotations

import functools
import json
import logging
from collections import Counter
from pathlib import Path

from ..dedup import DedupIndex
from ..dedup.driver import every_stream
from ..io.store import Store, replace_lines
from ..io.writer import shard_name
from ..records import from_input
from ..state import RunState

log = logging.getLogger("pagewash")


def retract(state: RunState, index: DedupIndex, store: Store, staged: Store, root: Path, key: str,
            gone: bool = False) -> int:
    """Remove every record an earlier version of input `key` left, so the new version replaces it (or,
    when the input is `gone`, so that nothing of it stays, the state forgetting it too).

    Idempotent: the shard files are rewritten first, then the state forgets the records in one
    transaction; a kill in between makes the next run rewrite nothing and forget them then.
    """
    rows = state.outputs_of(key)
    # first of all, the state learns that this input's records are going: killed before the state
    # forgets them, the next run must process the input again even if it has reverted to the very
    # content the state remembers (its records are half gone from the files by then)
    state.mark_retracting(key)
    by_seq: dict[int, set[str]] = {}
    for doc_id, _stream, seq in rows:
        by_seq.setdefault(seq, set()).add(doc_id)
    for seq, ids in sorted(by_seq.items()):
        rivals = state.other_inputs(seq, key, ids)
        for holder, stream in every_stream(store, staged):
            _rewrite_without(holder, stream, shard_name(seq), ids, key, rivals, root)
    status = state.shard_status()
    kept = sorted({doc_id for doc_id, stream, seq in rows if stream == "documents" and status.get(seq) == "final"})
    with state.transaction() as db:
        for seq, stream, n in _count_rows(rows):
            state.change_counts(db, seq, functools.partial(_fewer, stream, n))
        state.forget(db, key, gone)
        index.forget(kept)  # an id kept from two inputs is impossible: the later is a duplicate
    log.info("%s %s: %d earlier records retracted", key, "gone" if gone else "changed", len(rows))
    return len(rows)


def _fewer(stream: str, n: int, counts: dict) -> None:
    counts[stream] = max(0, counts.get(stream, 0) - n)


def _count_rows(rows: list) -> list[tuple[int, str, int]]:
    counts = Counter((seq, stream) for _doc, stream, seq in rows)
    return [(seq, stream, n) for (seq, stream), n in sorted(counts.items())]


def _rewrite_without(store: Store, stream: str, name: str, ids: set[str], key: str,
                     rivals: dict[str, list[str]] | None = None, root: Path | None = None) -> None:
    """Drop from the shard file `stream/name` the records of `ids` that input `key` left (`rivals`: id ->
    other inputs' keys with a record of that id in the shard; `root`: see `from_input`)."""
    rivals = rivals or {}
    kept, dropped = [], 0
    for line in store.lines(stream, name):
        record = json.loads(line)
        doc_id = record["id"]
        if doc_id in ids and from_input(record["metadata"].get("source_path") or "", key,
                                         rivals.get(doc_id, ()), root):
            dropped += 1
        else:
            kept.append(line)
    if dropped:
        replace_lines(store, stream, name, kept)
