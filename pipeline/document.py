"""Records that flow between stages: plain dataclasses, nothing else."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class RawPage:
    """One input as read from disk, before decoding."""

    source_path: str  # path as given to the run, for the user
    rel_path: str  # path relative to the input root, for the stable id
    data: bytes
    meta: dict = field(default_factory=dict)
    reject: Rejected | None = None  # the reader could not read this item: the page is this reject (stage `decode`)

    @classmethod
    def unreadable(cls, source_path: str, rel_path: str, reason: str, detail: str, meta: dict | None = None
                   ) -> RawPage:
        """An input item the reader could not read: no bytes, and the reject that says why."""
        return cls(source_path, rel_path, b"", dict(meta or {}), reject=Rejected(reason, detail))


@dataclass(slots=True)
class LineVerdict:
    """What the cleaner decided about one input line, and why."""

    index: int  # 0-based line number in the decoded input
    text: str  # the line after whitespace and bullet trimming
    kept: bool
    rule_id: str | None  # the rule or signal that decided; None for a kept line
    label: str = ""  # heuristic: good, medium, short, bad, blank; model: body, title, author, date, boilerplate, blank
    probability: float | None = None  # model: the probability of `label` (None from the heuristic)


@dataclass(slots=True)
class LineReport:
    """What a cleaner decided about every line of the page (`verdicts`, in input order) and what it saw to decide
    it (`evidence`: the heuristic's `TextCleaning` with its per-line features, or the model's `ModelCleanResult`
    with its probabilities), for the header stage and `explain`; `wrap`: the column a hard-wrapped dump was wrapped
    at, and `widths`: each of its input lines' printed length (trailing white space off), from which the header reads
    a title printed over two lines or more (both None: not wrapped)."""

    verdicts: list[LineVerdict]
    evidence: object | None = None
    widths: list[int] | None = None
    wrap: int | None = None

    def kept_text(self) -> str:
        return "\n".join(v.text for v in self.verdicts if v.kept)


@dataclass(slots=True)
class Document:
    """The datatrove/dolma envelope: id, text, metadata. The other fields travel between stages only, never
    serialised: the raw page until `Decode` reads it, the line verdicts, a reroute, the dedup fingerprint."""

    id: str
    text: str
    metadata: dict = field(default_factory=dict)
    page: RawPage | None = None  # the input as read, until the Decode stage turns it into text and metadata
    lines: LineReport | None = None  # set by the text cleaners (and ExtractHtml's rules); the header stage reads it
    reroute: str | None = None  # set by a stage: the page goes on through this chain instead (`stages.chains`)
    fingerprint: tuple[str, bytes, int] | None = None  # exact key, MinHash signature, distinct n-grams

    def to_record(self) -> dict:
        return {"id": self.id, "text": self.text, "metadata": self.metadata}


class Rejected(Exception):
    """Raised by a stage when a document yields no article; `reason` is a stable id."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail

    def __reduce__(self):  # crosses process boundaries (a reader's reject in a page, a worker's result) intact
        return (Rejected, (self.reason, self.detail))
