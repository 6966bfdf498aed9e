"""pagewash: turn raw web-page dumps into clean article text with metadata."""

__version__ = "0.1.0"
