"""What the dedup step tasks share: the job and its files (atomic saves, completion markers), node numbers,
the signatures of nodes, and the graph helpers. The steps are in `steps` (1, 1b, 2) and `clusters` (3, 4);
the design of a round is in `steps`' docstring."""

from __future__ import annotations

import hashlib
import io
import json
import mmap
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import DedupConfig
from ..io.writer import write_atomic
from ..state import STATE_DB, Connection, connect
from .decisions import _UnionFind
from .index import DedupIndex, npy_layout
from .minhash import _equal_share, _sig_matrix, link

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
    fmt: str = "jsonl"  # the output's shard format: the filter step writes its files in it, in parallel

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


def _connect(job: DedupJob) -> Connection:
    return connect(Path(job.state, job.db))


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

    def __init__(self, job: DedupJob, db: Connection) -> None:
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
            found = dict(self.index.docs_where("doc", sorted(set(docs)), fields=("doc", "shingles")))
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
            found = {doc: sig for doc, _id, _exact, sig in self.index.docs_where("doc", sorted(set(docs)))}
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
