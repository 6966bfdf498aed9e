"""Exact and near-duplicate detection: the one dedup engine.

- `minhash`: the math (tokens, exact key, MinHash signature, LSH band keys, `link`); no state.
- `decisions`: items, decisions, the keep policy, a record's dedup fields.
- `index`: the documents kept by earlier rounds (SQLite rows and numpy band runs).
- `steps`: a round's four shard-parallel steps and the filter, as resumable tasks joined by files.
- `driver`: a round driven for `run`, `pagewash dedup IN.jsonl…` and `dedup --rebuild`.

May import `config`, `state`, `store`, `writer`, `records`, `executor`; never the stages or the run. An LSH
collision alone never links two documents: every candidate pair is verified. This module names what the rest
of the package uses.
"""

from .decisions import Decision, DedupItem, KeptRows, apply_decision, representatives, stage_as_kept, staged_as_kept
from .index import DedupIndex
from .minhash import SCHEME, band_key, exact_key, fingerprint, link, normalise, signature

__all__ = ["SCHEME", "Decision", "DedupIndex", "DedupItem", "KeptRows", "apply_decision", "band_key", "exact_key",
           "fingerprint", "link", "normalise", "representatives", "signature", "stage_as_kept", "staged_as_kept"]
