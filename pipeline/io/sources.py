"""Finding and reading inputs under `raw/`: dumps, HTML, JSON-lines exports, WARC archives.

`raw/` is a local folder or file, or any fsspec URL (`s3://bucket/raw`, `gs://…`, `memory://…`), read
through universal_pathlib's pathlib API over fsspec; the URL's backend (s3fs, gcsfs, …) is the user's to
install. Everything here goes through that API (`open`, `stat`, `rglob`), never through the OS directly.

Every input file yields pages lazily (a JSONL or WARC file is streamed, never read whole). A page that
cannot be read still comes out, carrying its reject (`RawPage.reject`), so the runner records it
and the rest of the file goes on.
"""

from __future__ import annotations

import errno
import gzip
import json
import logging
import os
import re
import stat
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..config import ConfigError
from ..document import RawPage
from ..layout import LOCK_FILE, STATE_DB, STATE_DIR
from .store import MARKER, is_url, local_path
from .warc import read_warc

PAGE_SUFFIXES = (".txt", ".txt.gz", ".html", ".htm", ".html.gz", ".htm.gz")
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz")
WARC_SUFFIXES = (".warc", ".warc.gz")
SIDECAR_SUFFIX = ".meta.json"
SIDECAR_KEYS = ("url", "fetched_at", "site")
log = logging.getLogger("pagewash")
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
# what marks a folder as pagewash's own: a run's output, a `dedup` output (its state), a state folder
_OWN_MARKS = (MARKER, os.path.join(STATE_DIR, LOCK_FILE), STATE_DB)


def _pagewash_folder(path: str) -> bool:
    """A folder another pagewash run wrote (an output nested in RAW beside this run's): its shards are
    records, never pages to clean again."""
    return any(os.path.exists(os.path.join(path, mark)) for mark in _OWN_MARKS)


def _entry_kind(entry: os.DirEntry, skip: set[tuple[int, int]]) -> str | None:
    """`_FOLDER` (to walk), `_INPUT`, or None (not an input); raises OSError for an entry it cannot judge."""
    if entry.is_dir(follow_symlinks=False):
        if any(entry.inode() == ino for _dev, ino in skip) and (
                (st := entry.stat(follow_symlinks=False)).st_dev, st.st_ino) in skip:
            log.info("%s: a folder this run writes: not read", entry.path)
            return None
        if _pagewash_folder(entry.path):
            log.info("%s: the output or state of another pagewash run: not read", entry.path)
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


def read_inputs(path: Path, root: Path, max_bytes: int, skipped: Counter | None = None) -> Iterator[RawPage]:
    """The pages of one input file; archive records that are not pages are counted in `skipped` by why."""
    rel = input_key(path, root)
    kind = _kind(path) or "page"
    try:
        if kind == "jsonl":
            yield from _read_jsonl(path, rel, max_bytes)
        elif kind == "warc":
            yield from read_warc(path, rel, max_bytes, skipped)
        else:
            yield _read_page(path, rel, max_bytes)
    except OSError as exc:  # vanished or unreadable mid-way: what was read stands, the rest is a reject
        yield RawPage.unreadable(str(path), rel, "unreadable", str(exc.strerror or exc))


def _read_page(path: Path, rel: str, max_bytes: int) -> RawPage:
    meta = sidecar(path)
    size = path.stat().st_size
    # gzip can hold far more than it weighs; decode_page bounds the decompressed size
    if size > max_bytes:
        return RawPage.unreadable(str(path), rel, "too_large", f"{size} bytes > max_input_bytes {max_bytes}", meta)
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
            if not isinstance(record, dict):
                yield RawPage.unreadable(str(path), where, "bad_jsonl", f"{source}:{line_no}: not a JSON object")
                continue
            kind = "html" if record.get("html") is not None else "text"
            if kind == "html" and isinstance(record["html"], str) and not record["html"].strip() \
                    and record.get("text") is not None:
                kind = "text"  # an empty `html` beside a `text`: the page is the text
            body = record.get(kind)
            if not isinstance(body, str):
                yield RawPage.unreadable(str(path), where, "bad_jsonl",
                                         f"{source}:{line_no}: needs a string `html` or `text`")
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
