"""A run's dedup as four shard-parallel steps joined by a file-based shuffle (DESIGN.md: map → shuffle → reduce).

1. signatures, one task per staged shard: reads the shard's pending signatures from the state, writes them
   as a matrix file, writes its band rows (one row per document and LSH band) and exact-key rows, each file
   ordered by shuffle partition `key % P`, its ids, and matches the shard against the index of documents
   kept by earlier runs (same text, or a verified LSH hit; the same id is left to the versions task).
1b. versions, one task: the captures of each repeated id in order: the same text again is an alias of
   the id's current version, other text a new version (`[dedup] recapture`).
2. buckets, one task per partition: sorts the partition's band rows that share a bucket; documents sharing
   a bucket become candidate pairs, each verified by the share of equal signature slots. Exact copies link
   directly; captures of one id never link to each other, a superseded capture to nothing.
3. components, one task: union-find over the verified edges only (never over all documents), one
   representative per component, and a decision per duplicate, written per shard.
4. filter, one task per staged shard: routes each staged record to `documents` or `duplicates`.

Steps 1, 1b and 2 are here; 3 and 4 in `clusters`; what they share in `tasks`; the driver's part of a
round (its folder, reading the results, installing the files) in `rounds`.

Every task writes its files atomically, then a completion marker holding its result; a task whose marker
exists is not run again, so an interrupted run resumes where it stopped as long as the pending set and the
index are unchanged (the round directory is named by a hash of both). The driver only schedules tasks and
reads their small results; it then commits the index, the shards' status and the records' streams in one
transaction, and moves the filtered files into place (`install_rounds`, also run first thing by every run,
finishes a move a kill interrupted).

Documents are nodes: `seq << 32 | i` for the i-th pending document of shard `seq`, `-doc` for the index's
document `doc`. Buckets list their documents in input order (node order), so neither the partition count
nor the shard layout changes a result. Where an id occurs more than once, the versions task decides: the
same text again is a duplicate of the id's current version, other text a new version (`[dedup]
recapture`); captures of one id never link to each other. pipeline/dedup/driver.py drives a round for
`run`, `dedup` and `dedup --rebuild` alike.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from ..io.writer import write_atomic
from ..state import Connection, DedupTables
from .index import DedupIndex, read_npy
from .minhash import _bucket_pairs, _hits_to_pairs, _sig_matrix, band_key
from .tasks import (
    _BANDS_AT_ONCE,
    _EXROW,
    _IDROW,
    _ROW,
    ALIAS,
    LINK,
    DedupJob,
    _connect,
    _edges,
    _exact_halves,
    _forest,
    _id_hash,
    _meta,
    _once,
    _save,
    _Sigs,
    _split,
    _unique_pairs,
    _verified,
    node_of,
)

# --- 1. signatures ---------------------------------------------------------------------------------------

def signatures(job: DedupJob, seq: int) -> dict:
    return _once(job, f"signatures-{seq}", lambda: _signatures(job, seq))


def _signatures(job: DedupJob, seq: int) -> dict:
    cfg = job.cfg
    db = _connect(job)
    try:
        rows = DedupTables(db).pending_of_shard(seq)
        ids = [r[0] for r in rows]
        exacts = [r[4] for r in rows]
        sigs = _sig_matrix([r[5] for r in rows], cfg.num_perm)
        _save(job.path("sig", f"s{seq}.npy"), sigs)
        # the sizes beside the matrix, not in the metadata: every buckets task reads them, and only them
        _save(job.path("sig", f"s{seq}.sizes.npy"), np.array([r[6] for r in rows], dtype=np.int64))
        write_atomic(job.path("sig", f"s{seq}.json"), json.dumps(
            {"ids": ids, "inputs": [r[1] for r in rows], "text_len": [r[2] for r in rows],
             "dates": [r[3] for r in rows], "exact": exacts}))
        nodes = node_of(seq, np.arange(len(rows)))
        halves = _exact_halves(exacts)
        id_rows = np.empty(len(rows), dtype=_IDROW)
        id_rows["idh"] = np.array([_id_hash(i) for i in ids], dtype=np.int64)
        id_rows["node"], id_rows["hi"], id_rows["lo"] = nodes, halves[:, 0], halves[:, 1]
        _save(job.path("ids", f"s{seq}.npy"), id_rows)  # for the versions step: the same id more than once
        table = np.empty(cfg.bands * len(rows), dtype=_ROW)
        for band in range(cfg.bands):
            part = table[band * len(rows):(band + 1) * len(rows)]
            part["band"], part["key"], part["node"] = band, band_key(sigs, band, cfg.rows), nodes
        exact = np.empty(len(rows), dtype=_EXROW)
        exact["hi"], exact["lo"], exact["node"] = halves[:, 0], halves[:, 1], nodes
        # one file each, ordered by partition (`key % P`): the buckets task of partition p reads its slices
        offsets = {name: _save_by_partition(job.path(name, f"s{seq}.npy"), array, key, job.partitions)
                   for name, array, key in (("bands", table, "key"), ("exact", exact, "hi"))}
        kinds: Counter = Counter()
        edges, known = _match_index(job, db, seq, ids, exacts, sigs, kinds)
        _save(job.path("edges", f"s{seq}.npy"), edges)
        _save(job.path("known", f"s{seq}.npy"), known)
    finally:
        db.close()
    return {"documents": len(rows), "index_edges": len(edges), "links": kinds, "offsets": offsets}


def _save_by_partition(path: Path, rows: np.ndarray, key: str, partitions: int) -> list[int]:
    """Save `rows` ordered by partition (`rows[key] % partitions`); the offset where each partition starts."""
    where = rows[key] % partitions
    if partitions <= 1 << 16:  # a stable sort of 16-bit integers is a radix sort: several times faster
        where = where.astype(np.uint16)
    order = np.argsort(where, kind="stable")
    _save(path, rows[order])
    return np.searchsorted(where[order], np.arange(partitions + 1)).tolist()


def _match_index(job: DedupJob, db: Connection, seq: int, ids: list[str], exacts: list[str],
                 sigs: np.ndarray, kinds: Counter) -> tuple[np.ndarray, np.ndarray]:
    """Edges from this shard's documents to the documents kept by earlier runs (links counted into `kinds`),
    and (node, indexed node, same text) of each document whose id was kept before (a new capture of it)."""
    index = DedupIndex(db, job.cfg, check=False)
    none = np.empty((0, 3), dtype=np.int64)
    if not len(ids) or not index.tables.has_docs():
        return none, none
    out = []
    # the same id kept before: the versions step decides whether it is that document again or a new version
    found = {r[1]: (r[0], r[2]) for r in index.docs_where("id", sorted(set(ids)))}
    known = np.array([(node_of(seq, i), -found[doc_id][0], int(found[doc_id][1] == exacts[i]))
                      for i, doc_id in enumerate(ids) if doc_id in found], dtype=np.int64).reshape(-1, 3)
    # the same text
    docs_of_exact: dict[str, list[int]] = {}
    for doc, _id, exact, _sig in index.docs_where("exact", sorted(set(exacts))):
        docs_of_exact.setdefault(exact, []).append(doc)
    same = [(i, doc) for i, exact in enumerate(exacts) for doc in docs_of_exact.get(exact, ())]
    if same:
        i, doc = np.array(same, dtype=np.int64).T
        out.append(_edges(node_of(seq, i), -doc, LINK))
        kinds["exact"] += len(same)
    # near copies: LSH hits, each verified
    candidates = []
    for band in range(job.cfg.bands):
        keys = band_key(sigs, band, job.cfg.rows)
        hit_keys, hit_docs = index._band_hits(band, keys)
        if len(hit_keys):
            candidates.append(_hits_to_pairs(keys, hit_keys, hit_docs))
    if candidates:
        pairs = _unique_pairs(np.concatenate(candidates))
        pairs = pairs[index.live(pairs[:, 1])]  # a forgotten document's band keys stay until a merge
        a, b = node_of(seq, pairs[:, 0]), -pairs[:, 1]
        ok = _verified(job, _Sigs(job, db), a, b, kinds)
        out.append(_edges(a[ok], b[ok], LINK))
    return (np.concatenate(out) if out else none), known


# --- 1b. versions -----------------------------------------------------------------------------------------

def versions(job: DedupJob) -> dict:
    return _once(job, "versions", lambda: _versions(job))


def _versions(job: DedupJob) -> dict:
    """The captures of one id (a URL scraped more than once, in this round or kept before), in order: one
    with the same text as the id's current version is that document again (an ALIAS edge to it: a
    duplicate of its own id); one with other text is a new version, which `[dedup] recapture = "update"`
    makes supersede the current one and `versions` keeps beside it. Writes `versions/alias.npy` (ALIAS
    edges), `versions/superseded.npy` ((node, newer node) sorted: removed from linking; update only),
    `versions/groups.npy` ((node, group) sorted: captures of one id never link to each other) and
    `versions/replaced.npy` (indexed documents with a newer version in this round, whose index entry it
    replaces when it is kept). Memory: 32 bytes a document."""
    parts = [np.load(job.path("ids", f"s{seq}.npy")) for seq in job.seqs]
    rows = np.concatenate(parts) if parts else np.empty(0, dtype=_IDROW)
    del parts
    known = np.concatenate([np.load(job.path("known", f"s{seq}.npy")) for seq in job.seqs] or
                           [np.empty((0, 3), dtype=np.int64)])
    rows = rows[np.lexsort((rows["node"], rows["idh"]))]
    idh = rows["idh"]
    repeated = np.r_[False, idh[1:] == idh[:-1]] | np.r_[idh[:-1] == idh[1:], False]
    members = rows[repeated | np.isin(rows["node"], known[:, 0])]
    alias, superseded, groups, replaced = [], [], [], []
    if len(members):
        ids = _meta_of(job, members["node"], "ids")  # the hash may collide: the full ids decide
        indexed = {int(node): (int(doc), bool(same)) for node, doc, same in known.tolist()}
        by_id: dict[str, list[int]] = {}
        for k, doc_id in enumerate(ids):
            by_id.setdefault(doc_id, []).append(k)
        update = job.cfg.recapture == "update"
        for gid, (_doc_id, ks) in enumerate(sorted(by_id.items())):
            ks.sort(key=lambda k: int(members["node"][k]))
            first = int(members["node"][ks[0]])
            # the head: the current version (the indexed document, if the id was kept before), its text
            head = indexed[first][0] if first in indexed else first
            head_text = None if head < 0 else (int(members["hi"][ks[0]]), int(members["lo"][ks[0]]))
            chain = [head] + [int(members["node"][k]) for k in (ks if head < 0 else ks[1:])]
            for k in (ks if head < 0 else ks[1:]):
                node, text = int(members["node"][k]), (int(members["hi"][k]), int(members["lo"][k]))
                same_as_head = indexed[node][1] if head < 0 else text == head_text
                if same_as_head:
                    alias.append((node, head))
                    continue
                if update:
                    superseded.append((head, node))
                if head < 0:
                    replaced.append(head)
                head, head_text = node, text
            groups += [(node, gid) for node in chain]
    _save(job.path("versions", "alias.npy"), _edges(*np.array(alias, dtype=np.int64).reshape(-1, 2).T, ALIAS))
    _save(job.path("versions", "superseded.npy"), _sorted_pairs(superseded))
    _save(job.path("versions", "groups.npy"), _sorted_pairs(groups))
    _save(job.path("versions", "replaced.npy"), np.unique(np.array(replaced, dtype=np.int64)))
    return {"aliases": len(alias), "superseded": len(superseded), "recaptured_ids": len({g for _n, g in groups})}


def _sorted_pairs(pairs: list[tuple[int, int]]) -> np.ndarray:
    out = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    return out[np.argsort(out[:, 0], kind="stable")]


class _Versions:
    """What the versions step decided, as the buckets and components steps need it: which pairs may not
    link (a capture superseded by a newer one links to nothing; two captures of one id never link)."""

    def __init__(self, job: DedupJob) -> None:
        self.superseded = np.load(job.path("versions", "superseded.npy"))
        self.groups = np.load(job.path("versions", "groups.npy"))
        self._gone = np.unique(self.superseded[:, 0])

    def _group(self, nodes: np.ndarray) -> np.ndarray:
        if not len(self.groups):
            return np.full(len(nodes), -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.groups[:, 0], nodes), len(self.groups) - 1)
        return np.where(self.groups[at, 0] == nodes, self.groups[at, 1], -1)

    def allowed(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Mask of the pairs (a[k], b[k]) that may link."""
        ok = ~(np.isin(a, self._gone) | np.isin(b, self._gone))
        ga, gb = self._group(a), self._group(b)
        return ok & ~((ga >= 0) & (ga == gb))

    def gone(self, nodes: np.ndarray) -> np.ndarray:
        return np.isin(nodes, self._gone)


# --- 2. buckets ------------------------------------------------------------------------------------------

def buckets(job: DedupJob, partition: int) -> dict:
    return _once(job, f"buckets-{partition}", lambda: _buckets(job, partition))


def _buckets(job: DedupJob, partition: int) -> dict:
    parts: dict[str, list[np.ndarray]] = {"bands": [], "exact": []}
    for seq in job.seqs:
        offsets = json.loads(job.path("done", f"signatures-{seq}.json").read_text(encoding="utf-8"))["offsets"]
        for name in ("bands", "exact"):
            start, end = offsets[name][partition], offsets[name][partition + 1]
            parts[name].append(read_npy(job.path(name, f"s{seq}.npy"), start, end - start))
    rows = np.concatenate(parts["bands"]) if parts["bands"] else np.empty(0, dtype=_ROW)
    exact_rows = np.concatenate(parts["exact"]) if parts["exact"] else np.empty(0, dtype=_EXROW)
    del parts
    versions = _Versions(job)
    rows = rows[~versions.gone(rows["node"])]  # a superseded capture links to nothing
    exact_rows = exact_rows[~versions.gone(exact_rows["node"])]
    total = len(rows)
    rows = rows[_shared(rows)]  # most rows are alone in their bucket: only the others are sorted in full
    rows = rows[np.lexsort((rows["node"], rows["key"], rows["band"]))]
    bands = rows["band"]
    starts = np.searchsorted(bands, np.arange(job.cfg.bands), side="left")
    ends = np.searchsorted(bands, np.arange(job.cfg.bands), side="right")
    db = _connect(job)
    try:
        exact = _exact_copies(exact_rows[np.lexsort((exact_rows["node"], exact_rows["lo"], exact_rows["hi"]))],
                              versions)
        kinds = Counter(exact=len(exact))
        forest = _forest(exact)
        sigs = _Sigs(job, db)
        bounds = list(zip(starts.tolist(), ends.tolist(), strict=True))
        for group in range(0, len(bounds), _BANDS_AT_ONCE):
            candidates = [_candidates(rows[start:end]) for start, end in bounds[group:group + _BANDS_AT_ONCE]]
            pairs = _unique_pairs(np.concatenate(candidates))
            a, b = pairs[:, 0], pairs[:, 1]
            apart = _label(forest, a) != _label(forest, b)  # joined already: no need to verify again
            apart &= versions.allowed(a, b)
            a, b = a[apart], b[apart]
            ok = _verified(job, sigs, a, b, kinds)
            if ok.any():  # the links so far, as a forest: memory bounded by the documents, not the pairs
                forest = _forest(np.concatenate([forest, _edges(a[ok], b[ok], LINK)]))
    finally:
        db.close()
    _save(job.path("edges", f"p{partition}.npy"), forest)
    return {"rows": total, "shared_rows": len(rows), "edges": len(forest), "links": kinds}


def _shared(rows: np.ndarray) -> np.ndarray:
    """Mask of the band rows whose (band, key) another row has too: one sort of a 64-bit mix of the two (a
    collision only lets a lone row through, where it finds no partner)."""
    if len(rows) < 2:
        return np.zeros(len(rows), dtype=bool)
    mixed = rows["key"] ^ (rows["band"] * np.int64(-7046029254386353131))  # 0x9E3779B97F4A7C15 as int64
    order = np.argsort(mixed, kind="stable")
    ordered = mixed[order]
    same = ordered[1:] == ordered[:-1]
    mask = np.zeros(len(rows), dtype=bool)
    mask[order[np.r_[same, False] | np.r_[False, same]]] = True
    return mask


def _candidates(block: np.ndarray) -> np.ndarray:
    """Candidate pairs (node, node), smaller first, of one band's rows (sorted by key, then node: input
    order, whatever the shard sizes). Exact copies in a bucket pair like the rest; the forest of exact links
    drops those pairs before any verification."""
    if not len(block):
        return np.empty((0, 2), dtype=np.int64)
    pairs = _bucket_pairs(block["key"])
    return np.sort(np.stack([block["node"][pairs[:, 0]], block["node"][pairs[:, 1]]], axis=1), axis=1)


def _label(forest: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """The component label of each node under a `_forest` (sorted by node); a node not in it is its own."""
    if not len(forest) or not len(nodes):
        return nodes
    at = np.minimum(np.searchsorted(forest[:, 0], nodes), len(forest) - 1)
    return np.where(forest[at, 0] == nodes, forest[at, 1], nodes)


def _meta_of(job: DedupJob, nodes: np.ndarray, field: str) -> list[str]:
    """One field (`ids`, `inputs`) of the shard metadata for each of this round's `nodes`."""
    seqs, rows = _split(nodes)
    found: list[str] = [""] * len(nodes)
    for seq in np.unique(seqs).tolist():
        values = _meta(job, seq)[field]
        for k in np.flatnonzero(seqs == seq).tolist():
            found[k] = values[rows[k]]
    return found


def _exact_copies(rows: np.ndarray, versions: _Versions) -> np.ndarray:
    """Links from each document to the first (in input order) with the same text, unless both are captures
    of one id (the versions step made the later an alias of the earlier already). `rows`: `_EXROW`s sorted
    by exact key, then node."""
    if not len(rows):
        return np.empty((0, 3), dtype=np.int64)
    start = np.r_[True, (rows["hi"][1:] != rows["hi"][:-1]) | (rows["lo"][1:] != rows["lo"][:-1])]
    group_first = rows["node"][np.flatnonzero(start)][np.cumsum(start) - 1]
    copies = ~start
    a, b = rows["node"][copies], group_first[copies]
    ok = versions.allowed(a, b)
    return _edges(a[ok], b[ok], LINK)
