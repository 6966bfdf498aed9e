"""Finding and reading inputs under `raw/`: dumps, HTML, JSON-lines exports, WARC archives.

`raw/` is a local folder or file, or any fsspec URL (`s3://bucket/raw`, `gs://…`, `memory://…`), read
through universal_pathlib's pathlib API over fsspec; the URL's backend (s3fs, gcsfs, …) is the user's to
install. Everything here goes through that API (`open`, `stat`, `rglob`), never through the OS directly.

Every input file yields pages lazily (a JSONL or WARC file is streamed, never read whole). A page that
cannot be read still comes out, carrying `meta["reject"] = (reason, detail)`, so the runner records it
and the rest of the file goes on.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .config import ConfigError
from .document import RawPage
from .store import is_url, local_path

PAGE_SUFFIXES = (".txt", ".txt.gz", ".html", ".htm", ".html.gz", ".htm.gz")
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz")
WARC_SUFFIXES = (".warc", ".warc.gz")
SIDECAR_SUFFIX = ".meta.json"
SIDECAR_KEYS = ("url", "fetched_at", "site")
_BLOCK = 1 << 20  # streams are read this much at a time
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _kind(path: Path) -> str | None:
    return _kind_of_name(path.name)


def _kind_of_name(name: str) -> str | None:
    name = name.lower()
    if name.startswith(".") or name.endswith(SIDECAR_SUFFIX):
        return None
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(WARC_SUFFIXES):
        return "warc"
    if name.endswith(PAGE_SUFFIXES):
        return "page"
    return None


def is_input(path: Path) -> bool:
    return _kind(path) is not None


def input_root(raw: str) -> Path:
    """The input root a user named: a local path as a `Path`, a URL (`s3://…`) as a universal_pathlib path
    over fsspec, with the same API; `file://` URLs are local paths."""
    if not is_url(raw):
        return local_path(raw)
    from upath import UPath

    try:
        root = UPath(raw)
        root.exists()  # the backend is loaded (and its credentials read) now, not mid-run
    except (ImportError, ValueError) as exc:  # e.g. s3:// without s3fs installed
        raise ConfigError(f"{raw}: cannot open this URL: {exc}") from exc
    return root


def discover(root: Path) -> Iterator[Path]:
    """Input files under `root` (or `root` itself), in a stable order (that of sorted paths)."""
    for path, _key in walk_inputs(root):
        yield path


def walk_inputs(root: Path) -> Iterator[tuple[Path, str]]:
    """Each input file under `root` (or `root` itself) with its key (`input_key`), in the order of sorted
    paths, so runs are reproducible. A local tree is walked folder by folder, holding the names of one
    folder at a time, not a list of every input, and judged by name and directory entry (no stat per
    file: a rerun over a large tree is bound by these calls); an fsspec URL is listed through its
    filesystem."""
    if root.is_file():
        yield root, root.name
        return
    if not isinstance(root, Path):  # a universal_pathlib path over fsspec
        for path in sorted(root.rglob("*")):
            if path.is_file() and is_input(path):
                yield path, path.relative_to(root).as_posix()
        return
    yield from _walk(root, "")


def _walk(folder: Path, prefix: str) -> Iterator[tuple[Path, str]]:
    # One folder's input and folder names (as plain strings: ~70 bytes each), sorted; is_dir/is_file come
    # from the directory entry, so only a symbolic link costs a stat.
    subfolders: set[str] = set()
    names: list[str] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                subfolders.add(entry.name)
                names.append(entry.name)
            elif _kind_of_name(entry.name) is not None and entry.is_file():
                names.append(entry.name)
    names.sort()
    for name in names:
        if name in subfolders:
            yield from _walk(folder / name, f"{prefix}{name}/")
        else:
            yield folder / name, prefix + name


def input_key(path: Path, root: Path) -> str:
    """An input's path relative to the input root (its name when the root is the file itself)."""
    return path.name if root.is_file() else path.relative_to(root).as_posix()


def _rejected(path: Path, rel: str, reason: str, detail: str, meta: dict | None = None) -> RawPage:
    return RawPage(str(path), rel, b"", {**(meta or {}), "reject": (reason, detail)})


def sidecar(path: Path) -> dict:
    """`NAME.meta.json` beside a file (NAME with or without its extensions): url, fetched_at, site."""
    name = path.name
    stems = [name, name.split(".", 1)[0]]
    for stem in stems:
        candidate = path.with_name(stem + SIDECAR_SUFFIX)
        if candidate.is_file():
            try:
                data = json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                return {}
            if not isinstance(data, dict):
                return {}
            meta = {k: data[k] for k in SIDECAR_KEYS if isinstance(data.get(k), str)}
            if "site" in meta:
                meta["sitename"] = meta.pop("site")
            return meta
    return {}


def read_inputs(path: Path, root: Path, max_bytes: int) -> Iterator[RawPage]:
    """The pages of one input file."""
    rel = input_key(path, root)
    kind = _kind(path) or "page"
    try:
        if kind == "jsonl":
            yield from _read_jsonl(path, rel, max_bytes)
        elif kind == "warc":
            yield from _read_warc(path, rel, max_bytes)
        else:
            yield _read_page(path, rel, max_bytes)
    except OSError as exc:  # vanished or unreadable mid-way: what was read stands, the rest is a reject
        yield _rejected(path, rel, "unreadable", str(exc.strerror or exc))


def _read_page(path: Path, rel: str, max_bytes: int) -> RawPage:
    meta = sidecar(path)
    size = path.stat().st_size
    # gzip can hold far more than it weighs; decode_page bounds the decompressed size
    if size > max_bytes:
        return _rejected(path, rel, "too_large", f"{size} bytes > max_input_bytes {max_bytes}", meta)
    return RawPage(source_path=str(path), rel_path=rel, data=path.read_bytes(), meta=meta)


@contextmanager
def _open_stream(path: Path) -> Iterator:
    """The file's bytes, gunzipped when its name ends in .gz."""
    with path.open("rb") as stream:
        if path.name.lower().endswith(".gz"):
            with gzip.GzipFile(fileobj=stream, mode="rb") as unzipped:
                yield unzipped
        else:
            yield stream


def _bounded_lines(stream, limit: int, block_size: int = _BLOCK) -> Iterator[bytes | None]:
    """The stream's lines (without the newline), read in blocks; a line longer than `limit` bytes comes out
    as None, skipped to its end block by block, never held whole (a 1 GB line of a 1 MB .jsonl.gz)."""
    line = bytearray()
    too_long = False
    while block := stream.read(block_size):
        start = 0
        while (end := block.find(b"\n", start)) >= 0:
            if not too_long:
                line += block[start:end]
            yield None if too_long or len(line) > limit else bytes(line)
            line.clear()
            too_long, start = False, end + 1
        if not too_long:
            line += block[start:]
            if len(line) > limit:
                too_long = True
                line.clear()
    if too_long or line:
        yield None if too_long else bytes(line)


def _read_jsonl(path: Path, rel: str, max_bytes: int) -> Iterator[RawPage]:
    """One page a line: {"html" or "text", optional "url", "fetched_at"}; a bad line is a reject, and so is
    a line longer than `max_bytes` (`too_large`)."""
    source = f"{path}"
    with _open_stream(path) as stream:
        lines = _bounded_lines(stream, max_bytes)
        line_no = 0
        while True:
            try:
                raw = next(lines, b"\n")  # a line never holds its newline: b"\n" is the end
            except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                yield _rejected(path, f"{rel}#L{line_no + 1}", "bad_gzip", f"{source}:{line_no + 1}: {exc}")
                return
            if raw == b"\n":
                return
            line_no += 1
            where = f"{rel}#L{line_no}"
            if raw is None:
                yield _rejected(path, where, "too_large",
                                f"{source}:{line_no}: line longer than max_input_bytes {max_bytes}")
                continue
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                yield _rejected(path, where, "bad_jsonl", f"{source}:{line_no}: not JSON: {exc}")
                continue
            if not isinstance(record, dict):
                yield _rejected(path, where, "bad_jsonl", f"{source}:{line_no}: not a JSON object")
                continue
            kind = "html" if record.get("html") is not None else "text"
            if kind == "html" and isinstance(record["html"], str) and not record["html"].strip() \
                    and record.get("text") is not None:
                kind = "text"  # an empty `html` beside a `text`: the page is the text
            body = record.get(kind)
            if not isinstance(body, str):
                yield _rejected(path, where, "bad_jsonl", f"{source}:{line_no}: needs a string `html` or `text`")
                continue
            meta = {"kind": kind, "line": line_no}
            for key in ("url", "fetched_at"):
                if isinstance(record.get(key), str):
                    meta[key] = record[key]
            try:
                data = body.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate (`"\\ud800"` is valid JSON) is no character
                data = _LONE_SURROGATE.sub("\ufffd", body).encode("utf-8")
            yield RawPage(source_path=f"{source}:{line_no}", rel_path=where, data=data, meta=meta)


def _read_warc(path: Path, rel: str, max_bytes: int) -> Iterator[RawPage]:
    """HTTP response records with an HTML payload, streamed with warcio."""
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    with path.open("rb") as stream:
        records = ArchiveIterator(stream)
        while True:
            try:
                record = next(records)
            except StopIteration:
                return
            except (ArchiveLoadFailed, zlib.error, EOFError, ValueError) as exc:
                yield _rejected(path, f"{rel}#end", "bad_warc", f"{path}: {exc}")
                return
            if record.rec_type != "response":
                continue
            content_type = (record.http_headers.get_header("Content-Type") or "") if record.http_headers else ""
            if content_type and "html" not in content_type.lower():
                continue
            url = record.rec_headers.get_header("WARC-Target-URI")
            meta = {"kind": "html", "url": url, "fetched_at": record.rec_headers.get_header("WARC-Date")}
            try:
                data = record.content_stream().read(max_bytes + 1)
                error = None
            except (zlib.error, EOFError, ValueError) as exc:
                data, error = b"", exc
            # the offset is known only once the record has been read (warcio reads to its end for it)
            offset = records.get_record_offset()
            where = f"{rel}#{offset}"
            if error is not None:
                yield _rejected(path, where, "bad_warc", f"{path}@{offset}: {error}", meta)
                continue
            if len(data) > max_bytes:
                yield _rejected(path, where, "too_large", f"{path}@{offset}: payload > {max_bytes} bytes", meta)
                continue
            yield RawPage(source_path=f"{path}@{offset}", rel_path=where, data=data, meta=meta)
