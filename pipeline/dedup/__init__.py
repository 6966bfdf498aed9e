"""Exact and near-duplicate detection: the one dedup engine.

- `minhash`: the math (tokens, exact key, MinHash signature, LSH band keys, `link`); no state.
- `decisions`: items, decisions, the keep policy, a record's dedup fields.
- `index`: the documents kept by earlier rounds (rows in the state, numpy band runs beside it).
- `tasks`: what a round's step tasks share (the job, its files, node numbers, signatures of nodes).
- `steps`: a round's design, and steps 1 (signatures), 1b (versions), 2 (buckets), as resumable tasks.
- `clusters`: steps 3 (components) and 4 (filter).
- `rounds`: the driver's part of a round (its folder, results read back, installing files and moves).
- `driver`: a round driven for `run`, `pagewash dedup IN.jsonl…` and `dedup --rebuild`.

May import `config`, `state` (its tables, through named methods: no SQL here), `io`, `records`, `executor`;
never the stages or the run. An LSH
collision alone never links two documents: every candidate pair is verified. This module names what the rest
of the package uses.
"""

from .decisions import Decision, DedupItem, KeptRows, apply_decision, representatives, stage_as_kept, staged_as_kept
from .index import DedupIndex
from .minhash import SCHEME, band_key, exact_key, fingerprint, link, normalise, signature

__all__ = ["SCHEME", "Decision", "DedupIndex", "DedupItem", "KeptRows", "apply_decision", "band_key", "exact_key",
           "fingerprint", "link", "normalise", "representatives", "signature", "stage_as_kept", "staged_as_kept"]
