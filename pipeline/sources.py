"""Finding and reading inputs under `raw/`: dumps, HTML, JSON-lines exports, WARC archives.

`raw/` is a local folder or file, or any fsspec URL (`s3://bucket/raw`, `gs://…`, `memory://…`), read
through universal_pathlib's pathlib API over fsspec; the URL's backend (s3fs, gcsfs, …) is the user's to
install. Everything here goes through that API (`open`, `stat`, `rglob`), never through the OS directly.

Every input file yields pages lazily (a JSONL or WARC file is streamed, never read whole). A page that
cannot be read still comes out, carrying `meta["reject"] = (reason, detail)`, so the runner records it
and the rest of the file goes on.
"""

from __future__ import annotations

import errno
import gzip
import json
import logging
import os
import stat
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .config import ConfigError
from .document import RawPage
from .store import is_url, local_path

PAGE_SUFFIXES = (".txt", ".txt.gz", ".html", ".htm", ".html.gz", ".htm.gz")
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz")
WARC_SUFFIXES = (".warc", ".warc.gz")
SIDECAR_SUFFIX = ".meta.json"
SIDECAR_KEYS = ("url", "fetched_at", "site")

log = logging.getLogger("pagewash")


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
    for found in walk_inputs(root):
        if found.error is None:
            yield found.path


@dataclass(frozen=True, slots=True)
class Found:
    """What the walk found: an input file (`error` None), or an entry it could not read (`error`: the OS
    error) — a file that looks like an input (a dangling or looping symbolic link, say), or a folder, whose
    key ends in `/` (the root's is `./`) and whose inputs the walk could not see."""

    path: Path
    key: str
    error: str | None = None

    @property
    def folder(self) -> bool:
        return self.key.endswith("/")


def walk_inputs(root: Path, exclude: Iterable[Path] = ()) -> Iterator[Found]:
    """Each input file under `root` (or `root` itself) with its key (`input_key`), in the order of sorted
    paths, so runs are reproducible. A local tree is walked folder by folder, holding the names of one
    folder at a time, not a list of every input, and judged by name and directory entry (no stat per
    file: a rerun over a large tree is bound by these calls); an fsspec URL is listed through its
    filesystem.

    Symbolic links to files are followed, links to folders are not (no loops, no input seen twice). The
    folders `exclude` names (a run's own output streams and state) are skipped however they are spelled:
    they are compared by device and inode. An entry that cannot be read comes out with its error; one
    that is not a file (a FIFO, socket or device, which would block or make no sense to read) is skipped
    with a warning.
    """
    if root.is_file():
        yield Found(root, root.name)
        return
    if not isinstance(root, Path):  # a universal_pathlib path over fsspec
        for path in sorted(root.rglob("*")):
            if path.is_file() and is_input(path):
                yield Found(path, path.relative_to(root).as_posix())
        return
    if not root.is_dir():
        log.warning("%s: not a file or folder (a FIFO, socket or device?): not read", root)
        return
    skip = set()
    for folder in exclude:
        try:
            st = os.stat(folder)
        except OSError:  # not made yet: nothing of it to skip
            continue
        skip.add((st.st_dev, st.st_ino))
    st = root.stat()
    if (st.st_dev, st.st_ino) in skip:
        log.warning("%s is a folder this run writes: not read", root)
        return
    yield from _walk(root, "", skip)


def _walk(folder: Path, prefix: str, skip: set[tuple[int, int]]) -> Iterator[Found]:
    # One folder's input and folder names (as plain strings: ~70 bytes each), sorted; is_dir/is_file come
    # from the directory entry, so only a symbolic link (or an odd entry) costs a stat.
    subfolders: set[str] = set()
    names: list[str] = []
    bad: dict[str, str] = {}  # name -> why it cannot be read
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                try:
                    kind = _entry_kind(entry, skip)
                except OSError as exc:  # a looping or dangling link, a lookup denied, an entry gone
                    if _kind_of_name(entry.name) is None:
                        continue
                    kind, bad[entry.name] = _INPUT, _os_error(exc)
                if kind == _FOLDER:
                    subfolders.add(entry.name)
                if kind is not None:
                    names.append(entry.name)
    except OSError as exc:  # unreadable (permissions, I/O): reported, and what it holds is not known gone
        yield Found(folder, prefix or "./", _os_error(exc))
        return
    names.sort()
    for name in names:
        if name in subfolders:
            yield from _walk(folder / name, f"{prefix}{name}/", skip)
        else:
            yield Found(folder / name, prefix + name, bad.get(name))


_FOLDER, _INPUT = "folder", "input"


def _entry_kind(entry: os.DirEntry, skip: set[tuple[int, int]]) -> str | None:
    """`_FOLDER` (to walk), `_INPUT`, or None (not an input); raises OSError for an entry it cannot judge."""
    if entry.is_dir(follow_symlinks=False):
        if any(entry.inode() == ino for _dev, ino in skip) and (
                (st := entry.stat(follow_symlinks=False)).st_dev, st.st_ino) in skip:
            log.info("%s: a folder this run writes: not read", entry.path)
            return None
        return _FOLDER
    if _kind_of_name(entry.name) is None:
        return None
    if entry.is_file():  # follows a symbolic link (a stat): a loop raises ELOOP; a dangling link is False
        return _INPUT
    if stat.S_ISDIR(entry.stat().st_mode):  # a dangling link raises ENOENT here
        log.info("%s: a symbolic link to a folder: not followed", entry.path)
    else:
        log.warning("%s: not a regular file (a FIFO, socket or device): skipped", entry.path)
    return None


def _os_error(exc: OSError) -> str:
    """An OS error in words, with its errno name: `Too many levels of symbolic links (ELOOP)`."""
    name = errno.errorcode.get(exc.errno or 0)
    return f"{exc.strerror or exc} ({name})" if name else str(exc.strerror or exc)


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
            yield from _read_jsonl(path, rel)
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


def _read_jsonl(path: Path, rel: str) -> Iterator[RawPage]:
    """One page a line: {"html" or "text", optional "url", "fetched_at"}; a bad line is a reject."""
    source = f"{path}"
    with _open_stream(path) as stream:
        line_no = 0
        while True:
            try:
                raw = stream.readline()
            except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                yield _rejected(path, f"{rel}#L{line_no + 1}", "bad_gzip", f"{source}:{line_no + 1}: {exc}")
                return
            if not raw:
                return
            line_no += 1
            where = f"{rel}#L{line_no}"
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
            body = record.get(kind)
            if not isinstance(body, str):
                yield _rejected(path, where, "bad_jsonl", f"{source}:{line_no}: needs a string `html` or `text`")
                continue
            meta = {"kind": kind, "line": line_no}
            for key in ("url", "fetched_at"):
                if isinstance(record.get(key), str):
                    meta[key] = record[key]
            yield RawPage(source_path=f"{source}:{line_no}", rel_path=where, data=body.encode("utf-8"), meta=meta)


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
