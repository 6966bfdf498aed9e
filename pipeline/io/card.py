"""The output's dataset card, `OUT/README.md`: what Hugging Face `datasets` reads to load the output as a dataset
(one config per stream, and the record schema's features), so that `datasets.load_dataset("OUT", "documents")`
loads every shard with one fixed schema, even a shard where a field is null in every record."""

from __future__ import annotations

import json

from ..layout import STREAMS
from ..schema import SCHEMA_VERSION, card_features

CARD = "README.md"


def _yaml(value: object, indent: int = 0) -> list[str]:
    """Block YAML of the lists, mappings and scalars a card holds (scalars as JSON strings: valid YAML)."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)):
                lines.append(f"{pad}{key}:")
                lines += _yaml(item, indent + 2)
            else:
                lines.append(f"{pad}{key}: {json.dumps(item)}")
    elif isinstance(value, list):
        for item in value:
            sub = _yaml(item, indent + 2)
            lines.append(f"{pad}- {sub[0].lstrip()}")
            lines += sub[1:]
    else:
        lines.append(f"{pad}{json.dumps(value)}")
    return lines


def dataset_card(data_suffix: str = "jsonl") -> str:
    """The card's text: YAML front matter (configs by stream, features), then a few lines for people."""
    front = {
        "configs": [{"config_name": stream,
                     "data_files": [{"split": "train", "path": f"{stream}/part-*.{data_suffix}"}],
                     **({"default": True} if stream == "documents" else {})} for stream in STREAMS],
        "dataset_info": [{"config_name": stream, "features": card_features()} for stream in STREAMS],
    }
    body = (f"# pagewash output\n\nClean article text written by pagewash (record schema version {SCHEMA_VERSION}). "
            "Streams: `documents` (kept articles), `duplicates` (near-duplicates not kept, with `duplicate_of`), "
            "`rejects` (pages with no article or that failed, with `filter_reason`).\n\n"
            "```python\nimport datasets\n"
            "documents = datasets.load_dataset(\"path/to/this/folder\", \"documents\")\n```\n")
    return "---\n" + "\n".join(_yaml(front)) + "\n---\n\n" + body
