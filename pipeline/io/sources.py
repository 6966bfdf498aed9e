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
import io
import json
import logging
import os
import stat
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..config import ConfigError, InputConfig
from ..document import RawPage
from ..layout import LOCK_FILE, STATE_DB, STATE_DIR
from .exports import read_jsonl, read_parquet
from .store import MARKER, is_url, local_path
from .warc import read_warc

# The input kinds, by file name (case-insensitive; the longest suffix wins): the one place they are defined.
# `run --help` lists them; any other file under RAW is skipped, counted in the report by its suffix.
INPUT_KINDS = (
    ("page", (".txt", ".txt.gz", ".html", ".htm", ".html.gz", ".htm.gz"),
     "one page: a rendered-text dump or HTML (told apart by content)"),
    ("jsonl", (".jsonl", ".jsonl.gz", ".jsonl.zst", ".ndjson", ".ndjson.gz", ".ndjson.zst"),
     "a scraper export, one page a line (JSON with `html` or `text`; keys: --text-key …)"),
    ("parquet", (".parquet",), "a scraper export as Parquet, one page a row (the same keys)"),
    ("warc", (".warc", ".warc.gz", ".arc", ".arc.gz"), "a web archive: its HTML responses and resources"),
    ("wet", (".warc.wet", ".warc.wet.gz", ".wet", ".wet.gz"), "a WET archive: its text conversions, as dumps"),
    ("wat", (".warc.wat", ".warc.wat.gz", ".wat", ".wat.gz"), "a WAT archive: metadata only, skipped (counted)"),
)
_BY_SUFFIX = tuple(sorted(((suffix, kind) for kind, suffixes, _what in INPUT_KINDS for suffix in suffixes),
                          key=lambda pair: -len(pair[0])))
SIDECAR_SUFFIX = ".meta.json"
SIDECAR_KEYS = ("url", "fetched_at", "site")
log = logging.getLogger("pagewash")


def kinds_help() -> str:
    """The input kinds in words, for `run --help`."""
    return "\n".join(f"  {', '.join(suffixes)}: {what}" for _kind, suffixes, what in INPUT_KINDS)


def _kind(path: Path) -> str | None:
    return _kind_of_name(path.name)


def _kind_of_name(name: str) -> str | None:
    """The kind of an input by its name; None for a file that is no input (or a WAT: `wat`)."""
    name = name.lower()
    if name.startswith(".") or name.endswith(SIDECAR_SUFFIX):
        return None
    for suffix, kind in _BY_SUFFIX:
        if name.endswith(suffix):
            return kind
    return None


def skip_reason(name: str) -> str:
    """Why a file the walk met is no input, as the report counts it: `unknown kind (.csv)`."""
    lowered = name.lower()
    if lowered.endswith(SIDECAR_SUFFIX):
        return "sidecar"
    if _kind_of_name(name) == "wat":
        return "WAT archive (metadata only)"
    suffix = "".join(Path(lowered).suffixes[-2:]) if "." in lowered.lstrip(".") else "no suffix"
    return f"unknown kind ({suffix})"


def sniff_kind(path: Path) -> str:
    """The kind of a file named as RAW whose name says none, from its first bytes: a web archive, a
    Parquet file, JSON lines (its first line a JSON object), else one page."""
    with path.open("rb") as handle:
        head = handle.read(4096)
    if head[:2] == b"\x1f\x8b":
        try:  # the first member's first bytes: a head cut inside the stream still gives them
            head = gzip.GzipFile(fileobj=io.BytesIO(head)).read1(4096)
        except (OSError, EOFError, zlib.error):
            return "page"
    if head.startswith(b"WARC/"):
        return "warc"
    if head.startswith(b"PAR1"):
        return "parquet"
    first = head.lstrip().split(b"\n", 1)[0]
    if first.startswith(b"{"):
        try:
            if isinstance(json.loads(first), dict):
                return "jsonl"
        except (ValueError, UnicodeDecodeError):
            pass
    return "page"


def kind_of(path: Path, root: Path) -> str:
    """An input's kind: by its name, or for a file named as RAW without a known suffix, by its content."""
    return _kind(path) or (sniff_kind(path) if path == root else "page")


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


def walk_inputs(root: Path, exclude: Iterable[Path] = (), skipped: Counter | None = None) -> Iterator[Found]:
    """Each input file under `root` (or `root` itself) with its key (`input_key`), in the order of sorted
    paths, so runs are reproducible. A local tree is walked folder by folder, holding the names of one
    folder at a time, not a list of every input, and judged by name and directory entry (no stat per
    file: a rerun over a large tree is bound by these calls); an fsspec URL is listed through its
    filesystem.

    Symbolic links to files are followed, links to folders are not (no loops, no input seen twice). The
    folders `exclude` names (a run's own output streams and state) are skipped however they are spelled:
    they are compared by device and inode. An entry that cannot be read comes out with its error; one
    that is not a file (a FIFO, socket or device, which would block or make no sense to read) is skipped
    with a warning. Files that are no input are counted in `skipped` by why (`skip_reason`), as are symbolic
    links to folders; hidden files (`.name`) are passed over.
    """
    skipped = skipped if skipped is not None else Counter()
    if root.is_file():
        yield Found(root, root.name)
        return
    if not isinstance(root, Path):  # a universal_pathlib path over fsspec
        for path in sorted(root.rglob("*")):
            if path.is_file() and is_input(path):
                yield Found(path, path.relative_to(root).as_posix())
            elif path.is_file() and not path.name.startswith("."):
                skipped[skip_reason(path.name)] += 1
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
    yield from _walk(root, "", skip, skipped)


def _walk(folder: Path, prefix: str, skip: set[tuple[int, int]], skipped: Counter) -> Iterator[Found]:
    # One folder's input and folder names (as plain strings: ~70 bytes each), sorted; is_dir/is_file come
    # from the directory entry, so only a symbolic link (or an odd entry) costs a stat.
    subfolders: set[str] = set()
    names: list[str] = []
    bad: dict[str, str] = {}  # name -> why it cannot be read
    own = os.path.exists(os.path.join(folder, MARKER))  # an output written into RAW: its report is no page
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if own and entry.name in OWN_FILES:
                    continue
                try:
                    kind = _entry_kind(entry, skip, skipped)
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
            yield from _walk(folder / name, f"{prefix}{name}/", skip, skipped)
        else:
            yield Found(folder / name, prefix + name, bad.get(name))


_FOLDER, _INPUT = "folder", "input"
OWN_FILES = frozenset({"report.html", "report.json", "README.md"})  # what a run writes beside its streams
# what marks a folder as pagewash's own: a run's output, a `dedup` output (its state), a state folder
_OWN_MARKS = (MARKER, os.path.join(STATE_DIR, LOCK_FILE), STATE_DB)


def _pagewash_folder(path: str) -> bool:
    """A folder another pagewash run wrote (an output nested in RAW beside this run's): its shards are
    records, never pages to clean again."""
    return any(os.path.exists(os.path.join(path, mark)) for mark in _OWN_MARKS)


def _entry_kind(entry: os.DirEntry, skip: set[tuple[int, int]], skipped: Counter) -> str | None:
    """`_FOLDER` (to walk), `_INPUT`, or None (not an input, counted in `skipped` when it is a file or a link
    to a folder); raises OSError for an entry it cannot judge."""
    if entry.is_dir(follow_symlinks=False):
        if any(entry.inode() == ino for _dev, ino in skip) and (
                (st := entry.stat(follow_symlinks=False)).st_dev, st.st_ino) in skip:
            log.info("%s: a folder this run writes: not read", entry.path)
            return None
        if _pagewash_folder(entry.path):
            log.info("%s: the output or state of another pagewash run: not read", entry.path)
            return None
        return _FOLDER
    kind = _kind_of_name(entry.name)
    if kind is None or kind == "wat":
        if entry.name.startswith("."):
            return None
        if entry.is_symlink() and entry.is_dir():
            log.warning("%s: a symbolic link to a folder: not followed", entry.path)
            skipped["symbolic link to a folder"] += 1
        elif entry.is_file():
            skipped[skip_reason(entry.name)] += 1
        return None
    if entry.is_file():  # follows a symbolic link (a stat): a loop raises ELOOP; a dangling link is False
        return _INPUT
    if stat.S_ISDIR(entry.stat().st_mode):  # a dangling link raises ENOENT here
        log.warning("%s: a symbolic link to a folder: not followed", entry.path)
        skipped["symbolic link to a folder"] += 1
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


def read_inputs(path: Path, root: Path, max_bytes: int, skipped: Counter | None = None,
                keys: InputConfig | None = None, kinds: Counter | None = None) -> Iterator[RawPage]:
    """The pages of one input file; archive records that are not pages are counted in `skipped` by why, the
    file's kind in `kinds`. `keys`: the field names of scraper exports (JSON lines, Parquet). A file named as
    RAW whose name says no kind is judged by its first bytes (`sniff_kind`)."""
    rel = input_key(path, root)
    keys = keys or InputConfig()
    try:
        kind = kind_of(path, root)
        if kinds is not None:
            kinds[kind] += 1
        if kind == "wat":  # metadata records only: no page
            if skipped is not None:
                skipped["WAT archive (metadata only)"] += 1
            return
        if kind == "jsonl":
            yield from read_jsonl(path, rel, max_bytes, keys)
        elif kind == "parquet":
            yield from read_parquet(path, rel, max_bytes, keys)
        elif kind in ("warc", "wet"):
            yield from read_warc(path, rel, max_bytes, skipped, text=kind == "wet")
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
