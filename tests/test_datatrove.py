"""pagewash as a datatrove step (pipeline/integrations/datatrove.py), inside a real LocalPipelineExecutor."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from conftest import ARTICLE, SEEDS_RAW

datatrove = pytest.importorskip("datatrove")

from datatrove.data import Document  # noqa: E402
from datatrove.executor import LocalPipelineExecutor  # noqa: E402
from datatrove.pipeline.writers import JsonlWriter  # noqa: E402

from pipeline.integrations.datatrove import PagewashExtractor  # noqa: E402

HTML = ("<html><head><title>Council Approves Harbour Plan</title></head><body><nav>Home | News | Sport</nav><article>"
        + "".join(f"<p>{line}</p>" for line in ARTICLE) + "</article><footer>© 2025 Example</footer></body></html>")


def _read(folder: Path) -> list[dict]:
    return [json.loads(line) for path in sorted(folder.glob("*.jsonl.gz"))
            for line in gzip.open(path, "rt", encoding="utf-8")]


def test_the_step_cleans_documents_in_a_datatrove_pipeline(tmp_path: Path):
    seed = sorted(SEEDS_RAW.glob("*.txt"))[0].read_text(encoding="utf-8")

    def reader(data, rank: int = 0, world_size: int = 1):
        yield Document(text=HTML, id="html-1", metadata={"url": "https://example.com/harbour"})
        yield Document(text=seed, id="dump-1", metadata={"url": "https://example.com/hk"})
        yield Document(text="Home\nAbout\nContact\n", id="menu-1", metadata={})

    LocalPipelineExecutor(pipeline=[
        reader,
        PagewashExtractor(exclusion_writer=JsonlWriter(str(tmp_path / "rejects"))),
        JsonlWriter(str(tmp_path / "documents")),
    ], tasks=1, workers=1, logging_dir=str(tmp_path / "logs")).run()
    docs = {d["id"]: d for d in _read(tmp_path / "documents")}
    assert set(docs) == {"html-1", "dump-1"}  # datatrove's ids stay
    html = docs["html-1"]
    assert "Home | News" not in html["text"] and ARTICLE[1][:40] in html["text"]
    assert html["metadata"]["title"] == "Council Approves Harbour Plan"
    assert html["metadata"]["url"] == "https://example.com/harbour" and html["metadata"]["language"] == "en"
    assert docs["dump-1"]["metadata"]["source_format"] == "text" and docs["dump-1"]["metadata"]["cleaning"]
    [reject] = _read(tmp_path / "rejects")
    assert reject["id"] == "menu-1" and reject["metadata"]["filter_reason"] == "no_article"
    stats = json.loads((tmp_path / "logs" / "stats.json").read_text(encoding="utf-8"))
    ours = next(step for step in stats if "pagewash" in step["name"])
    assert (ours["stats"]["forwarded"], ours["stats"]["total"], ours["stats"]["rejected_no_article"]) == (2, 3, 1)
