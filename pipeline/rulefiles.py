"""Reading rule files: the TOML tables of a file (`[[rule]]`, `[[meta]]`, `[vocabulary]`) with the line each
starts on, so that every error names file, line and reason."""

from __future__ import annotations

import re
import sys

from .config import ConfigError
from .vocabulary import VOCABULARY_KEYS

try:
    from importlib.resources.abc import Traversable
except ImportError:  # pragma: no cover - Python 3.10
    from importlib.abc import Traversable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _table_lines(text: str, header: str) -> list[int]:
    """1-based line numbers of each `[[header]]` table, in order, for error messages."""
    pattern = re.compile(rf"^\s*\[\[\s*{re.escape(header)}\s*\]\]")
    return [n for n, line in enumerate(text.splitlines(), 1) if pattern.match(line)]


def _key_line(text: str, start: int, key: str) -> int:
    lines = text.splitlines()
    for n in range(start, len(lines) + 1):
        if n > start and lines[n - 1].lstrip().startswith("[["):
            break
        if re.match(rf"^\s*{re.escape(key)}\s*=", lines[n - 1]):
            return n
    return start


def _read_tables(path: Traversable) -> tuple[list[tuple[dict, int]], list[tuple[dict, int]], dict, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    unknown = set(data) - {"rule", "meta", "vocabulary"}
    if unknown:
        raise ConfigError(f"{path}:1: unknown top-level key(s) {sorted(unknown)}; expected [[rule]], [[meta]] "
                          "or [vocabulary]")
    vocabulary = data.get("vocabulary", {})
    if not isinstance(vocabulary, dict):
        raise ConfigError(f"{path}:{_key_line(text, 1, 'vocabulary')}: vocabulary must be a table")
    for key, words in vocabulary.items():
        where = _key_line(text, 1, key)
        if key not in VOCABULARY_KEYS:
            raise ConfigError(f"{path}:{where}: unknown key {key!r} in [vocabulary] "
                              f"(known: {', '.join(VOCABULARY_KEYS)})")
        if not isinstance(words, list) or not all(isinstance(w, str) and w.strip() for w in words):
            raise ConfigError(f"{path}:{where}: {key} must be a list of non-empty strings")
    rules = data.get("rule", [])
    metas = data.get("meta", [])
    rule_lines = _table_lines(text, "rule")
    meta_lines = _table_lines(text, "meta")
    return (
        [(r, rule_lines[i] if i < len(rule_lines) else 1) for i, r in enumerate(rules)],
        [(m, meta_lines[i] if i < len(meta_lines) else 1) for i, m in enumerate(metas)],
        vocabulary,
        text,
    )
