"""The state of an output folder (`OUT/_state/`), the only user of SQLite; every statement behind a named method.

- `run`: `RunState`, the run's tables (inputs, shards, the records each shard holds, runs, settings), its
  transactions, and how a state failure is told apart (`StateError`, `is_temporary`).
- `dedup`: `DedupTables`, the dedup engine's tables (the index, pending signatures, rounds and moves).
- `keys`: how inputs are named and hashed; `lock`: one writer of an output folder at a time.

May import `pipeline.layout` and `pipeline.io.writer`; never the stages, the dedup engine or the run.
"""

from ..layout import DEDUP_DB, FORMAT_KEY, LOCK_FILE, STATE_DB, STATE_DIR, STREAMS
from .dedup import DedupTables, connect
from .keys import content_sha1, file_sha1, key_of, root_id, sql_key
from .lock import LockBusy, run_lock
from .run import Connection, InputFile, RunState, StateError, is_temporary

__all__ = ["DEDUP_DB", "FORMAT_KEY", "LOCK_FILE", "STATE_DB", "STATE_DIR", "STREAMS", "Connection", "DedupTables",
           "InputFile", "LockBusy", "RunState", "StateError", "connect", "content_sha1", "file_sha1", "is_temporary",
           "key_of", "root_id", "run_lock", "sql_key"]
