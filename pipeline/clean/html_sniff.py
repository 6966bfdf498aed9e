"""Is this input HTML? Decided from its content, with the file name as a hint."""

from __future__ import annotations

import re

_HTML_MARKERS = re.compile(rb"<(?:!doctype\s+html|html|head|body)\b", re.I)
_TAG = re.compile(rb"<(?:div|p|a|span|script|br|li|table|h[1-6]|meta|link)\b", re.I)
HTML_SUFFIXES = (".html", ".htm", ".html.gz", ".htm.gz", ".xhtml")


def looks_like_html(data: bytes, name: str = "") -> bool:
    """Content sniffing: html/head/body markup, or text dense with common tags, near the start.

    The file name is a hint only: an `.html` file with no markup at all is treated as text.
    """
    head = data[:65536]
    if _HTML_MARKERS.search(head) or len(_TAG.findall(head)) >= 10:
        return True
    return name.lower().endswith(HTML_SUFFIXES) and bool(_TAG.search(head))
