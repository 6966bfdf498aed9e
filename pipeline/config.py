"""One frozen configuration object: packaged defaults, overridden key by key by a user TOML file."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ConfigError(ValueError):
    """A configuration or rule file that cannot be used; the message names file, line and reason."""


# [dedup] partitions: each is a task and a few files per shard; beyond this a run makes files, not progress
MAX_PARTITIONS = 4096
# a worker is forked from a driver that has mapped ~1.3 GB of address space (trafilatura, lxml, numpy, language
# profiles); an address-space limit near that kills workers at start-up, before any page
MIN_MEMORY_LIMIT_MB = 2048


CLEAN_METHODS = ("model", "heuristic")
KEEP_POLICIES = ("longest", "earliest", "first_seen")
RECAPTURE_POLICIES = ("update", "versions")
ENGINES = ("local", "ray")
LANGUAGE_ENGINES = ("langdetect", "fasttext")
OUTPUT_FORMATS = ("jsonl.gz", "jsonl", "jsonl.zst", "parquet")  # pipeline/io/formats.py


def _check_choice(table: str, key: str, value: object, allowed: tuple[str, ...]) -> None:
    """`[table] key` must be one of `allowed`."""
    if value not in allowed:
        raise ConfigError(f"[{table}] {key} must be one of {', '.join(allowed)}, got {value!r}")


def _check_ranges(obj: object, table: str = "") -> None:
    """Every number of a config dataclass finite and inside the bounds its field declares (`min`, `max`, and
    `zero_or_min` for a limit where 0 means none), so a value that cannot work is refused at load, naming the key."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        key = f"[{table}] {f.name}" if table else f.name
        if not math.isfinite(value):
            raise ConfigError(f"{key} must be a finite number, got {value!r}")
        low, high = f.metadata.get("min"), f.metadata.get("max")
        zero_or_min = f.metadata.get("zero_or_min")
        if zero_or_min is not None and value != 0 and value < zero_or_min:
            raise ConfigError(f"{key} must be 0 (no limit) or at least {zero_or_min}, got {value!r}")
        if low is not None and value < low:
            raise ConfigError(f"{key} must be at least {low}, got {value!r}")
        if high is not None and value > high:
            raise ConfigError(f"{key} must be at most {high}, got {value!r}")


@dataclass(frozen=True)
class CleanConfig:
    """Thresholds of the text-dump cleaner (see pipeline/textclean.py for what each one weighs)."""

    method: str = field(default="heuristic", metadata={
        "help": "`heuristic`: the hand-tuned cleaner; `model`: the learned line model (docs/model.md: better on "
                "articles, not yet on every held-out source, so not the default)"})
    model: str = field(default="", metadata={
        "help": "path of a model file from bench/train_cleaner.py; empty: the model packaged with pagewash"})
    threshold: float = field(default=0.0, metadata={
        "help": "body probability from which the model keeps a line, the same for every line; 0: the model's own "
                "two thresholds, one for the lines the heuristic cleaner keeps and one for the others",
        "min": 0.0, "max": 1.0})
    good_min_words: int = field(default=8, metadata={"help": "heuristic: words for a line to count as prose", "min": 1})
    good_min_stopword_density: float = field(
        default=0.18,
        metadata={"help": "heuristic: share of stop words for a line to count as prose", "min": 0.0, "max": 1.0}
    )
    unpunctuated_min_words: int = field(
        default=25, metadata={"help": "heuristic: a prose line without end punctuation needs this many words", "min": 1}
    )
    short_max_words: int = field(
        default=4, metadata={"help": "heuristic: at most this many words is a short line", "min": 0})
    bad_penalty: float = field(
        default=10.0, metadata={"help": "heuristic: region score lost per boilerplate line", "min": 0.0})
    short_penalty: float = field(
        default=1.5, metadata={"help": "heuristic: region score lost per unclear short line", "min": 0.0})
    max_short_run: int = field(
        default=40,
        metadata={"help": "heuristic: more non-prose lines in a row than this inside the article is a menu", "min": 1}
    )
    good_weight_cap: int = field(
        default=40,
        metadata={"help": "heuristic: region score of one prose line is its word count, capped here", "min": 1}
    )
    link_list_min_lines: int = field(
        default=6,
        metadata={"help": "heuristic: a run of this many headline-like lines inside the article may be links", "min": 1}
    )
    link_list_share: float = field(
        default=0.8, metadata={"help": "heuristic: share of headline-like lines that makes such a run a list of links",
                               "min": 0.0, "max": 1.0}
    )
    headline_title_case: float = field(
        default=0.7, metadata={"help": "heuristic: share of capitalised words from which a line reads as a headline",
                               "min": 0.0, "max": 1.0}
    )
    medium_gain: float = field(
        default=0.0,
        metadata={"help": "heuristic: region score per stop word of a line between prose and heading", "min": 0.0}
    )
    header_lines: int = field(
        default=15, metadata={"help": "heuristic: lines above the article searched for title, byline, date", "min": 0}
    )
    repeat_min_words: int = field(
        default=4, metadata={"help": "a repeated line of at least this many words is kept once", "min": 1}
    )
    min_article_words: int = field(default=25, metadata={"help": "fewer words than this is no article", "min": 0})

    def __post_init__(self) -> None:
        _check_ranges(self, "clean")
        _check_choice("clean", "method", self.method, CLEAN_METHODS)


@dataclass(frozen=True)
class DedupConfig:
    """Near-duplicate detection (see pipeline/dedup.py and docs/dedup.md for how to tune it)."""

    enabled: bool = field(default=True, metadata={"help": "find exact and near-duplicate documents"})
    threshold: float = field(
        default=0.4, metadata={"help": "estimated Jaccard similarity of word n-grams from which two documents link"}
    )
    containment: float = field(
        default=0.6, metadata={"help": "estimated share of the shorter text's n-grams found in the longer from "
                                       "which two documents link (a truncated copy); above 1: never"})
    containment_min: int = field(
        default=200, metadata={"help": "distinct n-grams the shorter text needs for a link by containment alone",
                               "min": 1})
    ngram: int = field(default=4, metadata={"help": "words per shingle (the n-grams compared; characters in "
                                                    "scripts written without spaces)", "min": 1})
    num_perm: int = field(default=128, metadata={"help": "MinHash permutations: the signature length", "min": 1})
    bands: int = field(default=64, metadata={"help": "LSH bands; bands x rows must equal num_perm", "min": 1})
    rows: int = field(default=2, metadata={"help": "signature slots per LSH band", "min": 1})
    seed: int = field(default=1, metadata={"help": "MinHash seed, fixed so that signatures are reproducible"})
    keep: str = field(
        default="longest", metadata={"help": "which document of a cluster is kept: `longest` text (then earliest "
                                             "date), `earliest` date (then longest), or `first_seen`; ties go to "
                                             "the one seen first, and a document kept by an earlier run stays kept"})
    recapture: str = field(
        default="update", metadata={"help": "a newer capture of a URL (the same id) with other text: `update` "
                                            "replaces the earlier record (moved to duplicates with "
                                            "`superseded_by`), `versions` keeps both; the same text again is "
                                            "always a duplicate"})
    partitions: int = field(
        default=16, metadata={"help": "partitions of a run's band shuffle (tasks of its buckets step); never "
                                      "changes a result, only task sizes and file counts",
                                "min": 1, "max": MAX_PARTITIONS})

    def __post_init__(self) -> None:
        _check_ranges(self, "dedup")
        if self.bands * self.rows != self.num_perm:
            raise ConfigError(
                f"[dedup] bands x rows ({self.bands} x {self.rows}) must equal num_perm ({self.num_perm})")
        if not 0.0 < self.threshold <= 1.0:
            raise ConfigError(f"[dedup] threshold must be in (0, 1], got {self.threshold}")
        if not self.containment > 0.0:
            raise ConfigError(f"[dedup] containment must be above 0, got {self.containment}")
        _check_choice("dedup", "recapture", self.recapture, RECAPTURE_POLICIES)
        _check_choice("dedup", "keep", self.keep, KEEP_POLICIES)


@dataclass(frozen=True)
class LanguageConfig:
    """How the article's language is identified, and which languages a run keeps (README, "Languages")."""

    engine: str = field(default="langdetect", metadata={
        "help": "`langdetect` (55 languages, seeded), or `fasttext`: fastText's lid.176 model (176 languages, as "
                "FineWeb and dolma; needs pagewash[fasttext])"})
    keep: tuple[str, ...] = field(default=(), metadata={
        "help": "ISO 639-1 codes of the languages to keep (`--languages en,de`); any other, or none found, is a "
                "`language` reject; empty: keep all"})

    def __post_init__(self) -> None:
        _check_choice("language", "engine", self.engine, LANGUAGE_ENGINES)


@dataclass(frozen=True)
class HtmlConfig:
    """How trafilatura reads HTML pages (see README, "HTML speed and accuracy")."""

    fast: bool = field(
        default=False,
        metadata={"help": "trafilatura's fast mode: no readability/jusText comparison for each page"},
    )
    extensive_date_search: bool = field(
        default=True,
        metadata={"help": "where the page's markup gives no date and the page prints a full calendar date, htmldate's "
                          "extensive search of its text (a January 1st found there is taken for a bare year and "
                          "dropped)"},
    )


@dataclass(frozen=True)
class InputConfig:
    """How scraper exports (JSON lines, Parquet) name their fields (README, "Input kinds")."""

    text_key: str = field(default="text", metadata={"help": "the field holding a page's rendered text"})
    html_key: str = field(default="html", metadata={"help": "the field holding a page's HTML (used when non-empty)"})
    url_key: str = field(default="url", metadata={"help": "the field holding the page's URL"})
    id_key: str = field(default="id", metadata={
        "help": "the field holding the export's own id, kept as the record's id (a string); else sha1 of the URL"})
    fetched_key: str = field(default="fetched_at", metadata={"help": "the field holding when the page was fetched"})
    keep_fields: tuple[str, ...] = field(default=(), metadata={
        "help": "fields of the export carried into each record's metadata as they are"})


@dataclass(frozen=True)
class OutputConfig:
    """What the output's shards are written as (README, "Output")."""

    format: str = field(default="jsonl.gz", metadata={
        "help": "shard files: `jsonl.gz` (gzip), `jsonl`, `jsonl.zst` (zstd) or `parquet` (one fixed schema); "
                "changing it on an output needs --full"})

    def __post_init__(self) -> None:
        _check_choice("output", "format", self.format, OUTPUT_FORMATS)


@dataclass(frozen=True)
class RunConfig:
    """Where `run` does its work (README, "Running on Ray"); `--workers`, `--executor`, `--address` override it."""

    engine: str = field(default="local", metadata={
        "help": "`local`: a process pool on this machine; `ray`: Ray core tasks (needs pagewash[ray])"})
    workers: int = field(default=0, metadata={
        "help": "worker processes (CPUs of a local Ray); 0 means one per core; capped at 4 a core and at the memory "
                "available (300 MB a worker)", "min": 0})
    address: str = field(default="", metadata={
        "help": "with engine `ray`: the Ray cluster to join; empty: start a local Ray with `workers` CPUs"})

    def __post_init__(self) -> None:
        _check_ranges(self, "run")
        _check_choice("run", "engine", self.engine, ENGINES)


@dataclass(frozen=True)
class Config:
    """Everything a run can be told; immutable so that stages can share it across processes."""

    clean: CleanConfig = field(default_factory=CleanConfig)
    html: HtmlConfig = field(default_factory=HtmlConfig, metadata={"help": "HTML extraction: the [html] table"})
    language: LanguageConfig = field(default_factory=LanguageConfig, metadata={"help": "the [language] table"})
    dedup: DedupConfig = field(
        default_factory=DedupConfig, metadata={"help": "near-duplicate detection: the [dedup] table"}
    )
    run: RunConfig = field(default_factory=RunConfig, metadata={"help": "where `run` works: the [run] table"})
    input: InputConfig = field(default_factory=InputConfig, metadata={"help": "the [input] table"})
    output: OutputConfig = field(default_factory=OutputConfig, metadata={"help": "the [output] table"})
    rules_dirs: tuple[str, ...] = field(
        default=(), metadata={"help": "user rule folders, read after the packaged defaults"}
    )
    max_input_bytes: int = field(
        default=16 * 1024 * 1024, metadata={"help": "larger inputs (a file, a JSONL line, a WARC payload, a page once "
                                                   "gunzipped) are rejected as too_large, never held whole", "min": 1}
    )
    extract_timeout: float = field(
        default=30.0,
        metadata={"help": "seconds one page may spend in all its stages before it is rejected as timeout", "min": 0.01},
    )
    language_seed: int = field(default=0, metadata={"help": "langdetect seed, for deterministic output"})
    max_error_rate: float = field(
        default=0.05, metadata={"help": "share of failed inputs above which `run` exits 1", "min": 0.0, "max": 1.0}
    )
    shard_pages: int = field(
        default=2000,
        metadata={"help": "pages per output shard: the unit of commit, of dedup batches and of work lost to a kill",
                  "min": 1},
    )
    memory_limit_mb: int = field(
        default=4096,
        metadata={"help": "address-space limit of a worker (MB); a page needing more is a `memory` reject; 0: none",
                  "zero_or_min": MIN_MEMORY_LIMIT_MB},
    )

    def __post_init__(self) -> None:
        _check_ranges(self)


def _merge(cls: type, base: object, overrides: dict, where: str, source: str = "") -> object:
    """`base` with `overrides` (a TOML table) applied; `where` names the table in errors, `source` the file."""
    values = {}
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in overrides.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(known))})")
        current = getattr(base, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: [{key}] must be a table")
            values[key] = _merge(type(current), current, value, f"{where} [{key}]", source or where)
        elif isinstance(current, tuple):
            if not isinstance(value, list):
                raise ConfigError(f"{where}: {key} must be a list")
            values[key] = tuple(value)
        else:
            expected = type(current)
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, expected) or isinstance(value, bool) != isinstance(current, bool):
                raise ConfigError(f"{where}: {key} must be {expected.__name__}, got {value!r}")
            values[key] = value
    try:
        return dataclasses.replace(base, **values)
    except ConfigError as exc:
        raise ConfigError(f"{source or where}: {exc}") from exc


def load_config(path: str | Path | None = None, **overrides: object) -> Config:
    """Defaults, then the user's TOML file (only the keys it sets), then explicit overrides."""
    config = Config()
    if path is not None:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        if "workers" in data:  # before the [run] table: the same key, read where it is now
            data.setdefault("run", {}).setdefault("workers", data.pop("workers"))
        config = _merge(Config, config, data, str(path))
    if overrides:
        config = _merge(Config, config, {k: v for k, v in overrides.items() if v is not None}, "options")
    return config


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def to_toml(config: Config) -> str:
    """`config` as a TOML file that `load_config` reads back to the same object, each key with its help."""
    top, tables = [], []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            lines = [f"[{f.name}]"]
            for sub in dataclasses.fields(value):
                lines += [f"# {sub.metadata.get('help', '')}", f"{sub.name} = {_toml_value(getattr(value, sub.name))}"]
            tables.append("\n".join(lines))
        else:
            top += [f"# {f.metadata.get('help', '')}", f"{f.name} = {_toml_value(value)}"]
    return "\n".join(top) + "\n\n" + "\n\n".join(tables) + "\n"
