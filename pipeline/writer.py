"""Sinks: JSON-lines shards written atomically (temp file, fsync, rename) and the run report."""

from __future__ import annotations

import json
import os
from pathlib import Path

SHARD_RECORDS = 10_000


def dump_record(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def write_atomic(path: Path, data: str) -> None:
    """Write a whole file so that readers see the old one or the new one, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class ShardWriter:
    """Records into `folder/part-NNNNN.jsonl`; shards appear only when complete (on `close`).

    On close, shards of an earlier run that this run did not write again are removed, so the folder
    holds exactly this run's output.
    """

    def __init__(self, folder: Path, per_shard: int = SHARD_RECORDS) -> None:
        self.folder = folder
        self.per_shard = per_shard
        self.count = 0
        self._handle = None
        self._pending: list[tuple[Path, Path]] = []
        folder.mkdir(parents=True, exist_ok=True)

    def _open(self) -> None:
        final = self.folder / f"part-{len(self._pending):05d}.jsonl"
        tmp = self.folder / f".{final.name}.tmp"
        self._handle = open(tmp, "w", encoding="utf-8")
        self._pending.append((tmp, final))

    def write(self, record: dict) -> None:
        if self._handle is None or (self.count and self.count % self.per_shard == 0):
            self._finish_handle()
            self._open()
        self._handle.write(dump_record(record) + "\n")
        self.count += 1

    def _finish_handle(self) -> None:
        if self._handle is not None:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None

    def close(self) -> list[Path]:
        self._finish_handle()
        finals = []
        for tmp, final in self._pending:
            os.replace(tmp, final)
            finals.append(final)
        keep = {f.name for f in finals}
        for old in self.folder.glob("part-*.jsonl"):
            if old.name not in keep:
                old.unlink()
        return finals

    def abort(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        for tmp, _ in self._pending:
            tmp.unlink(missing_ok=True)
