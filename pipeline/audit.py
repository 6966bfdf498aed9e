"""What `explain` shows: every line of a page with what was decided about it and by which rule, signal or model.

A text dump's lines are the cleaner's verdicts. An HTML page is shown whole, as rendered text: each line
trafilatura kept is aligned back to the rendered page (difflib over whitespace-normalised lines), a line it
left out is `trafilatura`'s drop, and our rules' drops of its lines follow with their ids. Lines that became
the title, byline or date are `meta`, not drops. Pages are addressed as pagewash's own `source_path` writes
them: `FILE`, `FILE:LINE` (a JSON-lines or Parquet export's page), `FILE@OFFSET` (a web archive's record).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .api import Cleaner
from .clean.decode import decode_bytes, gunzip, is_gzip, normalise_text
from .clean.linkrefs import SIG_LINK_LIST
from .config import ConfigError
from .document import RawPage
from .io.sources import read_inputs
from .io.store import LocalStore

TRAFILATURA = "trafilatura"  # the rule id of a line trafilatura left out of an HTML page
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class AuditLine:
    """One line of the page as shown: its number, text, verdict (`keep`, `drop`, `meta`), the id of what
    decided (a rule, signal, model, or `trafilatura`), the line's class and the model's probability of it."""

    number: int
    text: str
    verdict: str
    rule: str | None
    label: str
    probability: float | None = None
    note: str | None = None  # e.g. an HTML line trafilatura wrote that the rendered page does not hold as such


@dataclass
class Audit:
    """A page's lines, its record (text and metadata), and the reject it became, if any."""

    source: str
    kind: str
    lines: list[AuditLine]
    record: dict
    rejected: str | None = None
    detail: str | None = None
    rules_fired: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> Iterator[dict]:
        """One object a line, then one for the page (its metadata and reject)."""
        for line in self.lines:
            yield {"source": self.source, **asdict(line)}
        yield {"source": self.source, "page": True, "kind": self.kind, "rejected": self.rejected,
               "detail": self.detail, "metadata": self.record["metadata"]}


def pages(target: str, max_bytes: int) -> Iterator[RawPage]:
    """The pages `target` names, streamed: a file's pages, or one of them (`FILE:LINE`, `FILE@OFFSET`); a
    ConfigError when there is none."""
    if target == "-":
        yield RawPage(source_path="-", rel_path="stdin", data=sys.stdin.buffer.read())
        return
    path, line, offset = _address(target)
    if not path.is_file():
        raise ConfigError(f"{target}: no such file")
    wanted = f"{path}:{line}" if line is not None else f"{path}@{offset}" if offset is not None else None
    found = False
    for page in read_inputs(path, path, max_bytes):
        if wanted is None or page.source_path == wanted:
            found = True
            yield page
            if wanted is not None:
                return
    if not found:
        raise ConfigError(f"{target}: no page there (a JSON-lines page is FILE:LINE, an archive's FILE@OFFSET, as "
                          "records' source_path names them)")


def _address(target: str) -> tuple[Path, int | None, int | None]:
    """FILE, FILE:LINE or FILE@OFFSET; a file whose own name ends so is itself."""
    if Path(target).exists():
        return Path(target), None, None
    for sep in (":", "@"):
        head, _, tail = target.rpartition(sep)
        if head and tail.isdigit():
            return Path(head), (int(tail) if sep == ":" else None), (int(tail) if sep == "@" else None)
    return Path(target), None, None


def source_of(record_id: str, out: Path) -> str:
    """The `source_path` of the record `record_id` in the output `out` (any stream, any format)."""
    store = LocalStore(out)
    for stream in ("documents", "duplicates", "rejects"):
        for name in store.names(stream):
            for line in store.lines(stream, name):
                if f'"{record_id}"' in line:
                    record = json.loads(line)
                    if record.get("id") == record_id:
                        return record["metadata"]["source_path"]
    raise ConfigError(f"{out}: no record with id {record_id}")


def audit(cleaner: Cleaner, page: RawPage) -> Audit:
    """The page's lines and what was decided about each."""
    record, doc = cleaner.record_and_document(page)
    meta = record["metadata"]
    verdicts = doc.lines.verdicts if doc.lines else []
    provenance = meta.get("provenance") or {}
    if meta.get("source_format") == "html" and provenance.get("text") == TRAFILATURA:
        lines = _as_metadata(_html_lines(page, verdicts), meta)
    else:
        lines = _as_metadata([_line(v.index + 1, v) for v in verdicts], meta)
    fired: dict[str, int] = {}
    for line in lines:
        if line.verdict != "keep" and line.rule:
            fired[line.rule] = fired.get(line.rule, 0) + 1
    return Audit(page.source_path, meta.get("source_format") or "text", lines, record, meta.get("filter_reason"),
                 meta.get("filter_detail"), dict(sorted(fired.items())))


def _as_metadata(lines: list[AuditLine], meta: dict) -> list[AuditLine]:
    """Lines dropped by trafilatura or by a signal (not by a rule) that hold what became the title, the byline
    or the date: shown as metadata (`meta.title`, `meta.byline`, `meta.date`), the first of each."""
    from .clean.dates import parse_date  # dateparser loads with the page, not with the CLI

    wanted = {}
    if meta.get("title"):
        wanted[_norm(meta["title"])] = "meta.title"
    for author in (meta.get("author") or "").split("; "):
        if author:
            wanted[_norm(author)] = wanted[_norm("by " + author)] = "meta.byline"
    taken: set[str] = set()
    out = []
    for line in lines:
        signal = line.verdict == "drop" and (line.rule == TRAFILATURA or (line.rule or "").startswith("signal.")) \
            and line.rule != SIG_LINK_LIST  # a link's URL holds dates: never the page's metadata
        rule = wanted.get(_norm(line.text)) if signal else None
        if signal and rule is None and meta.get("date") and "meta.date" not in taken and len(line.text) <= 60:
            parsed = parse_date(line.text, meta.get("language"))
            rule = "meta.date" if parsed is not None and parsed.isoformat() == meta["date"] else None
        if rule is not None and rule not in taken:
            taken.add(rule)
            line = dataclasses.replace(line, verdict="meta", rule=rule)
        out.append(line)
    return out


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text).strip().casefold()


def _line(number: int, v, note: str | None = None) -> AuditLine:
    rule = v.rule_id
    verdict = "keep" if v.kept else ("meta" if rule and rule.startswith("meta.") else "drop")
    return AuditLine(number, v.text, verdict, rule, v.label, v.probability, note)


def _html_lines(page: RawPage, verdicts: list) -> list[AuditLine]:
    """The rendered page's lines, trafilatura's kept lines aligned back to them (with our verdicts)."""
    from .stages.html import render_text  # the stages load with the page, not with the CLI

    data = gunzip(page.data, 1 << 30) if is_gzip(page.data) else page.data
    rendered = [line.strip() for line in normalise_text(render_text(decode_bytes(data)[0])).split("\n")
                if line.strip()]
    ours = [v for v in verdicts if v.text.strip()]
    key = [_norm(line) for line in rendered]
    theirs = [_norm(v.text) for v in ours]
    lines: list[AuditLine] = []
    matcher = difflib.SequenceMatcher(None, key, theirs, autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():  # lines numbered once they are all in order
        if op == "equal":
            lines += [_line(0, v) for v in ours[b0:b1]]
            continue
        lines += [AuditLine(0, text, "drop", TRAFILATURA, "", None) for text in rendered[a0:a1]]
        lines += [_line(0, v, "trafilatura's text: not a line of the rendered page") for v in ours[b0:b1]]
    return [dataclasses.replace(line, number=n + 1) for n, line in enumerate(lines)]
