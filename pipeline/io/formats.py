"""Shard file formats: JSON lines, plain or compressed (gzip, zstd), and Parquet with the record schema.

Inside a run every shard is JSON lines (staged files, a dedup round's files, rewrites); a store converts it to
the output's format when it publishes it and reads any format back as JSON lines (`Store.lines`). Shards are
named by number (`part-000042`) plus the format's suffix, so a shard's name without its suffix (its
*logical* name, `part-000042.jsonl`) is the same in every format. Output bytes are reproducible: gzip
members carry no time stamp or file name, zstd frames no checksum of time, Parquet no creation time.
"""

from __future__ import annotations

import gzip
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType
from typing import BinaryIO

from ..config import OUTPUT_FORMATS
from ..schema import METADATA_KEYS, arrow_schema

FORMATS = OUTPUT_FORMATS  # the default first (datatrove's and dolma's)
SUFFIXES = MappingProxyType({"jsonl": ".jsonl", "jsonl.gz": ".jsonl.gz", "jsonl.zst": ".jsonl.zst",
                             "parquet": ".parquet"})
_BY_SUFFIX = tuple(sorted(((suffix, fmt) for fmt, suffix in SUFFIXES.items()), key=lambda p: -len(p[0])))
LOGICAL = ".jsonl"  # the suffix of a shard's logical name
_GZIP_LEVEL = 6  # zlib's default: ~4x smaller than the text for articles, ~6x faster than level 9
_ZSTD_LEVEL = 3  # zstd's default
_PARQUET_ROWS = 1000  # rows per Parquet row group (a shard is 2,000 pages by default)


def format_of(name: str) -> str | None:
    """The format of a shard file name (`part-000001.jsonl.gz` → `jsonl.gz`), None for anything else."""
    if not name.startswith("part-"):
        return None
    for suffix, fmt in _BY_SUFFIX:
        if name.endswith(suffix) and name[5:-len(suffix)].isdigit():
            return fmt
    return None


def logical(name: str) -> str:
    """A shard file's logical name (`part-000001.jsonl`); other names as they are."""
    fmt = format_of(name)
    return name[:-len(SUFFIXES[fmt])] + LOGICAL if fmt else name


def physical(name: str, fmt: str) -> str:
    """The file name of logical shard `name` in `fmt`; other names as they are."""
    return name[:-len(LOGICAL)] + SUFFIXES[fmt] if format_of(name) == "jsonl" else name


def variants(name: str) -> list[str]:
    """Every file name logical shard `name` may have (an output whose format changed with --full)."""
    return [physical(name, fmt) for fmt in FORMATS] if format_of(name) == "jsonl" else [name]


def encode(source: Path, dest: Path, fmt: str) -> None:
    """Write the JSON-lines file `source` to `dest` in `fmt`, fsynced (`dest` may be `source` for jsonl)."""
    if fmt == "jsonl":
        if dest != source:
            os.replace(source, dest)
        return
    with open(dest, "wb") as out:
        if fmt == "jsonl.gz":
            with open(source, "rb") as handle, gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0,
                                                             compresslevel=_GZIP_LEVEL) as packed:
                while block := handle.read(1 << 20):
                    packed.write(block)
        elif fmt == "jsonl.zst":
            import zstandard

            with open(source, "rb") as handle:
                zstandard.ZstdCompressor(level=_ZSTD_LEVEL).copy_stream(handle, out)
        elif fmt == "parquet":
            _write_parquet(source, out)
        else:
            raise ValueError(f"unknown shard format {fmt!r}")
        out.flush()
        os.fsync(out.fileno())


def _write_parquet(source: Path, out: BinaryIO) -> None:
    """Records of a run's stream as Parquet with the one record schema (pipeline/schema.py): every shard of
    every stream has the same columns and types; metadata keys outside the schema are kept as JSON text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = []
    extra: set[str] = set()
    with open(source, encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            meta = record.get("metadata") or {}
            for key in [k for k in meta if k not in METADATA_KEYS]:
                value = meta[key]
                meta[key] = value if value is None or isinstance(value, str) else json.dumps(value, sort_keys=True)
                extra.add(key)
            records.append(record)
    schema = arrow_schema(tuple(sorted(extra)))
    table = pa.Table.from_pylist(records, schema=schema)
    pq.write_table(table, out, row_group_size=_PARQUET_ROWS, compression="zstd", write_statistics=True)


def decode(handle: BinaryIO, fmt: str) -> Iterator[str]:
    """The JSON lines of a shard file opened for binary reading, each ending in a newline."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(handle).iter_batches():
            for record in batch.to_pylist():  # Arrow strings are UTF-8: no lone surrogate to escape
                yield json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        return
    for line in io.TextIOWrapper(unpacked(handle, SUFFIXES[fmt]), encoding="utf-8", newline="\n"):
        yield line if line.endswith("\n") else line + "\n"


def unpacked(handle: BinaryIO, name: str) -> BinaryIO:
    """The bytes of a stream compressed as its (file) name says, `.gz` or `.zst`; else the stream itself. The
    one place that opens compressed JSON lines: output shards and scraper exports alike."""
    name = name.lower()
    if name.endswith(".gz"):
        return gzip.GzipFile(fileobj=handle, mode="rb")
    if name.endswith(".zst"):
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(handle)
    return handle
