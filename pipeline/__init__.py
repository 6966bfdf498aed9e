"""pagewash: turn raw web-page dumps into clean article text with metadata.

The Python API (pipeline/api.py): `clean_text`, `clean_html` and `Cleaner`, which return the record
`pagewash extract` prints; `pagewash run` (pipeline/run/) cleans whole corpora incrementally.
"""

__version__ = "0.1.0"

from .api import Cleaner, clean_html, clean_text  # noqa: E402 - after the version, which records.py reads

__all__ = ["Cleaner", "__version__", "clean_html", "clean_text"]
