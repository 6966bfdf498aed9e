"""Steps 3 (components: union-find over the verified edges, one decision per duplicate) and 4 (filter: each
staged record to `documents` or `duplicates`) of a dedup round; see `steps` for the whole round."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..io.store import LocalStore
from ..io.writer import ShardSet, write_atomic
from ..state import Connection
from .decisions import (
    Decision,
    apply_decision,
    representatives,
    staged_as_kept,
    utf8_array,
)
from .index import DedupIndex
from .steps import _meta_of, _Versions
from .tasks import DedupJob, _component_labels, _connect, _meta, _once, _shares, _Sigs, _split

# --- 3. components ---------------------------------------------------------------------------------------

def components(job: DedupJob) -> dict:
    return _once(job, "components", lambda: _components(job))


def _components(job: DedupJob) -> dict:
    """Everything here is a numpy array over the nodes that have an edge (a few bytes each, no Python
    object per node), and decisions are written one shard at a time: a task's memory is that of the
    edges, not of the run's documents."""
    versions = _Versions(job)
    # links to kept documents (direct edges: those between captures of one id, or of a superseded one, go)
    to_index = np.concatenate([np.load(job.path("edges", f"s{seq}.npy")) for seq in job.seqs] or
                              [np.empty((0, 3), dtype=np.int64)])
    to_index = to_index[versions.allowed(to_index[:, 0], to_index[:, 1])]
    edges = np.concatenate([to_index] + [np.load(job.path("edges", f"p{p}.npy")) for p in range(job.partitions)])
    aliases = _Aliases(np.load(job.path("versions", "alias.npy")))
    links = aliases.map(edges[:, :2])
    del edges, to_index
    linked, labels = _component_labels(links)
    nodes = np.union1d(linked, aliases.primary)
    roots = nodes.copy()  # a node in no link: a component of its own
    roots[np.searchsorted(nodes, linked)] = labels
    roots = np.searchsorted(nodes, roots)  # as positions in `nodes`
    db = _connect(job)
    try:
        old, newer = versions.superseded[:, 0], versions.superseded[:, 1]
        mine = old >= 0  # superseded in this round (else kept by an earlier run)
        newer_inputs = _meta_of(job, newer, "inputs")
        attrs = _Attributes(job, db, np.union1d(np.union1d(nodes, aliases.keys), np.union1d(old[mine], newer)))
        at = attrs.at(nodes)
        # seen: an indexed document in indexing order (-node is its rowid), then this round's in input order
        seen = np.where(nodes < 0, -nodes - (1 << 62), nodes)
        rep = nodes[representatives(roots, nodes < 0, seen, attrs.date[at], attrs.text_len[at], job.cfg.keep)]
        # a duplicate, the node it duplicates and the node it is compared with: the component's members
        dup = (nodes >= 0) & (rep != nodes)
        dup_nodes, dup_targets, compared = nodes[dup], rep[dup], rep[dup]
        # a document with an id kept before is a duplicate of itself, compared with the indexed text; one
        # with the id of an earlier copy in this round follows that copy's decision
        known = aliases.primary < 0
        first = aliases.primary
        first_rep = np.where(first >= 0, rep[np.searchsorted(nodes, first)], first)
        alias_targets = np.where(known, aliases.keys, first_rep)
        order = np.argsort(np.concatenate([dup_nodes, aliases.keys]), kind="stable")
        dup_nodes = np.concatenate([dup_nodes, aliases.keys])[order]
        dup_targets = np.concatenate([dup_targets, alias_targets])[order]
        compared = np.concatenate([compared, np.where(known, first, alias_targets)])[order]
        # captures superseded by a newer one with other text: a duplicate of their own id, compared with it
        by = {int(n): newer_inputs[k] for k, n in zip(np.flatnonzero(mine).tolist(), old[mine].tolist(), strict=True)}
        order = np.argsort(np.concatenate([dup_nodes, old[mine]]), kind="stable")
        dup_nodes = np.concatenate([dup_nodes, old[mine]])[order]
        dup_targets = np.concatenate([dup_targets, newer[mine]])[order]
        compared = np.concatenate([compared, newer[mine]])[order]
        sigs = _Sigs(job, db)
        clusters, sizes = _write_decisions(job, sigs, attrs, dup_nodes, dup_targets, compared, by)
        # kept documents superseded: the driver moves their records and forgets them in the index
        gone = ~mine
        share = _shares(sigs, old[gone], newer[gone]) if gone.any() else np.zeros(0)
        docs = [[int(-old[k]), round(float(s), 4), newer_inputs[k]]
                for k, s in zip(np.flatnonzero(gone).tolist(), share.tolist(), strict=True)]
        write_atomic(job.path("versions", "superseded_docs.json"), json.dumps(docs))
    finally:
        db.close()
    return {"duplicates": len(dup_nodes), "clusters_with_duplicates": clusters, "cluster_sizes": sizes,
            "superseded": len(versions.superseded)}


class _Aliases:
    """Documents that are another by id (the same URL scraped twice), from the ALIAS edges: `keys` (sorted)
    and the `primary` node each stands for: the indexed document with its id (negative) or the first copy
    of this round."""

    def __init__(self, alias: np.ndarray) -> None:
        alias = alias[np.lexsort((alias[:, 1], alias[:, 0]))] if len(alias) else alias.reshape(-1, 3)
        first = np.r_[True, alias[1:, 0] != alias[:-1, 0]] if len(alias) else np.zeros(0, dtype=bool)
        # an id is indexed once, so a node has at most one negative target, which sorts first and wins
        self.keys, target = alias[first, 0], alias[first, 1]
        primary = target.copy()
        while True:  # a first copy whose own id was kept before stands for the indexed document
            pos = np.minimum(np.searchsorted(self.keys, primary), max(len(self.keys) - 1, 0))
            chained = (primary >= 0) & (self.keys[pos] == primary) if len(self.keys) else primary < 0
            if not chained.any():
                break
            primary[chained] = target[pos[chained]]
        self.primary = primary

    def map(self, pairs: np.ndarray) -> np.ndarray:
        """`pairs` with every alias replaced by the node it stands for."""
        if not len(self.keys) or not len(pairs):
            return pairs
        flat = pairs.ravel().copy()
        pos = np.minimum(np.searchsorted(self.keys, flat), len(self.keys) - 1)
        hit = self.keys[pos] == flat
        flat[hit] = self.primary[pos[hit]]
        return flat.reshape(-1, 2)


class _Attributes:
    """id, exact key, date (numpy `S` arrays of UTF-8 bytes; empty: none) and text length of the sorted
    `nodes` a component step reasons about, read shard by shard; indexed nodes have no date or length."""

    def __init__(self, job: DedupJob, db: Connection, nodes: np.ndarray) -> None:
        self.nodes = nodes
        self.text_len = np.zeros(len(nodes), dtype=np.int64)
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # positions, ids, exacts, dates
        seqs, rows = _split(nodes)
        new = nodes >= 0
        for seq in np.unique(seqs[new]).tolist():
            meta = _meta(job, seq)
            at = np.flatnonzero(new & (seqs == seq))
            mine = rows[at].tolist()
            parts.append((at, utf8_array(meta["ids"][i] for i in mine), utf8_array(meta["exact"][i] for i in mine),
                          utf8_array(meta["dates"][i] for i in mine)))
            self.text_len[at] = np.array(meta["text_len"], dtype=np.int64)[rows[at]]
            del meta
        old = np.flatnonzero(~new)
        if len(old):
            found = DedupIndex(db, job.cfg, check=False).docs_where("doc", sorted((-nodes[old]).tolist()),
                                                                      fields=("doc", "id", "exact"))
            at = self.at(-np.array([row[0] for row in found], dtype=np.int64))
            parts.append((at, utf8_array(row[1] for row in found), utf8_array(row[2] for row in found),
                          utf8_array([None] * len(found))))
        self.id, self.exact, self.date = (self._place([(p[0], p[k]) for p in parts]) for k in (1, 2, 3))

    def _place(self, parts: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        values = np.concatenate([v for _at, v in parts]) if parts else np.empty(0, dtype=np.bytes_)
        out = np.zeros(len(self.nodes), dtype=values.dtype)
        if parts:
            out[np.concatenate([at for at, _v in parts])] = values
        return out

    def at(self, nodes: np.ndarray) -> np.ndarray:
        """Positions of `nodes` (all among this step's) in the attribute arrays."""
        return np.searchsorted(self.nodes, nodes)


def _write_decisions(job: DedupJob, sigs: _Sigs, attrs: _Attributes, nodes: np.ndarray, targets: np.ndarray,
                     compared: np.ndarray, superseded_by: dict[int, str]) -> tuple[int, dict[str, int]]:
    """decisions/s{seq}.json for every shard, one shard at a time: {i: [duplicate_of, similarity, cluster]}
    for each duplicate `nodes[k]` (sorted) of `targets[k]`, its similarity that to `compared[k]`. Returns
    the number of clusters (distinct targets) and how many clusters have how many members (`_size_bins`:
    the kept document and this round's duplicates of it). A node in `superseded_by` gets a fourth element,
    the input of the capture that superseded it, and counts in no cluster."""
    share = _shares(sigs, nodes, compared)
    at, target_at, compared_at = attrs.at(nodes), attrs.at(targets), attrs.at(compared)
    same_text = attrs.exact[at] == attrs.exact[compared_at]
    seqs, rows = _split(nodes)
    for seq in job.seqs:
        lo, hi = np.searchsorted(seqs, [seq, seq + 1])
        decisions = {}
        for k in range(lo, hi):
            rep_id = attrs.id[target_at[k]].decode("utf-8")
            decision = [rep_id, 1.0 if same_text[k] else round(float(share[k]), 4), rep_id]
            by = superseded_by.get(int(nodes[k]))
            decisions[str(int(rows[k]))] = decision if by is None else [*decision, by]
        write_atomic(job.path("decisions", f"s{seq}.json"), json.dumps(decisions, sort_keys=True))
    clustered = ~np.isin(nodes, np.fromiter(superseded_by, dtype=np.int64, count=len(superseded_by)))
    _, members = np.unique(attrs.id[target_at[clustered]], return_counts=True)
    return len(members), _size_bins(members + 1)


_SIZE_BINS = ((2, 2, "2"), (3, 3, "3"), (4, 9, "4-9"), (10, 99, "10-99"), (100, 999, "100-999"))


def _size_bins(sizes: np.ndarray) -> dict[str, int]:
    """Cluster sizes counted in bins: 2, 3, 4-9, 10-99, 100-999, 1000+ (empty bins left out)."""
    bins = {label: int(np.count_nonzero((sizes >= lo) & (sizes <= hi))) for lo, hi, label in _SIZE_BINS}
    bins["1000+"] = int(np.count_nonzero(sizes >= 1000))
    return {label: n for label, n in bins.items() if n}


# --- 4. filter -------------------------------------------------------------------------------------------

def filter_shard(job: DedupJob, seq: int, staged: str) -> dict:
    """Route the records of the staged shard file `staged` to `documents` or `duplicates`."""
    return _once(job, f"filter-{seq}", lambda: _filter(job, seq, Path(staged)))


def _filter(job: DedupJob, seq: int, staged: Path) -> dict:
    enabled = job.cfg.enabled
    meta = _meta(job, seq) if enabled else {}
    ids, inputs = meta.get("ids"), meta.get("inputs")
    decisions = json.loads(job.path("decisions", f"s{seq}.json").read_text(encoding="utf-8")) if enabled else {}
    # converted to the output's format here, in the step's worker: the commit only moves the files (compressing
    # them there, one after the other on the driver, was a serial tail of ~0.6 ms a page on 2 cores)
    files = ShardSet(LocalStore(job.path("filtered"), job.fmt), seq)
    dups = []
    try:
        i = -1
        if staged.exists():
            with open(staged, encoding="utf-8") as handle:
                for i, line in enumerate(handle):
                    decided = decisions.get(str(i))
                    # staged lines are `dump_record`'s: with dedup off, or kept as staged, copied as they are
                    if not enabled or (decided is None and i < len(ids) and staged_as_kept(line, ids[i])):
                        files.write_line("documents", line if line.endswith("\n") else line + "\n")
                        continue
                    record = json.loads(line)
                    if i >= len(ids) or ids[i] != record["id"]:
                        raise RuntimeError(f"staged shard {seq}: record {i} ({record['id']}) has no pending signature")
                    decided = decided or (None, None, record["id"])
                    stream = apply_decision(record, Decision(record["id"], *decided))
                    files.write(stream, record)
                    if stream == "duplicates":
                        dups.append((record["id"], inputs[i]))
        if enabled and i + 1 != len(ids):
            raise RuntimeError(f"staged shard {seq}: {len(ids)} pending signatures, {i + 1} records")
        write_atomic(job.path("filtered", f"s{seq}.dups.json"), json.dumps(dups))
        files.publish()
    except BaseException:
        files.abort()
        raise
    return {"counts": files.counts}
