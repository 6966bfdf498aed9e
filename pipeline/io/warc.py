"""Pages of web archives (WARC, gzip members or plain), streamed with warcio: which records are pages, their
URL, date and HTTP body (decoded as the headers say), and a `bad_warc` reject at the first damage."""

from __future__ import annotations

import gzip
import importlib.util
import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from ..clean.html_sniff import looks_like_html
from ..document import RawPage

log = logging.getLogger("pagewash")


def read_warc(path: Path, rel: str, max_bytes: int, skipped: Counter | None, text: bool = False
              ) -> Iterator[RawPage]:
    """The pages of a web archive, streamed with warcio (`_warc_page` says which records are pages): WARC, or
    ARC (warcio turns its headers into WARC ones), or with `text` a WET file, whose `conversion` records are
    the pages' text (read as dumps).

    Damage ends the reading with one `bad_warc` reject naming the file and the offset of the damaged
    record, and what was read before stands: a record shorter than its Content-Length (its text is never
    a page), a gzip member cut short, bytes after the last whole record, or a file that is not WARC at all.
    """
    from warcio.archiveiterator import ArchiveIterator
    from warcio.bufferedreaders import BufferedReader
    from warcio.exceptions import ArchiveLoadFailed

    if _Brotli.available():
        BufferedReader.DECOMPRESSORS["br"] = _Brotli  # the same class each time: idempotent
    size = path.stat().st_size
    with path.open("rb") as stream:
        arc = path.name.lower().endswith((".arc", ".arc.gz"))
        records = ArchiveIterator(stream, arc2warc=arc)  # ARC headers read as WARC ones: url, date
        while True:
            start = records.offset  # where the record being read starts: the end of the last whole one
            try:
                record = next(records, None)
                if record is None:
                    break
                if record.format != "warc" and not (arc and record.format.startswith("arc")):
                    # a text file parses as a run of ARC records: one reject, not 50
                    raise ArchiveLoadFailed(f"not a WARC record ({record.format.upper()} format)")
                if record.length is None:
                    raise ArchiveLoadFailed("record without a Content-Length")
                url = record.rec_headers.get_header("WARC-Target-URI")
                verdict = _text_page(record, max_bytes) if text else _warc_page(record, url, max_bytes)
                offset = records.get_record_offset()  # reads the record to its end
                cut = _cut_short(records, record)
            except ArchiveLoadFailed as exc:
                yield RawPage.unreadable(str(path), f"{rel}#{start}", "bad_warc", f"{path}@{start}: {exc}")
                return
            except Exception as exc:  # warcio raises whatever a damaged record makes it raise
                if isinstance(exc, OSError) and not isinstance(exc, gzip.BadGzipFile):
                    raise  # the file, not its content: read_inputs makes it `unreadable`
                yield RawPage.unreadable(str(path), f"{rel}#{start}", "bad_warc",
                                         f"{path}@{start}: {type(exc).__name__}: {exc}")
                return
            where = f"{rel}#{offset}"
            meta = {"kind": "text" if text else "html", "url": url,
                    "fetched_at": record.rec_headers.get_header("WARC-Date")}
            if cut is not None:
                yield RawPage.unreadable(str(path), where, "bad_warc", f"{path}@{offset}: {cut}", meta)
                return
            if verdict[0] == "skip":
                log.debug("%s@%s: %s record skipped: %s", path, offset, record.rec_type, verdict[1])
                if skipped is not None:
                    skipped[verdict[1]] += 1
            elif verdict[0] == "reject":
                yield RawPage.unreadable(str(path), where, verdict[1], f"{path}@{offset}: {verdict[2]}", meta)
            else:
                yield RawPage(source_path=f"{path}@{offset}", rel_path=where, data=verdict[1], meta=meta)
    if records.offset < size:  # warcio ends quietly on a record cut inside its headers
        yield RawPage.unreadable(str(path), f"{rel}#{records.offset}", "bad_warc",
                        f"{path}@{records.offset}: {size - records.offset} bytes after the last whole record")


class _Brotli:
    """`Content-Encoding: br` for warcio, which expects brotlipy's API (`decompress`, a settable
    `unused_data`) and fails with an AttributeError on the maintained `brotli` module's Decompressor."""

    unused_data = b""

    def __init__(self) -> None:
        import brotli

        self._decompressor = brotli.Decompressor()

    def decompress(self, data: bytes) -> bytes:
        return self._decompressor.process(data)

    @staticmethod
    def available() -> bool:
        return importlib.util.find_spec("brotli") is not None


def _warc_page(record, url: str | None, max_bytes: int) -> tuple:
    """What a record is: ("page", payload), ("reject", reason, detail) or ("skip", why).

    Pages are `response` records of HTTP with an HTML type, or none and HTML content, and `resource`
    records of the same (their type is the record's). Other records (requests, metadata, `dns:` answers,
    images) are skipped; a response that is not 2xx is an `http_status` reject, a redirect naming its target.
    """
    from warcio.bufferedreaders import BufferedReader

    if record.rec_type not in ("response", "resource"):
        return "skip", record.rec_type
    http = record.http_headers
    content_type = http.get_header("Content-Type") if http is not None else record.content_type
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media.startswith("application/http"):  # a response whose HTTP headers did not parse: no page in it
        return "skip", "no HTTP headers"
    if media and "html" not in media:
        return "skip", media
    unsupported = None
    if http is not None:
        status = http.get_statuscode()
        if not status.startswith("2"):
            target = http.get_header("Location")
            return "reject", "http_status", f"HTTP {http.statusline}" + (f" -> {target}" if target else "")
        encoding = (http.get_header("Content-Encoding") or "").strip().lower()
        if encoding not in ("", "identity") and encoding not in BufferedReader.get_supported_decompressors():
            unsupported = encoding  # warcio passes such a payload through as it is
    data = record.content_stream().read(max_bytes + 1)
    sniffed = looks_like_html(data, urlsplit(url or "").path)
    if unsupported and not sniffed:  # (crawlers often store the decoded body under the original header)
        return "reject", "undecodable", f"Content-Encoding {unsupported!r} is not supported"
    if not media and not sniffed:
        return "skip", "no type, not HTML"
    if len(data) > max_bytes:
        return "reject", "too_large", f"payload > {max_bytes} bytes"
    return "page", data


def _text_page(record, max_bytes: int) -> tuple:
    """A WET record: ("page", its text) for a `conversion` record, else ("skip", its type)."""
    if record.rec_type != "conversion":
        return "skip", record.rec_type
    data = record.content_stream().read(max_bytes + 1)
    if len(data) > max_bytes:
        return "reject", "too_large", f"payload > {max_bytes} bytes"
    return "page", data


def _cut_short(records, record) -> str | None:
    """Why a record just read to its end is not whole, if it is not. (warcio's reader ends a cut record or
    gzip member as if it were whole: its internals say what it does not.)"""
    missing = getattr(record.raw_stream, "limit", 0)
    if missing:
        return f"record cut short: {record.length - missing} of its {record.length} bytes (Content-Length)"
    decompressor = records.reader.decompressor
    if decompressor is not None and not decompressor.eof and records.next_line is None:
        return "gzip member cut short"
    return None
