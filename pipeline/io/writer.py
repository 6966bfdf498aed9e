"""Sinks: JSON-lines shards written atomically (temp file, fsync, rename) and the run report."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from .formats import format_of, logical

_SURROGATE = re.compile("[\ud800-\udfff]")


def to_json(value, indent: int | None = None) -> str:
    """JSON text that is valid UTF-8 whatever `value` holds: non-ASCII as itself, but a lone surrogate (a
    file name that is not UTF-8, as Python gives it: `os.fsdecode`) as a `\\udcXX` escape, which
    `json.loads` turns back into the same string."""
    text = json.dumps(value, ensure_ascii=False, indent=indent, separators=None if indent else (",", ":"))
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def utf8(text: str) -> str:
    """`text` fit for a UTF-8 file (an HTML page): a lone surrogate (a file name that is not UTF-8) as its
    `\\udcXX` escape, as `to_json` writes it."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def dump_record(record: dict) -> str:
    return to_json(record)


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write a whole file (text as UTF-8, or bytes) so that readers see the old one or the new one, never
    half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)  # the rename itself must survive a power loss, not only the data


class ShardSet:
    """One numbered shard across the output streams: `STREAM/part-NNNNNN.jsonl`, published together.

    Records go to hidden local temp files; `publish` fsyncs them and hands each to its stream's store
    (`pipeline.io.store`: a rename, or an upload), so that a reader or a killed run never sees half a shard;
    a stream that got no record gets no file. `store` holds every stream but those `routes` sends elsewhere.
    """

    def __init__(self, store, seq: int, routes: dict | None = None) -> None:
        self.store = store
        self.routes = routes or {}
        self.seq = seq
        self.counts: dict[str, int] = {}
        self._handles: dict[str, object] = {}

    def _store(self, stream: str):
        return self.routes.get(stream, self.store)

    def _tmp_path(self, stream: str) -> Path:
        return self._store(stream).temp_path(stream, shard_name(self.seq))

    def write(self, stream: str, record: dict) -> None:
        self.write_line(stream, dump_record(record) + "\n")

    def write_line(self, stream: str, line: str) -> None:
        """One record already written as a JSON line (`dump_record`'s, ending in a newline)."""
        handle = self._handles.get(stream)
        if handle is None:
            self._tmp_path(stream).parent.mkdir(parents=True, exist_ok=True)
            handle = self._handles[stream] = open(self._tmp_path(stream), "w", encoding="utf-8")
        handle.write(line)
        self.counts[stream] = self.counts.get(stream, 0) + 1

    def publish(self) -> None:
        for handle in self._handles.values():
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
        for stream in self._handles:
            self._store(stream).publish(stream, shard_name(self.seq), self._tmp_path(stream))
        self._handles.clear()

    def abort(self) -> None:
        for stream, handle in self._handles.items():
            handle.close()
            self._tmp_path(stream).unlink(missing_ok=True)
        self._handles.clear()


def shard_name(seq: int) -> str:
    return f"part-{seq:06d}.jsonl"


def shard_seq(path: Path) -> int | None:
    """The number of a shard file (in any format: `part-000042.jsonl.gz`), None for anything else."""
    name = logical(path.name)
    if format_of(name) == "jsonl":
        return int(name[5:-6])
    return None


def fsync_dir(folder: Path) -> None:
    """Make a rename durable: the directory entry must reach the disk too."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
