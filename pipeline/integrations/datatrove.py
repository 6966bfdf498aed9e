"""pagewash as a datatrove step: `PagewashExtractor` cleans each document's `text` (HTML or a rendered-text dump)
into article text with pagewash's metadata, in place of datatrove's own extractors.

    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import WarcReader
    from datatrove.pipeline.writers import JsonlWriter
    from pipeline.integrations.datatrove import PagewashExtractor

    LocalPipelineExecutor(pipeline=[
        WarcReader("s3://bucket/crawl/", glob_pattern="*.warc.gz"),
        PagewashExtractor(config="site.toml", exclusion_writer=JsonlWriter("out/rejects")),
        JsonlWriter("out/documents"),
    ], tasks=64).run()

A document keeps its datatrove id and metadata; pagewash's metadata (title, author, date, language, cleaning,
…) is added under the schema's names (pipeline/schema.py), nulls left out. A page without an article is
dropped, counted by reason in the step's stats (`rejected_<reason>`), and written to `exclusion_writer` when
one is given, with `filter_reason` and `filter_detail` in its metadata. Needs `pip install 'pagewash[datatrove]'`.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import nullcontext
from pathlib import Path

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from ..api import KINDS, Cleaner
from ..config import Config


class PagewashExtractor(PipelineStep):
    """Clean each document with pagewash (`pipeline.api.Cleaner`, built once per task)."""

    name = "🧽 pagewash"
    type = "🛢 - EXTRAC"

    def __init__(self, config: Config | str | Path | None = None, rules_dirs: Iterable[str] = (), kind: str = "auto",
                 exclusion_writer=None) -> None:
        """`config`: a `Config` or the path of a TOML file; `rules_dirs`: extra rule folders; `kind`: `auto`
        (sniffed), `html` or `text`; `exclusion_writer`: a datatrove writer for the documents pagewash rejects."""
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        self.cleaner = Cleaner(config, rules_dirs=tuple(rules_dirs))  # rules checked now; pickles small
        self.kind = kind
        self.exclusion_writer = exclusion_writer

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        writer = self.exclusion_writer
        with writer if writer is not None else nullcontext() as rejects:
            for doc in data:
                self.stat_update("total")
                with self.track_time():
                    record = self.cleaner.clean(doc.text, url=doc.metadata.get("url"), kind=self.kind,
                                                fetched_at=doc.metadata.get("date"), name=str(doc.id))
                meta = {key: value for key, value in record["metadata"].items() if value is not None}
                reason = meta.get("filter_reason")
                if reason is not None:
                    self.stat_update(f"rejected_{reason}")
                    if rejects is not None:
                        rejects.write(Document(text=record["text"], id=doc.id, metadata={**doc.metadata, **meta}),
                                      rank)
                    continue
                doc.text = record["text"]
                doc.metadata.update(meta)
                self.stat_update("forwarded")
                self.update_doc_stats(doc)
                yield doc
