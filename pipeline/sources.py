"""Finding and reading inputs under `raw/`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from .document import RawPage, Rejected

TEXT_SUFFIXES = (".txt", ".txt.gz")


def is_input(path: Path) -> bool:
    name = path.name.lower()
    return not name.startswith(".") and name.endswith(TEXT_SUFFIXES)


def discover(root: Path) -> Iterator[Path]:
    """Input files under `root` (or `root` itself), in a stable order, so runs are reproducible."""
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*")):
        if path.is_file() and is_input(path):
            yield path


def read_page(path: Path, root: Path, max_bytes: int) -> RawPage:
    """Read one input; an unreadable or oversized file raises Rejected with the reason."""
    rel = path.name if root.is_file() else path.relative_to(root).as_posix()
    try:
        size = path.stat().st_size
        # gzip can hold far more than it weighs; decode_page bounds the decompressed size
        if size > max_bytes:
            raise Rejected("too_large", f"{size} bytes > max_input_bytes {max_bytes}")
        data = path.read_bytes()
    except OSError as exc:
        raise Rejected("unreadable", f"{exc.strerror or exc}") from exc
    return RawPage(source_path=str(path), rel_path=rel, data=data)
