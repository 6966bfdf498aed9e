"""What an output's records depend on: the settings fingerprint a run records in the state.

A rerun that would clean with other settings than the records already in the output (another `[clean]`
threshold, a rule added or edited, another trafilatura) would otherwise mix two versions in one corpus while
reporting every input "unchanged". The fingerprint is a flat mapping, one entry per thing that changes
records, so that a refusal can say exactly what changed.

Left out on purpose: what only changes how a run goes, not what it writes (`workers`, `shard_pages`,
`max_error_rate`, `extract_timeout`, `memory_limit_mb`), and `[dedup]`, whose parameters the dedup index
already checks itself (`pagewash dedup --rebuild` changes them in place).
"""

from __future__ import annotations

import dataclasses
import hashlib
import unicodedata
from importlib import metadata, resources

from . import __version__
from .clean.linemodel import ModelError, model_bytes
from .config import Config
from .rules import RuleSet
from .vocabulary import VOCABULARY_KEYS

# The distributions whose code shapes a record: extraction, dates, stop lists, parsing, charset detection,
# language identification, archive reading and the dedup signatures.
LIBRARIES = ("trafilatura", "htmldate", "courlan", "justext", "lxml", "lxml_html_clean", "beautifulsoup4",
             "charset-normalizer", "dateparser", "langdetect", "langdetect-rs", "warcio", "brotli", "rensa")
_RUN_ONLY = frozenset({"run", "output", "shard_pages", "max_error_rate", "extract_timeout", "memory_limit_mb", "dedup",
                       "rules_dirs"})  # rules_dirs: the rules themselves are fingerprinted, not where they live


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"


def _digest(parts: tuple) -> str:
    return hashlib.sha1(repr(parts).encode("utf-8")).hexdigest()[:12]


def code_digest() -> str:
    """A digest of pagewash's own modules: a version number is not bumped for every change that alters records
    (a decoding rule, a new reject reason), the code itself is what made them."""
    digest = hashlib.sha1()
    for name, module in _modules(resources.files("pipeline")):
        digest.update(name.encode("utf-8") + b"\0" + module.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def _modules(folder, prefix: str = "") -> list[tuple[str, object]]:
    """(path inside the package, file) of every module of the package, sub-packages included, by path."""
    found = []
    for entry in folder.iterdir():
        if entry.is_dir() and entry.name != "__pycache__" and (entry / "__init__.py").is_file():
            found += _modules(entry, f"{prefix}{entry.name}/")
        elif entry.name.endswith(".py"):
            found.append((f"{prefix}{entry.name}", entry))
    return sorted(found, key=lambda item: item[0])


def settings_fingerprint(config: Config, rules: RuleSet) -> dict[str, str]:
    """`name -> value` of everything in this run that decides what a record holds (see the module docstring)."""
    found = {"pagewash": __version__, "pagewash code": code_digest(), "unicode": unicodedata.unidata_version}
    found.update((f"library {name}", _version(name)) for name in LIBRARIES)
    for f in dataclasses.fields(config):
        if f.name in _RUN_ONLY:
            continue
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            found.update((f"config {f.name}.{sub.name}", repr(getattr(value, sub.name)))
                         for sub in dataclasses.fields(value))
        else:
            found[f"config {f.name}"] = repr(value)
    for rule in rules.rules:  # the description is documentation: editing it changes no record
        found[f"rule {rule.id}"] = _digest((rule.action, sorted(rule.exact), rule.prefix,
                                            [(p.pattern, p.flags) for p in rule.regex], rule.heuristic,
                                            sorted(rule.sites)))
    for pattern in rules.meta:
        found[f"meta {pattern.id}"] = _digest((pattern.field, pattern.regex.pattern, pattern.regex.flags))
    for key in VOCABULARY_KEYS:  # the header's words decide titles, bylines and dates
        found[f"vocabulary {key}"] = _digest(getattr(rules.vocab, key))
    if config.clean.method == "model":  # the model's bytes, not its path: a retrained model changes records
        try:
            found["cleaner model"] = hashlib.sha1(model_bytes(config.clean.model)).hexdigest()[:12]
        except ModelError:
            found["cleaner model"] = "unreadable"  # the run itself refuses it, with the reason
    return dict(sorted(found.items()))


def changes(before: dict[str, str], now: dict[str, str]) -> list[str]:
    """What differs between two fingerprints, one readable line each (`rule nav.menu: changed`)."""
    lines = []
    for key in sorted(before.keys() | now.keys()):
        old, new = before.get(key), now.get(key)
        if old == new:
            continue
        if key.startswith(("rule ", "meta ", "vocabulary ")):
            lines.append(f"{key}: {'added' if old is None else 'removed' if new is None else 'changed'}")
        else:
            lines.append(f"{key}: {old if old is not None else '(none)'} -> {new if new is not None else '(none)'}")
    return lines
