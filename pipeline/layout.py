"""The names of an output folder's layout, shared by the readers, the stores, the run and the state.

Imports nothing: `pipeline.io` uses these names without importing the state that keeps the records of them.
"""

STATE_DIR = "_state"  # OUT/_state: the state database, the lock, staged shards and dedup rounds
STATE_DB = "state.sqlite"  # in the state folder
DEDUP_DB = "dedup.sqlite"  # the same schema, for `pagewash dedup` of JSONL files (its inputs are not a run's)
LOCK_FILE = "lock"  # in the state folder; workers close their inherited copy (executor.pool._close_inherited)
STREAMS = ("documents", "duplicates", "rejects")
FORMAT_KEY = "output_format"  # in the state's settings: the format of the output's shards
SETTINGS_KEY = "settings_fingerprint"  # in the state's settings: what made the output's records (JSON)
