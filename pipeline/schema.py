"""The record schema: every field of every record `run` writes, in every stream, with one fixed type.

A field pagewash could not fill is null, never absent and never of another type, so that any set of shards
(documents, duplicates, rejects; one run or many; JSON lines or Parquet) loads as one table: a pyarrow dataset
with `arrow_schema()`, or `datasets.load_dataset(..., features=...)` (the output's `README.md` declares the
same features, so `datasets.load_dataset("OUT", "documents")` needs none). The README's table of the record
schema is checked against `FIELDS` and `METADATA` by the tests.

Version history (`metadata.schema_version`):
1. (unversioned, before 2026-12-06) `cleaning.rules_hit` an object keyed by rule id; absent `source`,
   `added`, `created`; `provenance` only the keys that were set; `filter_*` only in rejects.
2. `cleaning.rules_hit` a list of `{rule, lines, words}`; `source`, `added`, `created`; every key present.
"""

from __future__ import annotations

from types import MappingProxyType

SCHEMA_VERSION = 2

# (name, type, what it is): types are "string", "int", "float", "strings" (a list of strings), or the name of
# a struct below
FIELDS = (
    ("id", "string", "stable id: sha1 of the URL when known, else of the input path relative to the input root"),
    ("text", "string", "the article (a reject: the first 2,000 characters of what was read, or empty)"),
    ("source", "string", "where the page came from: `--source`, default the input folder's name (dolma)"),
    ("added", "string", "when pagewash processed it: the run's start, UTC, ISO 8601 (dolma)"),
    ("created", "string", "when the page was published (`date`), else fetched (`fetched_at`), else null (dolma)"),
    ("metadata", "metadata", "everything else, below"),
)
METADATA = (
    ("source_path", "string", "the input file; `FILE:LINE` for a JSONL export, `FILE@OFFSET` for a WARC record"),
    ("source_format", "string", "`text` (a rendered-text dump) or `html`, as sniffed from the content"),
    ("url", "string", "from the sidecar, the export or the archive record; else the page's canonical URL"),
    ("fetched_at", "string", "when the page was fetched, as the sidecar, export or archive said"),
    ("title", "string", "the article's title"),
    ("author", "string", "its byline (several authors joined by `; `)"),
    ("date", "string", "its publication date, `YYYY-MM-DD`"),
    ("sitename", "string", "the site's name"),
    ("hostname", "string", "the URL's host"),
    ("language", "string", "ISO 639-1 code of the article's language"),
    ("language_score", "float",
     "the engine's probability of that language, among its own (langdetect 55, fastText 176)"),
    ("word_count", "int", "words of the article (characters in scripts written without spaces)"),
    ("content_hash", "string", "the dedup exact key: hash of the normalised text"),
    ("duplicate_of", "string", "a duplicate: the id of the document kept in its cluster"),
    ("dup_cluster", "string", "the id of the cluster's kept document (its own id when it is kept)"),
    ("similarity", "float", "a duplicate: its estimated similarity to the kept document"),
    ("superseded_by", "string", "a record a newer capture of the same URL replaced: that capture's input"),
    ("categories", "strings", "categories from the page's markup (HTML)"),
    ("tags", "strings", "tags from the page's markup (HTML)"),
    ("cleaning", "cleaning", "what the cleaner did: lines in, lines kept, and what each rule or signal dropped"),
    ("provenance", "provenance", "which method found each field"),
    ("encoding", "string", "the encoding the bytes were read as"),
    ("encoding_errors", "int", "bytes that could not be decoded (each became U+FFFD)"),
    ("text_chars", "int", "a reject whose text was cut: the length of the whole text"),
    ("filter_reason", "string", "a reject: why (README, *Reject reasons*)"),
    ("filter_detail", "string", "a reject: the details (file, line, offset, the error)"),
    ("filter_stage", "string", "a reject: the stage that rejected it"),
    ("pipeline_version", "string", "the pagewash version that wrote the record"),
    ("processed_at", "string", "the run's start, UTC, ISO 8601"),
    ("schema_version", "int", f"this schema's version ({SCHEMA_VERSION})"),
)
STRUCTS = MappingProxyType({
    "cleaning": (("lines_in", "int"), ("lines_kept", "int"), ("rules_hit", "rule_hits")),
    "rule_hit": (("rule", "string"), ("lines", "int"), ("words", "int")),
    "provenance": (("text", "string"), ("title", "string"), ("author", "string"), ("date", "string"),
                   ("sitename", "string"), ("hostname", "string")),
})
METADATA_KEYS = tuple(name for name, _type, _help in METADATA)


def conform(record: dict) -> dict:
    """`record` with every field of the schema, in order, null where unknown: `metadata`'s and its structs'
    keys completed; keys outside the schema (a scraper export's `--keep-fields`) follow in sorted order."""
    meta = record.get("metadata") or {}
    out_meta = {key: meta.get(key) for key in METADATA_KEYS}
    for struct in ("cleaning", "provenance"):
        if isinstance(out_meta[struct], dict):
            out_meta[struct] = {name: out_meta[struct].get(name) for name, _type in STRUCTS[struct]}
    for key in sorted(meta):
        if key not in out_meta:
            out_meta[key] = meta[key]
    out_meta["schema_version"] = SCHEMA_VERSION
    out = {name: record.get(name) for name, _type, _help in FIELDS}
    out["metadata"] = out_meta
    return out


def _arrow_type(kind: str):
    import pyarrow as pa

    if kind == "string":
        return pa.string()
    if kind == "int":
        return pa.int64()
    if kind == "float":
        return pa.float64()
    if kind == "strings":
        return pa.list_(pa.string())
    if kind == "rule_hits":
        return pa.list_(_arrow_type("rule_hit"))
    return pa.struct([(name, _arrow_type(sub)) for name, sub in STRUCTS[kind]])


def arrow_schema(extra: tuple[str, ...] = ()):
    """The pyarrow schema of a record; `extra`: metadata keys kept from the input (`--keep-fields`), as strings."""
    import pyarrow as pa

    meta = [(name, _arrow_type(kind)) for name, kind, _help in METADATA]
    meta += [(name, pa.string()) for name in sorted(extra) if name not in METADATA_KEYS]
    return pa.schema([(name, pa.struct(meta) if kind == "metadata" else _arrow_type(kind))
                      for name, kind, _help in FIELDS])


def _feature(name: str, kind: str) -> dict:
    """One field as a dataset card's YAML declares it (`datasets`' own `_to_yaml_dict` form)."""
    if kind in ("string", "float", "int"):
        return {"name": name, "dtype": {"string": "string", "float": "float64", "int": "int64"}[kind]}
    if kind == "strings":
        return {"name": name, "list": "string"}
    if kind == "rule_hits":
        return {"name": name, "list": [_feature(n, k) for n, k in STRUCTS["rule_hit"]]}
    return {"name": name, "struct": [_feature(n, k) for n, k in STRUCTS[kind]]}


def card_features(extra: tuple[str, ...] = ()) -> list[dict]:
    """The `dataset_info.features` of the output's dataset card (README.md)."""
    meta = [_feature(name, kind) for name, kind, _help in METADATA]
    meta += [_feature(name, "string") for name in sorted(extra) if name not in METADATA_KEYS]
    return [{"name": name, "struct": meta} if kind == "metadata" else _feature(name, kind)
            for name, kind, _help in FIELDS]


def features(extra: tuple[str, ...] = ()):
    """The schema as Hugging Face `datasets.Features`, for `load_dataset("json", data_files=…, features=…)` over
    shards of any runs (without it, `datasets` infers each file's types, and a field null in every record of one
    shard and a timestamp in another cannot be reconciled). Needs `datasets`."""
    import datasets

    return datasets.Features.from_arrow_schema(arrow_schema(extra))
