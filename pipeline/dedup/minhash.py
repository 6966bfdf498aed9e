"""The dedup math: tokens, the exact key and the MinHash signature of a text (`fingerprint`, the map step, a pure
function run in the workers: word n-grams, character n-grams in scripts written without spaces), LSH band
keys, the share of equal signature slots, and `link`, which decides whether a verified candidate pair links
(estimated Jaccard, or containment of the shorter text in the longer)."""

from __future__ import annotations

import hashlib
import re
import unicodedata

import numpy as np
from rensa import RMinHash

from ..config import DedupConfig

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


_RUNS = re.compile(r"\w+")


def count_words(text: str) -> int:
    """Words of a text: runs of word characters, and in scripts written without spaces (Chinese, Japanese,
    Thai, Lao, Khmer, Myanmar) each character, so that a Chinese article's length is not its clause count."""
    runs = _RUNS.findall(text)
    if _HAS_UNSPACED.search(text) is None:  # most texts: one pass
        return len(runs)
    return sum(len(_SPLIT_UNSPACED.findall(run)) for run in runs)


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
