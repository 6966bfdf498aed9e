"""Scraper exports: one page a line of JSON lines (plain, gzip, zstd), or a row of Parquet, with the field
names of `[input]` (`--text-key`, …); lines are read in blocks and bounded, never held whole."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path

from ..config import InputConfig
from ..document import RawPage
from .formats import unpacked

_BLOCK = 1 << 20  # streams are read this much at a time
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _bounded_lines(stream, limit: int, block_size: int = _BLOCK) -> Iterator[bytes | None]:
    """The stream's lines (without the newline), read in blocks; a line longer than `limit` bytes comes out
    as None, skipped to its end block by block, never held whole (a 1 GB line of a 1 MB .jsonl.gz)."""
    line = bytearray()
    too_long = False
    read = getattr(stream, "read1", stream.read)  # what a cut gzip stream held before its damage comes out
    while block := read(block_size):
        start = 0
        while (end := block.find(b"\n", start)) >= 0:
            if not too_long:
                line += block[start:end]
            yield None if too_long or _longer(line, limit) else bytes(line)
            line.clear()
            too_long, start = False, end + 1
        if not too_long:
            line += block[start:]
            if len(line) > limit + 1:  # + 1: the line may yet end in \r\n
                too_long = True
                line.clear()
    if too_long or line:
        yield None if too_long or _longer(line, limit) else bytes(line)


def _longer(line: bytearray, limit: int) -> bool:
    """Longer than `limit` bytes, not counting the \r of a CRLF line end."""
    return len(line) - line.endswith(b"\r") > limit


def read_jsonl(path: Path, rel: str, max_bytes: int, keys: InputConfig) -> Iterator[RawPage]:
    """One page a line (`_page_of`); a bad line is a reject, and so is a line longer than `max_bytes`
    (`too_large`)."""
    source = f"{path}"
    with path.open("rb") as handle:
        lines = _bounded_lines(unpacked(handle, path.name), max_bytes)
        line_no = 0
        while True:
            try:
                raw = next(lines, b"\n")  # a line never holds its newline: b"\n" is the end
            except Exception as exc:  # noqa: BLE001 - gzip's, zlib's and zstandard's errors for a damaged stream
                if isinstance(exc, OSError) and not isinstance(exc, gzip.BadGzipFile) and exc.errno is not None:
                    raise  # the file, not its content: read_inputs makes it `unreadable`
                yield RawPage.unreadable(str(path), f"{rel}#L{line_no + 1}", "bad_gzip",
                                         f"{source}:{line_no + 1}: {exc}")
                return
            if raw == b"\n":
                return
            line_no += 1
            where = f"{rel}#L{line_no}"
            if raw is None:
                yield RawPage.unreadable(str(path), where, "too_large",
                                         f"{source}:{line_no}: line longer than max_input_bytes {max_bytes}")
                continue
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                yield RawPage.unreadable(str(path), where, "bad_jsonl", f"{source}:{line_no}: not JSON: {exc}")
                continue
            yield _page_of(record, path, where, f"{source}:{line_no}", line_no, keys)


def read_parquet(path: Path, rel: str, max_bytes: int, keys: InputConfig) -> Iterator[RawPage]:
    """One page a row of a Parquet export, read in batches (`_page_of`, the fields named as for JSON lines)."""
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow's errors for a file that is not Parquet
        if isinstance(exc, OSError) and exc.errno is not None:
            raise
        yield RawPage.unreadable(str(path), rel, "bad_jsonl", f"{path}: not a Parquet file: {exc}")
        return
    wanted = {keys.text_key, keys.html_key, keys.url_key, keys.id_key, keys.fetched_key, *keys.keep_fields}
    columns = [name for name in table.schema_arrow.names if name in wanted]
    row = 0
    for batch in table.iter_batches(batch_size=256, columns=columns):
        for record in batch.to_pylist():
            row += 1
            where = f"{rel}#R{row}"
            body = record.get(keys.html_key) or record.get(keys.text_key)
            if isinstance(body, str) and len(body.encode("utf-8", "surrogatepass")) > max_bytes:
                yield RawPage.unreadable(str(path), where, "too_large",
                                         f"{path}:{row}: page longer than max_input_bytes {max_bytes}")
                continue
            yield _page_of(record, path, where, f"{path}:{row}", row, keys)


def _page_of(record: object, path: Path, where: str, source: str, line_no: int, keys: InputConfig) -> RawPage:
    """The page of one export record: `html` (when a non-empty string) or `text`, with `url`, `fetched_at`,
    the export's own `id` and the `keep_fields` (field names as `keys` says); a record without a page is a
    `bad_jsonl` reject."""
    if not isinstance(record, dict):
        return RawPage.unreadable(str(path), where, "bad_jsonl", f"{source}: not a JSON object")
    html, text = record.get(keys.html_key), record.get(keys.text_key)
    kind = "html" if html is not None else "text"
    if kind == "html" and isinstance(html, str) and not html.strip() and text is not None:
        kind = "text"  # an empty `html` beside a `text`: the page is the text
    body = html if kind == "html" else text
    if not isinstance(body, str):
        return RawPage.unreadable(str(path), where, "bad_jsonl",
                                  f"{source}: needs a string `{keys.html_key}` or `{keys.text_key}`")
    meta: dict = {"kind": kind, "line": line_no}
    for key, field_name in (("url", keys.url_key), ("fetched_at", keys.fetched_key), ("id", keys.id_key)):
        if field_name and isinstance(record.get(field_name), str) and record[field_name]:
            meta[key] = record[field_name]
    kept = {name: record[name] for name in keys.keep_fields if name in record}
    if kept:
        meta["fields"] = kept
    try:
        data = body.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (`"\\ud800"` is valid JSON) is no character
        data = _LONE_SURROGATE.sub("\ufffd", body).encode("utf-8")
    return RawPage(source_path=source, rel_path=where, data=data, meta=meta)
