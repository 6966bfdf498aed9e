"""Where a run's record streams and report live: a local folder, or any fsspec URL (`s3://…`, `gs://…`).

A run writes every file whole on local disk first (temp file + fsync), then publishes it:
- `LocalStore`: a rename into place (atomic on POSIX), the directory fsynced;
- `FsspecStore`: one upload to the final name. Object stores (S3, GCS, Azure) show an object only once its
  upload completed, so a reader or a killed run never sees half a shard there either.

A shard is written as JSON lines and converted to the output's format (`fmt`: pipeline/io/formats.py) when it is
published; the store names shards by their logical name (`part-000042.jsonl`) whatever their format, and
reads every format back as JSON lines.

The state (SQLite, the lock, staged shards, the dedup round's files) needs a POSIX folder: `OUT/_state`
for a local output, `--state DIR` for a URL. A shard is recorded in the state only after it is published,
and files the state does not name are swept at the start of the next run, so the protocol is the same on
both kinds of store.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from ..config import ConfigError
from ..layout import STATE_DIR, STREAMS
from .formats import decode, encode, format_of, logical, physical, variants
from .writer import fsync_dir, shard_seq, write_atomic


def _candidates(name: str, fmt: str) -> list[str]:
    """The file names logical shard `name` may have, the one in the store's format `fmt` first (a shard is
    nearly always in it: a lookup, on an object store a request, is spent on the others only when it is not)."""
    own = physical(name, fmt)
    return [own, *(other for other in variants(name) if other != own)]


def _packed(local: Path, name: str, fmt: str) -> tuple[Path, str]:
    """`local` (JSON lines) converted to `fmt` beside it, and the file name it gets: shard files only."""
    if format_of(name) != "jsonl" or fmt == "jsonl":
        return local, name
    target = physical(name, fmt)
    packed = local.with_name(f".{target}.tmp")
    encode(local, packed, fmt)
    local.unlink()
    return packed, target


class LocalStore:
    """Streams as folders of `root`; temp files sit beside their final name (one filesystem: renames)."""

    remote = False

    def __init__(self, root: Path, fmt: str = "jsonl") -> None:
        self.root = root
        self.fmt = fmt  # the format shards are published in

    def __str__(self) -> str:
        return str(self.root)

    def temp_path(self, stream: str, name: str) -> Path:
        return self.root / stream / f".{name}.tmp"

    def publish(self, stream: str, name: str, local: Path) -> None:
        """Move the complete, fsynced file `local` (a `temp_path`, or a file on the same filesystem) to
        `stream/name`, a shard converted to the store's format first (and its other formats' files removed)."""
        folder = self.root / stream
        folder.mkdir(parents=True, exist_ok=True)
        local, final = _packed(local, name, self.fmt)
        self._move(folder, final, local)
        for other in variants(name):
            if other != final:
                (folder / other).unlink(missing_ok=True)
        fsync_dir(folder)

    def _move(self, folder: Path, name: str, local: Path) -> None:
        try:
            os.replace(local, folder / name)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            # a state folder on another filesystem (--state): copy beside the final name, then rename
            temp = folder / f".{name}.tmp"
            shutil.copyfile(local, temp)
            with open(temp, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(temp, folder / name)
            local.unlink()

    def _found(self, stream: str, name: str) -> Path | None:
        """The file of `stream/name` (a shard in whichever format it has), None if there is none."""
        for candidate in _candidates(name, self.fmt):
            path = self.root / stream / candidate
            if path.is_file():
                return path
        return None

    def exists(self, stream: str, name: str) -> bool:
        return self._found(stream, name) is not None

    def lines(self, stream: str, name: str) -> Iterator[str]:
        """The lines of `stream/name` (a shard's as JSON lines, whatever its format); none if it does not exist."""
        path = self._found(stream, name)
        if path is not None:
            with open(path, "rb") as handle:
                yield from decode(handle, format_of(path.name) or "jsonl")

    def names(self, stream: str) -> list[str]:
        """Every file name in the stream's folder, temp files included, shards by their logical name, sorted."""
        folder = self.root / stream
        return sorted({logical(p.name) for p in folder.iterdir() if p.is_file()}) if folder.is_dir() else []

    def remove(self, stream: str, name: str) -> None:
        for candidate in variants(name):
            (self.root / stream / candidate).unlink(missing_ok=True)

    def write_text(self, name: str, text: str) -> None:
        write_atomic(self.root / name, text)

    def read_text(self, name: str) -> str | None:
        path = self.root / name
        return path.read_text(encoding="utf-8") if path.exists() else None


class StoreError(OSError):
    """The output store failed (network, permissions, quota): the run stops; rerun to go on from there."""


# fsspec protocols whose objects appear only once their upload completed; elsewhere (local://, sftp, hdfs,
# smb, ftp, webdav) a file is written under a temp name and renamed, as in a folder
OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss", "memory"})


def _guarded(method):
    """Any failure of the filesystem behind the URL becomes a StoreError naming the URL."""
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - each backend raises its own errors
            raise StoreError(f"{self.url}: {method.__name__} failed: {type(exc).__name__}: {exc}") from exc
    return call


class FsspecStore:
    """Streams under an fsspec URL; temp files in a local `scratch` folder (the state's), uploaded whole."""

    remote = True

    def __init__(self, url: str, scratch: Path, fmt: str = "jsonl") -> None:
        self.fmt = fmt
        try:
            import fsspec

            self.fs, path = fsspec.core.url_to_fs(url)
            self.fs.exists(path)  # the backend is loaded (and its credentials read) now, not mid-run
        except Exception as exc:  # noqa: BLE001 - s3:// without s3fs, no credentials, no such bucket: refused now
            raise ConfigError(f"{url}: cannot open this URL: {type(exc).__name__}: {exc}") from exc
        self.url, self.base, self.scratch = url, path.rstrip("/"), scratch
        protocols = self.fs.protocol if isinstance(self.fs.protocol, (tuple, list)) else (self.fs.protocol,)
        self.object_store = bool(OBJECT_STORES.intersection(protocols))

    def __str__(self) -> str:
        return self.url

    def _path(self, *parts: str) -> str:
        return "/".join((self.base, *parts))

    def temp_path(self, stream: str, name: str) -> Path:
        return self.scratch / stream / f".{name}.tmp"

    @_guarded
    def publish(self, stream: str, name: str, local: Path) -> None:
        local, final = _packed(local, name, self.fmt)
        self._upload(local, stream, final)
        local.unlink()
        for other in variants(name):
            if other != final and self.fs.isfile(self._path(stream, other)):
                self.fs.rm_file(self._path(stream, other))

    def _upload(self, local: Path, *parts: str) -> None:
        """`local` to the store's `parts`, whole or not at all: one upload to an object store, elsewhere an
        upload to a temp name (swept if a kill interrupts it) and a rename."""
        final = self._path(*parts)
        if self.object_store:  # no folders to make (s3fs' makedirs would create a mistyped bucket)
            self.fs.put_file(str(local), final)
            return
        folder, _, name = final.rpartition("/")
        self.fs.makedirs(folder, exist_ok=True)
        temp = f"{folder}/.{name}.tmp"
        self.fs.put_file(str(local), temp)
        self.fs.mv(temp, final)

    def _found(self, stream: str, name: str) -> str | None:
        for candidate in _candidates(name, self.fmt):  # a lookup each: the store's own format first
            if self.fs.isfile(self._path(stream, candidate)):
                return candidate
        return None

    @_guarded
    def exists(self, stream: str, name: str) -> bool:
        return self._found(stream, name) is not None

    def lines(self, stream: str, name: str) -> Iterator[str]:
        try:  # a generator: guarded here, around the reading, not around the call
            found = self._found(stream, name)
            if found is not None:
                with self.fs.open(self._path(stream, found), "rb") as handle:
                    yield from decode(handle, format_of(found) or "jsonl")
        except Exception as exc:  # noqa: BLE001 - each backend raises its own errors
            raise StoreError(f"{self.url}: reading {stream}/{name} failed: {type(exc).__name__}: {exc}") from exc

    @_guarded
    def names(self, stream: str) -> list[str]:
        folder = self._path(stream)
        if not self.fs.isdir(folder):
            return []
        return sorted({logical(entry["name"].rstrip("/").rsplit("/", 1)[-1])
                       for entry in self.fs.ls(folder, detail=True) if entry.get("type") == "file"})

    @_guarded
    def remove(self, stream: str, name: str) -> None:
        for candidate in variants(name):
            path = self._path(stream, candidate)
            if self.fs.isfile(path):
                self.fs.rm_file(path)

    @_guarded
    def write_text(self, name: str, text: str) -> None:
        local = self.scratch / f".{name}.tmp"
        write_atomic(local, text)
        self._upload(local, name)
        local.unlink()

    @_guarded
    def read_text(self, name: str) -> str | None:
        path = self._path(name)
        return self.fs.cat_file(path).decode("utf-8") if self.fs.isfile(path) else None


Store = LocalStore | FsspecStore
MARKER = ".pagewash-state"  # in the output: which state names its shards


def bind(store: Store, state_dir: Path, state_id: str, has_shards: bool, full: bool) -> None:
    """Make sure the output's shards are this state's to keep or sweep, and mark the output with it.

    A run sweeps every shard its state does not name, so a wrong `--state` (a typo, a relative path run
    from elsewhere, a forgotten flag) or a second run with another state would delete the output's
    records. The output's marker names the state that writes it: another state is refused, and so is a
    new state over an output that already holds shards but no marker, unless `full` (which rewrites it).
    `state_id` names the state (`RunState.state_id`); `has_shards`: it names shards already.
    """
    text = store.read_text(MARKER)
    if text is not None:
        marked = json.loads(text)
        if marked.get("state_id") != state_id:
            raise ConfigError(f"{store} is written by the state in {marked.get('state_dir')}, not {state_dir}: "
                              f"pass --state {marked.get('state_dir')} (or remove {store}/{MARKER} if that "
                              "state is gone for good)")
        return
    if not full and not has_shards and any(
            shard_seq(Path(name)) is not None for stream in STREAMS for name in store.names(stream)):
        raise ConfigError(f"{store} holds shards that the state in {state_dir} never wrote: pass the state they "
                          "were written with (--state), or --full to rewrite the output")
    store.write_text(MARKER, json.dumps({"state_id": state_id, "state_dir": str(state_dir.resolve())}) + "\n")


def replace_lines(store: Store, stream: str, name: str, lines: list[str]) -> None:
    """Replace the shard file `stream/name` by `lines` (each ending in a newline) atomically, or remove it
    when there are none."""
    if not lines:
        store.remove(stream, name)
        return
    temp = store.temp_path(stream, name)
    write_atomic(temp, "".join(lines))
    store.publish(stream, name, temp)


def is_url(name: str) -> bool:
    """An fsspec URL (`s3://…`); a `file://` URL names a local path (`local_path`)."""
    return "://" in name and not name.startswith("file://")


def local_path(name: str) -> Path:
    return Path(name[len("file://"):] if name.startswith("file://") else name)


def open_output(output: str, state: str | None = None, fmt: str = "jsonl") -> tuple[Store, Path]:
    """The store of the output `output` (shards published in `fmt`) and its state folder: `OUT/_state` for a
    local folder (or `state`, if given), `state` for a URL, where it is required (SQLite and the lock need
    POSIX)."""
    for name, path in (("output", output), ("--state", state)):
        if path and not is_url(path) and local_path(path).exists() and not local_path(path).is_dir():
            raise ConfigError(f"{path}: not a folder (the {name} must be a folder{', or a URL' * (name == 'output')})")
    if not is_url(output):
        root = local_path(output)
        return LocalStore(root, fmt), Path(state) if state else root / STATE_DIR
    if not state:
        raise ConfigError(f"{output}: an output URL needs --state DIR, a local (or shared POSIX) folder for the "
                          "run's state: SQLite and the lock cannot live in object storage")
    state_dir = Path(state)
    return FsspecStore(output, state_dir / "outgoing", fmt), state_dir
