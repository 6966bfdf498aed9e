"""How the state names inputs (keys, roots, content hashes) and the helpers of its `IN (...)` lists."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

HASH_LIMIT = 64 * 1024 * 1024  # larger inputs (archives, exports) are known by size and mtime alone


SQL_CHUNK = 900  # bound parameters per statement (SQLite before 3.32 allows 999)


def sql_chunks(values: list, size: int = SQL_CHUNK) -> Iterator[list]:
    """`values` in slices small enough for one `IN (...)` list."""
    for start in range(0, len(values), size):
        yield values[start:start + size]


def sql_marks(values: list) -> str:
    """The `?, ?, …` of an `IN (...)` list for `values`."""
    return ",".join("?" * len(values))


def sql_key(key: str) -> str | bytes:
    """An input key (or root) as SQLite stores it: text, or, for a file name that is not valid UTF-8 (which
    Python gives with lone surrogates, `os.fsdecode`), its bytes as a BLOB. SQLite text must be UTF-8; a
    BLOB never equals a text value, so the two kinds cannot collide, and valid names stay as they were."""
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(key)
    return key


def key_of(value: str | bytes) -> str:
    """The input key `sql_key` stored."""
    return os.fsdecode(value) if isinstance(value, bytes) else value


def root_id(root: Path) -> str:
    """What names an input root in the state: its real path (a URL as given), so that two spellings of one
    folder are one root."""
    return str(root.resolve()) if isinstance(root, Path) else str(root).rstrip("/")


def file_sha1(path: Path) -> str:
    """The content hash that tells a changed input from a touched one; a huge file is not read twice for
    it, its size and mtime stand in (as rsync judges by default)."""
    st = path.stat()
    if st.st_size > HASH_LIMIT and st.st_mtime_ns:  # an object store that gives no mtime: hash it whole
        return f"size={st.st_size},mtime_ns={st.st_mtime_ns}"
    return content_sha1(path)


def content_sha1(path: Path) -> str:
    """sha1 of a file's bytes, read in blocks."""
    digest = hashlib.sha1()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


