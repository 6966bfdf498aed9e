"""The run state in `OUT/_state/`: which inputs are done, which shards exist, which records each holds, the
history of runs.

SQLite (embedded, one file, transactions): a shard's files are renamed into place and then recorded here
in one transaction, so after a kill at any moment the state names exactly the shards that are complete;
shard files it does not name are leftovers of the killed run and are removed before the next one starts.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..config import ConfigError
from ..io.writer import to_json
from ..layout import FORMAT_KEY, STATE_DB, STREAMS
from .dedup import DedupTables
from .keys import file_sha1, key_of, sql_chunks, sql_key, sql_marks

Connection = sqlite3.Connection  # what a transaction yields: callers pass it on to the state's own methods
StateError = sqlite3.Error  # any failure of the state database
# SQLite's words for failures of the storage that may pass (its OperationalError carries no errno)
_TEMPORARY = ("database or disk is full", "readonly database", "disk i/o error", "database is locked",
              "unable to open database file", "out of memory")


def is_temporary(exc: BaseException) -> bool:
    """A state failure that a rerun may mend (a full disk, a read-only mount, a lock held too long)."""
    return isinstance(exc, sqlite3.OperationalError) and any(words in str(exc).lower() for words in _TEMPORARY)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inputs (
    path TEXT PRIMARY KEY,      -- relative to the input root, like document ids (`sql_key`); `dir/` a folder
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha1 TEXT NOT NULL,
    status TEXT NOT NULL,       -- done | partial (pages_done of it are in committed shards) | failed (retried)
                                --   | retracting (its records were being removed: processed again)
    pages_done INTEGER NOT NULL,
    shard INTEGER NOT NULL,     -- the last shard holding its records
    run_id INTEGER NOT NULL,
    root TEXT                   -- the input root it was last found under (`root_id`); NULL in states older than
                                --   it until found again (an input of unknown root is never taken for gone)
);
CREATE TABLE IF NOT EXISTS outputs (
    doc_id TEXT NOT NULL,
    input TEXT NOT NULL,        -- an `inputs.path`
    stream TEXT NOT NULL,
    shard INTEGER NOT NULL
);
DROP INDEX IF EXISTS outputs_input;  -- (input) alone: replaced by the index below, which serves it too
CREATE INDEX IF NOT EXISTS outputs_input_doc ON outputs (input, doc_id);
CREATE TABLE IF NOT EXISTS shards (
    seq INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL,
    status TEXT NOT NULL,       -- staged (cleaned, awaiting dedup) | final
    counts TEXT NOT NULL        -- JSON: records per stream
);
CREATE TABLE IF NOT EXISTS pending (  -- signatures of cleaned documents awaiting the run's dedup step
    doc_id TEXT NOT NULL,       -- not unique: the same URL scraped twice gives the same id
    input TEXT NOT NULL,        -- the input file it came from (an `inputs.path`)
    seq INTEGER NOT NULL,
    pos INTEGER NOT NULL,       -- order within the shard
    text_len INTEGER NOT NULL,
    date TEXT,
    exact TEXT NOT NULL,
    sig BLOB NOT NULL,
    shingles INTEGER NOT NULL DEFAULT 0  -- distinct n-grams of the text (0: signed before sizes were kept)
);
CREATE INDEX IF NOT EXISTS pending_shard ON pending (seq, pos);
CREATE TABLE IF NOT EXISTS moves (  -- kept records superseded by a newer capture, to be moved to duplicates
    doc_id TEXT NOT NULL,
    shard INTEGER NOT NULL,
    similarity REAL,
    superseded_by TEXT
);
CREATE TABLE IF NOT EXISTS dedup_rounds (  -- dedup rounds committed, whose files are still to be moved
    name TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS settings (  -- the state's own facts: its id, which the output's marker names
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY,
    started TEXT NOT NULL,
    finished TEXT,
    status TEXT NOT NULL,       -- running | done | interrupted | failed | killed
    report TEXT
);
"""


def _connect_readonly(path: Path) -> sqlite3.Connection:
    """A connection that writes nothing, not even SQLite's `-wal`/`-shm` companions (which a reader would
    otherwise create, owned by whoever runs `stats`). With no `-wal` file no run is writing (the last
    connection of a run checkpoints and removes it), so the file is read as immutable; while a run writes,
    its companions exist and a plain read-only connection shares them."""
    from urllib.parse import quote

    uri = f"file:{quote(str(path.resolve()))}"
    if not path.with_name(path.name + "-wal").exists():
        return sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None)
    try:
        db = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None)
        db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        return db
    except sqlite3.OperationalError:  # a read-only folder where the companions cannot be opened
        return sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None)


@dataclass(frozen=True)
class InputFile:
    """An input file as seen now, with what the state knew of it."""

    path: Path
    key: str  # relative to the input root
    root: str  # `root_id` of that root
    size: int
    mtime_ns: int
    sha1: str
    resume_at: int = 0  # pages already in committed shards (an input a killed run left half done)
    retract: bool = False  # an earlier version left records that must go before this one is processed


class RunState:
    """The SQLite state of one output folder; the dedup index lives in the same database."""

    def __init__(self, state_dir: Path, readonly: bool = False, name: str = STATE_DB) -> None:
        """`name`: the database file in `state_dir` (`STATE_DB` for `run`, `DEDUP_DB` for `pagewash dedup`)."""
        self.name = name
        if readonly:  # `stats`: reads only, so it works on an output the user may not (or cannot) write
            self.db = _connect_readonly(state_dir / name)
            return
        state_dir.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(state_dir / name, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)
        if "root" not in {row[1] for row in self.db.execute("PRAGMA table_info(inputs)")}:
            self.db.execute("ALTER TABLE inputs ADD COLUMN root TEXT")
        if "shingles" not in {row[1] for row in self.db.execute("PRAGMA table_info(pending)")}:
            self.db.execute("ALTER TABLE pending ADD COLUMN shingles INTEGER NOT NULL DEFAULT 0")

    def close(self) -> None:
        self.db.close()

    @property
    def dedup(self) -> DedupTables:
        """The dedup engine's tables in this database."""
        return DedupTables(self.db)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # --- inputs ---------------------------------------------------------------------------------------

    def triage(self, path: Path, key: str, root: str) -> InputFile | None:
        """The input if it must be processed (new, changed, half done or failed), None if it is done.

        Size and mtime unchanged means unchanged (as make and rsync judge); when they differ, the content
        hash decides, so a file that was only touched is not processed again. An input found under another
        root than before now belongs to this one (`gone_inputs`). Raises OSError when the file cannot be
        read (the caller records that as a reject).
        """
        st = path.stat()
        db_key = sql_key(key)
        row = self.db.execute(
            "SELECT size, mtime_ns, sha1, status, pages_done, root FROM inputs WHERE path = ?", (db_key,)
        ).fetchone()
        # no mtime (some object stores, fsspec's memory filesystem): size alone proves nothing, hash it
        same_stat = row is not None and st.st_mtime_ns and row[0] == st.st_size and row[1] == st.st_mtime_ns
        if same_stat and row[3] == "done":
            if row[5] != sql_key(root):
                self.db.execute("UPDATE inputs SET root = ? WHERE path = ?", (sql_key(root), db_key))
            return None
        sha1 = file_sha1(path)
        if row is None:
            return InputFile(path, key, root, st.st_size, st.st_mtime_ns, sha1)
        if sha1 == row[2]:
            if row[3] == "done":
                self.db.execute("UPDATE inputs SET mtime_ns = ?, root = ? WHERE path = ?",
                                (st.st_mtime_ns, sql_key(root), db_key))
                return None
            if row[3] == "partial":
                return InputFile(path, key, root, st.st_size, st.st_mtime_ns, sha1, resume_at=row[4])
        return InputFile(path, key, root, st.st_size, st.st_mtime_ns, sha1, retract=True)

    def begin_walk(self) -> None:
        """Start noting the keys a walk finds (`saw`), in a temporary table: held by SQLite, not in memory."""
        self.db.execute("CREATE TEMP TABLE IF NOT EXISTS seen (path PRIMARY KEY)")
        self.db.execute("DELETE FROM temp.seen")

    def saw(self, keys: list[str]) -> None:
        with self.transaction() as db:
            db.executemany("INSERT OR IGNORE INTO temp.seen VALUES (?)", ((sql_key(k),) for k in keys))

    def gone_inputs(self, root: str) -> list[str]:
        """Keys of the inputs of `root` that the walk since `begin_walk` did not find, sorted."""
        rows = self.db.execute("SELECT path FROM inputs WHERE root = ? AND path NOT IN (SELECT path FROM temp.seen)",
                               (sql_key(root),)).fetchall()
        return sorted(key_of(path) for (path,) in rows)

    def mark_retracting(self, key: str) -> None:
        """An input whose records are being removed: `triage` hands it out again whatever its content."""
        with self.transaction() as db:
            db.execute("UPDATE inputs SET status = 'retracting' WHERE path = ?", (sql_key(key),))

    def outputs_of(self, key: str) -> list[tuple[str, str, int]]:
        """(doc_id, stream, shard) of every record an input left in the output."""
        return self.db.execute("SELECT doc_id, stream, shard FROM outputs WHERE input = ?",
                               (sql_key(key),)).fetchall()

    def other_inputs(self, seq: int, key: str, ids: Iterable[str]) -> dict[str, list[str]]:
        """doc_id -> keys of the inputs other than `key` that left a record with that id in shard `seq`."""
        found: dict[str, list[str]] = {}
        for chunk in sql_chunks(sorted(ids)):
            rows = self.db.execute(
                f"SELECT doc_id, input FROM outputs WHERE shard = ? AND input != ? AND doc_id IN "
                f"({sql_marks(chunk)}) ORDER BY doc_id, input", (seq, sql_key(key), *chunk)).fetchall()
            for doc_id, other in rows:
                found.setdefault(doc_id, []).append(key_of(other))
        return found

    def commit_shard(self, seq: int, run_id: int, status: str, counts: dict,
                     inputs: Iterable[tuple[InputFile, str, int]], outputs: Iterable[tuple[str, str, str]],
                     pending: Iterable[tuple], also: Callable[[sqlite3.Connection], None] | None = None) -> None:
        """Record a shard whose files are in place: its inputs (file, status, pages done), its records
        (doc_id, input key, stream) and the signatures of its documents awaiting dedup; `also(db)` adds the
        caller's own writes to the same transaction."""
        with self.transaction() as db:
            if also is not None:
                also(db)
            db.execute("INSERT OR REPLACE INTO shards VALUES (?, ?, ?, ?)", (seq, run_id, status, json.dumps(counts)))
            db.executemany("INSERT INTO outputs VALUES (?, ?, ?, ?)",
                           ((doc_id, sql_key(key), stream, seq) for doc_id, key, stream in outputs))
            db.executemany(
                "INSERT OR REPLACE INTO inputs (path, size, mtime_ns, sha1, status, pages_done, shard, run_id, root) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ((sql_key(f.key), f.size, f.mtime_ns, f.sha1, st, done, seq, run_id, sql_key(f.root))
                 for f, st, done in inputs),
            )
            db.executemany("INSERT INTO pending VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           ((row[0], sql_key(row[1]), *row[2:]) for row in pending))

    @staticmethod
    def change_counts(db: sqlite3.Connection, seq: int, change: Callable[[dict], None],
                      status: str | None = None) -> None:
        """Inside the caller's transaction: shard `seq`'s record counts per stream, changed in place by
        `change`, and (given) its new status."""
        counts = json.loads(db.execute("SELECT counts FROM shards WHERE seq = ?", (seq,)).fetchone()[0])
        change(counts)
        db.execute("UPDATE shards SET counts = ?, status = COALESCE(?, status) WHERE seq = ?",
                   (json.dumps(counts), status, seq))

    def forget(self, db: sqlite3.Connection, key: str, gone: bool) -> None:
        """Inside the caller's transaction: forget the records input `key` left (and, when it is `gone`,
        the input itself)."""
        db_key = sql_key(key)
        db.execute("DELETE FROM outputs WHERE input = ?", (db_key,))
        db.execute("DELETE FROM pending WHERE input = ?", (db_key,))
        if gone:
            db.execute("DELETE FROM inputs WHERE path = ?", (db_key,))

    # --- shards and runs ------------------------------------------------------------------------------

    def shard_status(self) -> dict[int, str]:
        return dict(self.db.execute("SELECT seq, status FROM shards"))

    def next_seq(self) -> int:
        (top,) = self.db.execute("SELECT COALESCE(MAX(seq), -1) FROM shards").fetchone()
        return top + 1

    def state_id(self) -> str:
        """This state's id, made on first use: the output's marker (`pipeline.io.store.bind`) names it."""
        found = self.setting("state_id")
        if found is None:
            with self.transaction() as db:
                db.execute("INSERT OR IGNORE INTO settings (key, value) VALUES ('state_id', ?)", (uuid.uuid4().hex,))
            found = self.setting("state_id")
        return found

    def setting(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_setting(self, key: str, value: str, db: sqlite3.Connection | None = None) -> None:
        """Record a setting, in the caller's transaction `db` if given, else in one of its own."""
        if db is not None:
            db.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, value))
            return
        with self.transaction() as own:
            self.set_setting(key, value, own)

    def output_format(self) -> str:
        """The format of the output's shards (an output from before formats holds JSON lines)."""
        return self.setting(FORMAT_KEY) or "jsonl"

    def adopt_format(self, fmt: str, full: bool, where: str) -> None:
        """Record `fmt` as the output's shard format; refuse (ConfigError) another format than that of the
        shards the output holds, unless `full` rewrites them all."""
        recorded = self.setting(FORMAT_KEY) or ("jsonl" if self.shard_status() else None)
        if recorded not in (None, fmt) and not full:
            raise ConfigError(f"{where} holds {recorded} shards: pass --format {recorded} (`run --full` rewrites "
                              f"a run's output as {fmt})")
        if self.setting(FORMAT_KEY) != fmt:
            self.set_setting(FORMAT_KEY, fmt)

    def drop_setting(self, key: str, db: Connection) -> None:
        """Forget a setting, in the caller's transaction `db`."""
        db.execute("DELETE FROM settings WHERE key = ?", (key,))

    def is_empty(self) -> bool:
        """No input or shard recorded yet (a new output, or one reset by --full)."""
        return not self.db.execute("SELECT 1 FROM inputs UNION ALL SELECT 1 FROM shards LIMIT 1").fetchone()

    def begin_run(self, started: str) -> int:
        with self.transaction() as db:
            db.execute("UPDATE runs SET status = 'killed' WHERE status = 'running'")
            cursor = db.execute("INSERT INTO runs (started, status) VALUES (?, 'running')", (started,))
        return cursor.lastrowid

    def end_run(self, run_id: int, status: str, finished: str, report: dict) -> None:
        with self.transaction() as db:
            db.execute("UPDATE runs SET finished = ?, status = ?, report = ? WHERE run_id = ?",
                       (finished, status, to_json(report), run_id))

    def history(self, limit: int = 20) -> list[dict]:
        rows = self.db.execute(
            "SELECT run_id, started, finished, status, report FROM runs ORDER BY run_id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [{"run_id": r[0], "started": r[1], "finished": r[2], "status": r[3],
                 "report": json.loads(r[4]) if r[4] else None} for r in rows]

    def final_counts(self) -> Iterator[dict]:
        """Records per stream of each final shard."""
        for (counts,) in self.db.execute("SELECT counts FROM shards WHERE status = 'final'"):
            yield json.loads(counts)

    def any_retracting(self) -> bool:
        """An interrupted run was removing a changed input's records."""
        return self.db.execute("SELECT 1 FROM inputs WHERE status = 'retracting' LIMIT 1").fetchone() is not None

    def totals(self) -> dict:
        """Inputs done and records per stream over all runs."""
        totals = dict.fromkeys(STREAMS, 0)
        for counts in self.final_counts():
            for stream, n in counts.items():
                totals[stream] = totals.get(stream, 0) + n
        inputs = dict(self.db.execute("SELECT status, COUNT(*) FROM inputs GROUP BY status"))
        return {"inputs": inputs, **totals}

    def reset(self, db: sqlite3.Connection) -> None:
        """Forget every input, shard and pending signature (for `--full`), inside the caller's transaction;
        the run history stays."""
        for table in ("inputs", "outputs", "shards", "pending", "dedup_rounds", "moves"):
            db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
