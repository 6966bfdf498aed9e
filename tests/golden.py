"""The golden run: what `pagewash run` writes for a fixed corpus of real pages, pinned record by record.

The corpus is built from ../shared (never copied into the project): WCXB development pages as HTML and as
text dumps of both renderings, the five seed dumps, train pages of every source as a JSONL export (HTML
and text records, with URLs), and train pages as a WARC (gzip members, written with warcio). It is cleaned
by one `run` (one process, the run's stamp pinned), and each field of each record is hashed (SHA-256, 16
hex digits), leaving out what names the machine or the release (`source_path`'s folder, which is the
test's temporary folder, and `pipeline_version`).

`tests/golden/run_records.json` holds the hashes. A refactor must leave them as they are; a change that
means to alter output (a better rule, a fixed bug) updates them, after looking at what changed:

    .venv/bin/python tests/golden.py --diff     # which records differ, and in which fields
    .venv/bin/python tests/golden.py --update   # write the new hashes
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import sys
import tempfile
import uuid
from pathlib import Path

from conftest import shard_files, shard_lines

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PAGEWASH_SHARED", ROOT.parent / "shared"))
FIXTURE = ROOT / "tests" / "golden" / "run_records.json"
STAMP = "1700000000"  # SOURCE_DATE_EPOCH of the golden run
STREAMS = ("documents", "duplicates", "rejects")
_NS = uuid.UUID("6f1c2a4e-0000-4000-8000-000000000000")  # record ids of the golden WARC: fixed sizes, offsets


def _every(paths: list[Path], count: int) -> list[Path]:
    """`count` of `paths` (sorted), spread evenly over them: the same ones on every machine."""
    paths = sorted(paths)
    step = max(len(paths) // count, 1)
    return paths[::step][:count]


def build_corpus(raw: Path, shared: Path = SHARED) -> int:
    """Write the golden corpus into `raw`; returns the number of pages."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    raw.mkdir(parents=True, exist_ok=True)
    wcxb = shared / "bench" / "wcxb-dev"
    pages = 0
    for path in _every(list((wcxb / "html").glob("*.html.gz")), 40):
        (raw / "html" / path.name).parent.mkdir(exist_ok=True)
        (raw / "html" / path.name).write_bytes(path.read_bytes())
        pages += 1
    for renderer in ("bs4", "inscriptis"):
        folder = raw / "dumps" / renderer
        folder.mkdir(parents=True, exist_ok=True)
        for path in _every([p for p in (wcxb / "dumps" / renderer).iterdir() if p.is_file()], 30):
            (folder / path.name).write_bytes(path.read_bytes())
            pages += 1
    (raw / "seeds").mkdir(exist_ok=True)
    for path in sorted((shared / "seeds" / "raw").iterdir()):
        (raw / "seeds" / path.name).write_bytes(path.read_bytes())
        pages += 1
    train = shared / "bench" / "train"
    by_source: dict[str, list[Path]] = {}
    for path in sorted((train / "gold").glob("*.json")):
        by_source.setdefault(path.stem.split("-")[0], []).append(path)
    chosen = [p for source in sorted(by_source) for p in _every(by_source[source], 8)]
    export, archive = chosen[::2], chosen[1::2]
    with open(raw / "export.jsonl", "w", encoding="utf-8") as out:
        for k, gold_path in enumerate(export):
            gold = json.loads(gold_path.read_text(encoding="utf-8"))
            html = gzip.decompress((train / "html" / f"{gold['id']}.html.gz").read_bytes()).decode("utf-8", "replace")
            # every third record a text one (the gold text itself stands in for a rendered dump)
            record = {"url": gold.get("url"), "text": gold["text"]} if k % 3 == 2 else {"url": gold.get("url"),
                                                                                         "html": html}
            out.write(json.dumps({key: v for key, v in record.items() if v is not None}) + "\n")
            pages += 1
    with open(raw / "crawl.warc.gz", "wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        for k, gold_path in enumerate(archive):
            gold = json.loads(gold_path.read_text(encoding="utf-8"))
            body = (train / "html" / f"{gold['id']}.html.gz").read_bytes()
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
            url = gold.get("url") or f"https://example.org/page/{k}"
            headers = {"WARC-Date": "2020-01-02T03:04:05Z", "WARC-Record-ID": f"<urn:uuid:{uuid.uuid5(_NS, url)}>"}
            record = writer.create_warc_record(url, "response", payload=io.BytesIO(gzip.decompress(body)),
                                               http_headers=http, warc_headers_dict=headers)
            writer.write_record(record)
            pages += 1
    return pages


def _digest(line: str, raw: Path) -> dict[str, str]:
    """A short hash of each field of a record (`text`, `metadata.title`, …), so that a difference names its
    fields."""
    record = json.loads(line)
    meta = record.pop("metadata", None) or {}
    if isinstance(meta.get("source_path"), str):
        meta["source_path"] = meta["source_path"].replace(str(raw), "RAW")
    meta.pop("pipeline_version", None)
    fields = {**record, **{f"metadata.{k}": v for k, v in meta.items()}}
    return {k: hashlib.sha256(json.dumps(v, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]
            for k, v in sorted(fields.items())}


def _records(out: Path) -> dict[str, str]:
    """Every record line of the output by `STREAM/id` (a repeated id numbered: `#2`)."""
    found: dict[str, str] = {}
    for stream in STREAMS:
        for path in shard_files(out / stream):
            for line in shard_lines(path):  # lines end at \n alone: U+2028 stays in text
                if line:
                    key = f"{stream}/{json.loads(line)['id']}"
                    n = 1
                    while (f"{key}#{n}" if n > 1 else key) in found:
                        n += 1
                    found[f"{key}#{n}" if n > 1 else key] = line
    return found


def golden_run(tmp: Path, shared: Path = SHARED) -> tuple[int, dict[str, dict[str, str]], dict[str, str]]:
    """Build the corpus under `tmp`, run it; (pages, record hashes, record lines), by `STREAM/id`."""
    from pipeline.config import load_config
    from pipeline.run.corpus import run_corpus

    raw, out = tmp / "raw", tmp / "out"
    pages = build_corpus(raw, shared)
    previous = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = STAMP
    try:
        run_corpus(raw, out, load_config(), workers=0, progress=False)
    finally:
        if previous is None:
            del os.environ["SOURCE_DATE_EPOCH"]
        else:
            os.environ["SOURCE_DATE_EPOCH"] = previous
    lines = _records(out)
    return pages, {key: _digest(line, raw) for key, line in lines.items()}, lines


def load_fixture() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def differences(expected: dict[str, dict], got: dict[str, dict]) -> dict[str, list[str]]:
    """For each record that is new, gone or changed: what (`new`, `gone`, or the fields that changed)."""
    out = {}
    for key in sorted(set(expected) | set(got)):
        if key not in expected:
            out[key] = ["new"]
        elif key not in got:
            out[key] = ["gone"]
        elif expected[key] != got[key]:
            a, b = expected[key], got[key]
            out[key] = sorted(f for f in set(a) | set(b) if a.get(f) != b.get(f))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--update", action="store_true", help="write the hashes of this run to the fixture")
    parser.add_argument("--diff", action="store_true", help="show the fields of each record that changed")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        pages, got, lines = golden_run(Path(tmp))
        expected = load_fixture()["records"] if FIXTURE.exists() else {}
        changed = differences(expected, got)
        print(f"{pages} pages, {len(got)} records; {len(changed)} differ from {FIXTURE.relative_to(ROOT)}")
        if args.diff:
            for key, what in changed.items():
                print(f"  {key}: {', '.join(what)}")
        if args.update:
            FIXTURE.parent.mkdir(parents=True, exist_ok=True)
            FIXTURE.write_text(json.dumps({"pages": pages, "records": dict(sorted(got.items()))}, indent=0,
                                          sort_keys=True) + "\n", encoding="utf-8")
            print(f"wrote {FIXTURE.relative_to(ROOT)}")
    return 0 if args.update or not changed else 1


if __name__ == "__main__":
    sys.exit(main())
