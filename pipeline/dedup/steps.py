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

import hashlib
import io
import json
import mmap
import shutil
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import DedupConfig
from ..io.store import LocalStore, Store, replace_lines
from ..io.writer import ShardSet, shard_name, to_json, write_atomic
from ..state import STATE_DB, key_of
from .decisions import (
    Decision,
    KeptRows,
    _UnionFind,
    apply_decision,
    representatives,
    staged_as_kept,
    utf8_array,
)
from .index import DedupIndex, npy_layout, read_npy
from .minhash import _bucket_pairs, _equal_share, _hits_to_pairs, _sig_matrix, band_key, link

ROUNDS = "dedup"  # in the state folder, as are the database and the staged shards
STAGED = "staged"
LINK, ALIAS = 0, 1  # edge kinds: a verified link; `a` is the same document as `b` (same id)
_ROW = np.dtype([("band", "<i8"), ("key", "<i8"), ("node", "<i8")])  # a document's key in one LSH band
_EXROW = np.dtype([("hi", "<i8"), ("lo", "<i8"), ("node", "<i8")])  # a document's exact key (128 bits)
_IDROW = np.dtype([("idh", "<i8"), ("node", "<i8"), ("hi", "<i8"), ("lo", "<i8")])  # a document's id and text
_HOOK_ROUNDS = 32
_BANDS_AT_ONCE = 8  # bands whose candidate pairs are verified together (fewer reads, bounded memory)
_VERIFY_CHUNK = 16_384  # candidate pairs whose signatures are gathered at once (~36 MB of a task at most)


@dataclass(frozen=True)
class DedupJob:
    """One round: the staged shards `seqs` of the run whose state folder is `state`, deduplicated into
    `round_dir` (both POSIX paths every worker can reach: local, or a shared filesystem on a cluster)."""

    state: str
    round_dir: str
    cfg: DedupConfig
    seqs: tuple[int, ...]
    db: str = STATE_DB  # the state's database file in `state`

    def path(self, *parts: str) -> Path:
        return Path(self.round_dir, *parts)

    @property
    def partitions(self) -> int:
        return self.cfg.partitions


def node_of(seq: int, i: np.ndarray | int):
    return (np.int64(seq) << np.int64(32)) | np.asarray(i, dtype=np.int64)


def _split(nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return nodes >> np.int64(32), nodes & np.int64(0xFFFFFFFF)


def _id_hash(doc_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest(), "little", signed=True)


def _exact_halves(exacts: list[str]) -> np.ndarray:
    """The 128-bit exact keys (32 hex digits each) as pairs of int64."""
    raw = b"".join(bytes.fromhex(e) for e in exacts)
    if len(raw) != 16 * len(exacts):
        raise ValueError("exact keys must be 32 hex digits")
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64).view(np.int64).reshape(len(exacts), 2)


def _save(path: Path, array: np.ndarray) -> None:
    """np.save, atomically (`write_atomic`)."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    write_atomic(path, buffer.getvalue())


def _connect(job: DedupJob) -> sqlite3.Connection:
    return sqlite3.connect(Path(job.state, job.db), timeout=60)


def _once(job: DedupJob, name: str, compute: Callable[[], dict]) -> dict:
    """Run a task unless its completion marker exists; the marker holds the task's result."""
    marker = job.path("done", f"{name}.json")
    if marker.exists():
        return {**json.loads(marker.read_text(encoding="utf-8")), "resumed": True}
    result = compute()
    write_atomic(marker, json.dumps(result, sort_keys=True))
    return {**result, "resumed": False}


def _meta(job: DedupJob, seq: int) -> dict:
    return json.loads(job.path("sig", f"s{seq}.json").read_text(encoding="utf-8"))


class _Sigs:
    """Signatures of nodes: new documents from their shards' matrix files (memory-mapped, only the rows
    asked for are read), indexed documents from the index."""

    def __init__(self, job: DedupJob, db: sqlite3.Connection) -> None:
        self.job, self.index = job, DedupIndex(db, job.cfg, check=False)
        self._maps: dict[int, tuple] = {}  # seq -> (mapping, its signature matrix on it)
        self._sizes: dict[int, np.ndarray] = {}  # seq -> its documents' distinct n-grams

    def _rows(self, seq: int, rows: np.ndarray) -> np.ndarray:
        """Rows of shard `seq`'s signature matrix, read through a mapping kept for the task; the pages read
        are given back right after (`MADV_DONTNEED`: they stay in the page cache, not in the task's resident
        memory, which thus does not grow with the run's signatures)."""
        found = self._maps.get(seq)
        if found is None:
            path = self.job.path("sig", f"s{seq}.npy")
            offset, shape, dtype = npy_layout(path)
            with open(path, "rb") as handle:
                mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if shape[0] else None
            matrix = np.frombuffer(mapped, dtype=dtype, count=shape[0] * shape[1], offset=offset).reshape(shape) \
                if mapped is not None else np.empty(shape, dtype=dtype)
            found = self._maps[seq] = (mapped, matrix)
        mapped, matrix = found
        out = matrix[rows]  # a copy
        if mapped is not None and hasattr(mapped, "madvise"):
            mapped.madvise(mmap.MADV_DONTNEED)
        return out

    def sizes(self, nodes: np.ndarray) -> np.ndarray:
        """Distinct n-grams of each node's text (0: unknown), from the shards' metadata and the index."""
        out = np.zeros(len(nodes), dtype=np.int64)
        seqs, rows = _split(nodes)
        new = nodes >= 0
        for seq in np.unique(seqs[new]).tolist():
            if seq not in self._sizes:
                self._sizes[seq] = np.load(self.job.path("sig", f"s{seq}.sizes.npy"))
            at = np.flatnonzero(new & (seqs == seq))
            out[at] = self._sizes[seq][rows[at]]
        old = np.flatnonzero(~new)
        if len(old):
            docs = (-nodes[old]).tolist()
            found = dict(self.index._docs_where("doc", sorted(set(docs)), fields="doc, shingles"))
            out[old] = [found[d] for d in docs]
        return out

    def gather(self, nodes: np.ndarray) -> np.ndarray:
        """Signatures of `nodes` (sorted, as np.unique gives them: indexed ones first, then by shard)."""
        out = np.empty((len(nodes), self.job.cfg.num_perm), dtype="<u4")
        seqs, rows = _split(nodes)
        new = nodes >= 0
        first = int(np.searchsorted(nodes, 0))  # where this round's nodes start
        shards = np.unique(seqs[first:])
        bounds = np.searchsorted(seqs[first:], shards, side="right") + first
        start = first
        for seq, end in zip(shards.tolist(), bounds.tolist(), strict=True):
            out[start:end] = self._rows(seq, rows[start:end])
            start = end
        old = np.flatnonzero(~new)
        if len(old):
            docs = (-nodes[old]).tolist()
            found = {doc: sig for doc, _id, _exact, sig in self.index._docs_where("doc", sorted(set(docs)))}
            out[old] = _sig_matrix([found[d] for d in docs], self.job.cfg.num_perm)
        return out


def _verified(job: DedupJob, sigs: _Sigs, a: np.ndarray, b: np.ndarray, kinds: Counter) -> np.ndarray:
    """Mask of the candidate pairs (a[k], b[k]) that link (`dedup.link`: Jaccard or containment); the links
    are counted into `kinds` by what made them (`jaccard`, or `containment` alone)."""
    sizes = sigs.sizes(np.concatenate([a, b]))  # one lookup for both ends
    share = _shares(sigs, a, b)
    ok = link(share, sizes[:len(a)], sizes[len(a):], job.cfg)
    by_jaccard = int(np.count_nonzero(ok & (share >= job.cfg.threshold - 1e-9)))
    kinds.update(jaccard=by_jaccard, containment=int(np.count_nonzero(ok)) - by_jaccard)
    return ok


def _shares(sigs: _Sigs, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Share of equal signature slots of each pair (a[k], b[k]), gathering a bounded number at a time."""
    out = np.zeros(len(a))
    for start in range(0, len(a), _VERIFY_CHUNK):
        end = start + _VERIFY_CHUNK
        nodes, inverse = np.unique(np.concatenate([a[start:end], b[start:end]]), return_inverse=True)
        half = len(a[start:end])
        out[start:end] = _equal_share(sigs.gather(nodes), inverse[:half], inverse[half:])
    return out


def _component_labels(pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The nodes of the pairs (sorted) and, for each, the smallest node of its connected component.

    Star contraction in numpy: every star's root hooks onto the smallest root across its edges, then
    pointer jumping until every tree is a star again; a few rounds on real link graphs. A graph that needs
    more (a long chain in an adverse order) is finished by union-find, which is linear.
    """
    nodes, inverse = np.unique(pairs, return_inverse=True)
    u, v = inverse.reshape(-1, 2).T
    parent = np.arange(len(nodes))
    for _round in range(_HOOK_ROUNDS):
        pu, pv = parent[u], parent[v]
        apart = pu != pv
        if not apart.any():
            return nodes, nodes[parent]
        np.minimum.at(parent, np.maximum(pu[apart], pv[apart]), np.minimum(pu[apart], pv[apart]))
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
    links = _UnionFind(len(nodes))
    for a, b in zip(u.tolist(), v.tolist(), strict=True):
        links.union(a, b)
    return nodes, nodes[links.roots()]


def _forest(edges: np.ndarray) -> np.ndarray:
    """LINK edges joining exactly the components `edges` join, one per node that is not its component's
    smallest (node -> that smallest node), sorted by node: what the components step needs, whatever the
    number of verified pairs behind it."""
    if not len(edges):
        return edges
    nodes, labels = _component_labels(edges[:, :2])
    apart = nodes != labels
    return _edges(nodes[apart], labels[apart], LINK)


def _unique_pairs(pairs: np.ndarray) -> np.ndarray:
    """`np.unique(pairs, axis=0)` for a (k, 2) int64 array, three times faster (one lexsort, one comparison)."""
    if len(pairs) < 2:
        return pairs
    ordered = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
    return ordered[np.r_[True, (ordered[1:] != ordered[:-1]).any(axis=1)]]


def _edges(a: np.ndarray, b: np.ndarray, kind: int) -> np.ndarray:
    return np.stack([a, b, np.full(len(a), kind, dtype=np.int64)], axis=1).astype(np.int64).reshape(-1, 3)


# --- 1. signatures ---------------------------------------------------------------------------------------

def signatures(job: DedupJob, seq: int) -> dict:
    return _once(job, f"signatures-{seq}", lambda: _signatures(job, seq))


def _signatures(job: DedupJob, seq: int) -> dict:
    cfg = job.cfg
    db = _connect(job)
    try:
        rows = db.execute("SELECT doc_id, input, text_len, date, exact, sig, shingles FROM pending WHERE seq = ? "
                          "ORDER BY pos", (seq,)).fetchall()
        ids = [r[0] for r in rows]
        exacts = [r[4] for r in rows]
        sigs = _sig_matrix([r[5] for r in rows], cfg.num_perm)
        _save(job.path("sig", f"s{seq}.npy"), sigs)
        # the sizes beside the matrix, not in the metadata: every buckets task reads them, and only them
        _save(job.path("sig", f"s{seq}.sizes.npy"), np.array([r[6] for r in rows], dtype=np.int64))
        write_atomic(job.path("sig", f"s{seq}.json"), json.dumps(
            {"ids": ids, "inputs": [key_of(r[1]) for r in rows], "text_len": [r[2] for r in rows],
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


def _match_index(job: DedupJob, db: sqlite3.Connection, seq: int, ids: list[str], exacts: list[str],
                 sigs: np.ndarray, kinds: Counter) -> tuple[np.ndarray, np.ndarray]:
    """Edges from this shard's documents to the documents kept by earlier runs (links counted into `kinds`),
    and (node, indexed node, same text) of each document whose id was kept before (a new capture of it)."""
    index = DedupIndex(db, job.cfg, check=False)
    none = np.empty((0, 3), dtype=np.int64)
    if not len(ids) or db.execute("SELECT 1 FROM dedup_docs LIMIT 1").fetchone() is None:
        return none, none
    out = []
    # the same id kept before: the versions step decides whether it is that document again or a new version
    found = {r[1]: (r[0], r[2]) for r in index._docs_where("id", sorted(set(ids)))}
    known = np.array([(node_of(seq, i), -found[doc_id][0], int(found[doc_id][1] == exacts[i]))
                      for i, doc_id in enumerate(ids) if doc_id in found], dtype=np.int64).reshape(-1, 3)
    # the same text
    docs_of_exact: dict[str, list[int]] = {}
    for doc, _id, exact, _sig in index._docs_where("exact", sorted(set(exacts))):
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

    def __init__(self, job: DedupJob, db: sqlite3.Connection, nodes: np.ndarray) -> None:
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
            found = DedupIndex(db, job.cfg, check=False)._docs_where("doc", sorted((-nodes[old]).tolist()),
                                                                      fields="doc, id, exact")
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
    files = ShardSet(LocalStore(job.path("filtered")), seq)
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


# --- the driver's part -----------------------------------------------------------------------------------

def round_dir(state_dir: Path, db: sqlite3.Connection, cfg: DedupConfig) -> Path:
    """The round's folder, named by what its results depend on: the parameters, the pending documents and
    the index (streamed through a hash: nothing is held)."""
    digest = hashlib.sha1(json.dumps([cfg.num_perm, cfg.bands, cfg.rows, cfg.ngram, cfg.seed, cfg.threshold,
                                      cfg.enabled, cfg.partitions, cfg.containment, cfg.containment_min,
                                      cfg.keep, cfg.recapture]).encode())
    # the run that cleaned each shard: a rerun after --full (same inputs, new records) is another round
    digest.update(json.dumps(db.execute("SELECT seq, run_id FROM shards WHERE status = 'staged' ORDER BY seq")
                             .fetchall()).encode())
    rows = db.execute("SELECT seq, pos, doc_id, input, exact FROM pending ORDER BY seq, pos")
    while chunk := rows.fetchmany(4096):  # one dump a chunk: the per-row dumps were most of this
        digest.update(json.dumps([(seq, pos, doc_id, key_of(key), exact) for seq, pos, doc_id, key, exact in chunk])
                      .encode())
    if cfg.enabled:
        digest.update(json.dumps(db.execute("SELECT COUNT(*), COALESCE(MAX(doc), 0) FROM dedup_docs").fetchone())
                      .encode())
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


def apply_moves(store: Store, db: sqlite3.Connection) -> int:
    """Move the records the state's `moves` names (kept documents a newer capture superseded) from their
    shard's `documents/` file to its `duplicates/` file, marked `superseded_by`, and forget each move.
    Idempotent: the duplicates file is written first (unless it holds the record already), then the
    documents file without it; a kill in between is mended by the next call. Returns records moved."""
    try:
        rows = db.execute("SELECT rowid, doc_id, shard, similarity, superseded_by FROM moves ORDER BY rowid").fetchall()
    except sqlite3.OperationalError:  # a state from before moves existed
        return 0
    moved = 0
    for rowid, doc_id, seq, similarity, by in rows:
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
        db.execute("DELETE FROM moves WHERE rowid = ?", (rowid,))
    return moved


def _lines(store: Store, stream: str, name: str) -> Iterator[str]:
    """The lines of a shard file, each ending in a newline (none if the file does not exist)."""
    for line in store.lines(stream, name):
        yield line if line.endswith("\n") else line + "\n"


def install_rounds(store: Store, state_dir: Path, db: sqlite3.Connection) -> int:
    """Publish the filtered files of the committed rounds (named in the state by the commit) into the
    store's `documents/` and `duplicates/`, remove their staged files and folders, and forget them; then
    make the moves the commits recorded (`apply_moves`). Idempotent: a file published twice (a kill after
    its upload) is the same file. Returns files published."""
    moved = 0
    try:
        rounds = db.execute("SELECT name FROM dedup_rounds ORDER BY name").fetchall()
    except sqlite3.OperationalError:  # a state written before rounds existed: nothing to move
        return 0
    for (name,) in rounds:
        folder = state_dir / ROUNDS / name
        for stream in ("documents", "duplicates"):
            for path in sorted((folder / "filtered" / stream).glob("part-*.jsonl")):
                store.publish(stream, path.name, path)
                moved += 1
        job = folder / "job.json"
        for seq in json.loads(job.read_text(encoding="utf-8"))["seqs"] if job.exists() else []:
            (state_dir / STAGED / shard_name(seq)).unlink(missing_ok=True)
        shutil.rmtree(folder, ignore_errors=True)
        db.execute("DELETE FROM dedup_rounds WHERE name = ?", (name,))
    apply_moves(store, db)
    return moved
