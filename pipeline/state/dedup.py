"""The dedup engine's tables, behind named methods: the index of kept documents (`dedup_docs`, `dedup_meta`,
`dedup_band_runs`), the signatures awaiting a round (`pending`, written by `RunState.commit_shard`), the
rounds and moves a commit leaves for the files, and how far `pagewash dedup` has read each input.

`DedupTables` wraps one connection: the driver's (`RunState.db`, inside or outside its transactions) or a
step task's own (`connect`). Writers do no transaction handling: the caller commits them with its own state.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

from .keys import key_of, sql_chunks, sql_key, sql_marks

INDEX_SCHEMA = """
CREATE TABLE IF NOT EXISTS dedup_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dedup_docs (
    doc INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    exact TEXT NOT NULL,
    sig BLOB NOT NULL,
    text_len INTEGER NOT NULL,
    date TEXT,
    shingles INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS dedup_docs_exact ON dedup_docs (exact);
CREATE TABLE IF NOT EXISTS dedup_band_runs (  -- the LSH buckets of kept documents: sorted runs in files
    name TEXT PRIMARY KEY,      -- a folder in the index folder: keys.npy and docs.npy, (bands, docs) each
    docs INTEGER NOT NULL
);
DROP TABLE IF EXISTS dedup_bands;  -- one SQLite row per document and band until 2026-12-01 (scheme 2)
"""

JSONL_SCHEMA = """
CREATE TABLE IF NOT EXISTS dedup_inputs (  -- how far each input file (by content) is in committed shards
    sha1 TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    lines INTEGER NOT NULL,
    complete INTEGER NOT NULL
);
"""

_DOC_FIELDS = frozenset({"doc", "id", "exact", "sig", "text_len", "date", "shingles"})


def connect(path: Path) -> sqlite3.Connection:
    """A step task's own connection to the state database (it reads; the driver alone writes)."""
    return sqlite3.connect(path, timeout=60)


class DedupTables:
    """The dedup tables of one state database, through `db`."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    # --- the index ------------------------------------------------------------------------------------

    def create_index_schema(self) -> None:
        """The index tables (executescript commits: call outside a transaction)."""
        self.db.executescript(INDEX_SCHEMA)
        if "shingles" not in {row[1] for row in self.db.execute("PRAGMA table_info(dedup_docs)")}:
            # an index from before containment links (its scheme differs, so it is rebuilt before use)
            self.db.execute("ALTER TABLE dedup_docs ADD COLUMN shingles INTEGER NOT NULL DEFAULT 0")

    def folder(self) -> Path | None:
        """The folder of the database file (None for a database in memory)."""
        for _seq, name, file in self.db.execute("PRAGMA database_list"):
            if name == "main":
                return Path(file).parent if file else None
        return None

    def params(self) -> dict[str, str]:
        """The parameters the index was built with (empty: a new index)."""
        return dict(self.db.execute("SELECT key, value FROM dedup_meta"))

    def set_params(self, params: dict[str, str]) -> None:
        self.db.executemany("INSERT INTO dedup_meta (key, value) VALUES (?, ?)", params.items())

    def clear_index(self) -> None:
        """Empty the index whatever its parameters, inside the caller's transaction."""
        for table in ("dedup_band_runs", "dedup_docs", "dedup_meta"):
            self.db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names

    def doc_count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM dedup_docs").fetchone()[0]

    def has_docs(self) -> bool:
        return self.db.execute("SELECT 1 FROM dedup_docs LIMIT 1").fetchone() is not None

    def max_doc(self) -> int:
        """The largest rowid indexed (0 for none)."""
        return self.db.execute("SELECT COALESCE(MAX(doc), 0) FROM dedup_docs").fetchone()[0]

    def alive_docs(self) -> list[int]:
        """Rowids of every indexed document, ascending."""
        return [r[0] for r in self.db.execute("SELECT doc FROM dedup_docs ORDER BY doc")]

    def known_ids(self, ids: Iterable[str]) -> set[str]:
        """The ids among `ids` that are indexed."""
        found: set[str] = set()
        for chunk in sql_chunks(sorted(set(ids))):
            found.update(r[0] for r in self.db.execute(
                f"SELECT id FROM dedup_docs WHERE id IN ({sql_marks(chunk)})", chunk))  # noqa: S608 - marks only
        return found

    def docs_where(self, column: str, values: list, fields: tuple[str, ...] = ("doc", "id", "exact", "sig")
                   ) -> list[tuple]:
        """`fields` of the indexed documents whose `column` is among `values`."""
        if column not in _DOC_FIELDS or not _DOC_FIELDS.issuperset(fields):
            raise ValueError(f"dedup_docs has no column among {column!r}, {fields!r}")
        rows: list[tuple] = []
        for chunk in sql_chunks(values):
            rows += self.db.execute(f"SELECT {', '.join(fields)} FROM dedup_docs "  # noqa: S608 - names checked
                                    f"WHERE {column} IN ({sql_marks(chunk)})", chunk).fetchall()
        return rows

    def insert_docs(self, rows: Iterable[tuple]) -> None:
        """(doc, id, exact, sig, text_len, date, shingles) rows; an id already indexed is skipped."""
        self.db.executemany("INSERT OR IGNORE INTO dedup_docs (doc, id, exact, sig, text_len, date, shingles) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def forget_ids(self, ids: Iterable[str]) -> None:
        for chunk in sql_chunks(sorted(set(ids))):
            self.db.execute(f"DELETE FROM dedup_docs WHERE id IN ({sql_marks(chunk)})", chunk)  # noqa: S608

    def band_runs(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT name FROM dedup_band_runs ORDER BY name")]

    def band_run_width(self, name: str) -> int:
        return int(self.db.execute("SELECT docs FROM dedup_band_runs WHERE name = ?", (name,)).fetchone()[0])

    def replace_band_runs(self, merged: list[str], name: str, docs: int) -> None:
        """Run `name` of `docs` documents replaces the runs it `merged`."""
        self.db.executemany("DELETE FROM dedup_band_runs WHERE name = ?", [(n,) for n in merged])
        self.db.execute("INSERT OR REPLACE INTO dedup_band_runs (name, docs) VALUES (?, ?)", (name, docs))

    # --- pending signatures ---------------------------------------------------------------------------

    def pending_count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM pending").fetchone()[0]

    def pending_of_shard(self, seq: int) -> list[tuple]:
        """(doc_id, input key, text_len, date, exact, sig, shingles) of shard `seq`'s documents, in order."""
        return [(r[0], key_of(r[1]), *r[2:]) for r in self.db.execute(
            "SELECT doc_id, input, text_len, date, exact, sig, shingles FROM pending WHERE seq = ? ORDER BY pos",
            (seq,))]

    def pending_keys(self, chunk: int = 4096) -> Iterator[list[tuple]]:
        """(seq, pos, doc_id, input key, exact) of every pending document, in chunks, in order."""
        rows = self.db.execute("SELECT seq, pos, doc_id, input, exact FROM pending ORDER BY seq, pos")
        while part := rows.fetchmany(chunk):
            yield [(seq, pos, doc_id, key_of(key), exact) for seq, pos, doc_id, key, exact in part]

    def add_pending(self, rows: Iterable[tuple]) -> None:
        """Rows of `pending` (the input key second)."""
        self.db.executemany("INSERT INTO pending VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            ((row[0], sql_key(row[1]), *row[2:]) for row in rows))

    def clear_pending(self) -> None:
        self.db.execute("DELETE FROM pending")

    def staged_shard_runs(self) -> list[tuple[int, int]]:
        """(seq, run that cleaned it) of every staged shard."""
        return self.db.execute("SELECT seq, run_id FROM shards WHERE status = 'staged' ORDER BY seq").fetchall()

    # --- rounds and moves ------------------------------------------------------------------------------

    def committed_rounds(self) -> list[str]:
        """Rounds committed whose files are still to be moved (none in a state from before rounds)."""
        try:
            return [r[0] for r in self.db.execute("SELECT name FROM dedup_rounds ORDER BY name")]
        except sqlite3.OperationalError:
            return []

    def add_round(self, name: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO dedup_rounds (name) VALUES (?)", (name,))

    def forget_round(self, name: str) -> None:
        self.db.execute("DELETE FROM dedup_rounds WHERE name = ?", (name,))

    def moves(self) -> list[tuple]:
        """(move, doc_id, shard, similarity, superseded_by) of the moves still to make, in order."""
        try:
            return self.db.execute(
                "SELECT rowid, doc_id, shard, similarity, superseded_by FROM moves ORDER BY rowid").fetchall()
        except sqlite3.OperationalError:  # a state from before moves existed
            return []

    def add_move(self, doc_id: str, seq: int, similarity: float, by: str) -> None:
        self.db.execute("INSERT INTO moves (doc_id, shard, similarity, superseded_by) VALUES (?, ?, ?, ?)",
                        (doc_id, seq, similarity, by))

    def forget_move(self, move: int) -> None:
        self.db.execute("DELETE FROM moves WHERE rowid = ?", (move,))

    # --- the streams of records -----------------------------------------------------------------------

    def mark_duplicates(self, seq: int, records: Iterable[tuple[str, str]]) -> None:
        """Records (doc_id, input key) of shard `seq` go to `duplicates`; one row each: the same URL twice in
        one input has two rows, the later is the duplicate."""
        self.db.executemany("UPDATE outputs SET stream = 'duplicates' WHERE rowid = (SELECT rowid FROM outputs "
                            "WHERE doc_id = ? AND input = ? AND shard = ? AND stream = 'documents' "
                            "ORDER BY rowid DESC LIMIT 1)", [(d, sql_key(key), seq) for d, key in records])

    def kept_outputs(self, doc_id: str) -> list[tuple[int, int]]:
        """(output row, shard) of the records of `doc_id` in `documents`."""
        return self.db.execute("SELECT rowid, shard FROM outputs WHERE doc_id = ? AND stream = 'documents'",
                               (doc_id,)).fetchall()

    def move_output(self, row: int) -> None:
        """An output row (`kept_outputs`) goes to `duplicates`."""
        self.db.execute("UPDATE outputs SET stream = 'duplicates' WHERE rowid = ?", (row,))

    def shard_outputs(self, seq: int) -> list[tuple[str, str]]:
        """(doc_id, input key) of shard `seq`'s documents and duplicates, in order."""
        return [(d, key_of(k)) for d, k in self.db.execute(
            "SELECT doc_id, input FROM outputs WHERE shard = ? AND stream != 'rejects' ORDER BY rowid", (seq,))]

    def restage(self, seqs: Iterable[int]) -> None:
        """Shards `seqs` staged again, their duplicates back in `documents` (a rebuild decides them anew)."""
        for seq in seqs:
            self.db.execute("UPDATE shards SET status = 'staged' WHERE seq = ?", (seq,))
            self.db.execute("UPDATE outputs SET stream = 'documents' WHERE shard = ? AND stream = 'duplicates'",
                            (seq,))

    # --- `pagewash dedup` of JSONL files --------------------------------------------------------------

    def create_jsonl_schema(self) -> None:
        self.db.executescript(JSONL_SCHEMA)

    def input_progress(self, sha1: str) -> tuple[int, bool] | None:
        """(lines read, complete) of the input with content `sha1`, None if never seen."""
        row = self.db.execute("SELECT lines, complete FROM dedup_inputs WHERE sha1 = ?", (sha1,)).fetchone()
        return (row[0], bool(row[1])) if row else None

    def set_input_progress(self, progress: dict[str, tuple[str, int, bool]]) -> None:
        """sha1 -> (path, lines read, complete)."""
        self.db.executemany("INSERT OR REPLACE INTO dedup_inputs (sha1, path, lines, complete) VALUES (?, ?, ?, ?)",
                            [(sha1, path, lines, int(done)) for sha1, (path, lines, done) in progress.items()])

    def legacy_shards(self) -> list[tuple[int, str]] | None:
        """(seq, status) of an old `dedup` state's `dedup_shards` (None when it has none)."""
        if not self.db.execute("SELECT 1 FROM sqlite_master WHERE name = 'dedup_shards'").fetchone():
            return None
        return self.db.execute("SELECT seq, status FROM dedup_shards ORDER BY seq").fetchall()

    def adopt_legacy_shard(self, seq: int, counts: dict) -> None:
        self.db.execute("INSERT OR IGNORE INTO shards (seq, run_id, status, counts) VALUES (?, 0, 'final', ?)",
                        (seq, json.dumps(counts)))

    def drop_legacy_shards(self) -> None:
        self.db.execute("DROP TABLE dedup_shards")
