"""Decode: the page's bytes to Unicode text, and its kind (text dump or HTML), sniffed from the content."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from ..base import Stage
from ..clean.decode import decode_bytes, gunzip, is_gzip, normalise_text
from ..clean.html_sniff import looks_like_html
from ..config import Config
from ..document import Document, Rejected
from ..records import document_id

_SNIFF_CHARS = 65536  # as much of the page as looks_like_html reads


@dataclass
class Decode(Stage):
    """The first stage of every page: `Document.page` (the bytes as read) becomes the document's text and
    metadata, and the page goes on through the chain of its kind (`Document.reroute`). An input its reader
    could not read arrives with its reject (`RawPage.reject`), raised here."""

    config: Config
    name: str = "decode"

    def process(self, doc: Document) -> Document:
        page, doc.page = doc.page, None
        if page.reject is not None:
            raise page.reject
        meta = {
            "source_path": page.source_path,
            "source_format": "text",
            "url": page.meta.get("url"),
        }
        if page.meta.get("fetched_at"):
            meta["fetched_at"] = page.meta["fetched_at"]
        meta["hostname"] = urlsplit(meta["url"]).hostname if meta["url"] else None
        if page.meta.get("sitename"):  # a sidecar's word beats anything read from the page
            meta["sitename"] = page.meta["sitename"]
            meta["provenance"] = {"sitename": "sidecar"}
        for name, value in (page.meta.get("fields") or {}).items():  # an export's fields kept (`keep_fields`)
            meta.setdefault(name, value)
        # an export's own id is kept; else the sha1 of the URL, or of the path
        doc_id = page.meta.get("id") or document_id(page.rel_path, meta["url"])
        doc = Document(id=doc_id, text="", metadata=meta)
        data = page.data
        if is_gzip(data):
            data = gunzip(data, self.config.max_input_bytes)
        if len(data) > self.config.max_input_bytes:
            raise Rejected("too_large", f"{len(data)} bytes > max_input_bytes {self.config.max_input_bytes}")
        if not data.strip():
            raise Rejected("empty", "input has no text")
        text, encoding, errors = decode_bytes(data)
        meta["encoding"] = encoding
        meta["encoding_errors"] = errors
        # The kind comes from the content (a .txt holding HTML is HTML), unless the source said it; sniffed
        # on the decoded text, so that UTF-16 HTML is HTML too.
        kind = page.meta.get("kind")
        if kind not in ("html", "text"):
            kind = "html" if looks_like_html(text[:_SNIFF_CHARS].encode("utf-8"), page.rel_path) else "text"
        meta["source_format"] = kind
        # A dump is normalised whole; of an HTML page only what is extracted from it (ExtractHtml), which is
        # a few kilobytes of the page's hundreds
        doc.text = text if kind == "html" else normalise_text(text)
        if not doc.text.strip():
            raise Rejected("empty", "input has no visible text")
        doc.reroute = kind
        return doc
