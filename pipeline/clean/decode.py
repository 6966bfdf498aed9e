"""Bytes to clean Unicode: BOMs, UTF-8 with stray bytes, charset detection, NFC, no control or zero-width
characters."""

from __future__ import annotations

import codecs
import re
import unicodedata
import zlib

import charset_normalizer

from ..document import Rejected

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# C0/C1 controls except tab and newline, zero-width and invisible format characters, BOM, soft hyphen.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\ufeff\ufff9-\ufffb]"
)
_LINE_BREAKS = re.compile("[\r\u2028\u2029\x85\x0b\x0c]")  # after CRLF -> LF: one character class, a fast scan
_GZIP_MAGIC = b"\x1f\x8b"
_NEAR_TIE = 0.1  # charset_normalizer "chaos" difference within which cp1252 is preferred
_TEXT_BYTES = bytes(range(32, 256)) + b"\t\n\x0c\r"  # deleted from bytes, what remains is NUL and controls
_BINARY_SHARE = 0.05  # more NUL and control bytes than this (in the whole input) and it is not text
_UTF16_QUIET_LANE, _UTF16_LOUD_LANE = 0.05, 0.3  # UTF-16: one byte lane nearly all text, the other not


MAX_GZIP_MEMBERS = 100_000  # a BGZF file of 16 MB has ~1,000; a file of empty members is not a page
_GZIP_FEED = 4096  # compressed bytes given to zlib at a time: what it copies back as `unused_data` is bounded


def gunzip(data: bytes, limit: int) -> bytes:
    """Decompress gzip data, every member of it (`cat a.gz b.gz` is one valid gzip file), refusing more
    than `limit` bytes of output in all (gzip bombs) and more than MAX_GZIP_MEMBERS members. The input is
    fed in small slices of one view, so each member costs its own length, not a copy of all that follows."""
    view = memoryview(data)
    out: list[bytes] = []
    size = pos = 0
    for _member in range(MAX_GZIP_MEMBERS):
        decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
        while not decompressor.eof:
            if pos >= len(view):
                raise Rejected("bad_gzip", "truncated gzip stream")
            feed = view[pos:pos + _GZIP_FEED]
            try:
                chunk = decompressor.decompress(feed, limit + 1 - size)
            except zlib.error as exc:
                raise Rejected("bad_gzip", str(exc)) from exc
            size += len(chunk)
            if size > limit:
                raise Rejected("too_large", f"decompresses to more than {limit} bytes")
            out.append(chunk)
            pos += len(feed) - len(decompressor.unused_data) - len(decompressor.unconsumed_tail)
        if not is_gzip(view[pos:pos + 2]):
            rest = view[pos:]
            if not bytes(rest).strip(b"\x00"):  # the end, or the zero padding some writers add (as gzip reads it)
                return b"".join(out)
            raise Rejected("bad_gzip", f"{len(rest)} bytes after the last gzip member are not gzip")
    raise Rejected("bad_gzip", f"more than {MAX_GZIP_MEMBERS} gzip members")


def is_gzip(data: bytes) -> bool:
    return data[:2] == _GZIP_MAGIC


def _replaced(text: str, data: bytes, encoding: str) -> int:
    """U+FFFD characters the decoding put in, not counting those the input itself holds."""
    try:
        genuine = data.count("\ufffd".encode(encoding))
    except UnicodeEncodeError:  # a legacy charset cannot even hold one
        genuine = 0
    return max(0, text.count("\ufffd") - genuine)


def _decode(data: bytes, encoding: str) -> tuple[str, int]:
    """The text with bad sequences replaced and NUL characters dropped; how many of both."""
    text = data.decode(encoding, errors="replace")
    errors = _replaced(text, data, encoding)
    if "\x00" in text:
        errors += text.count("\x00")
        text = text.replace("\x00", "")
    return text, errors


def _non_text_share(data: bytes) -> float:
    """Share of NUL and other control bytes (not tab, newline, form feed, carriage return)."""
    return len(data.translate(None, _TEXT_BYTES)) / len(data) if data else 0.0


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 has the high byte of every ASCII or Latin character in one byte lane, NUL or a control byte,
    and text bytes in the other: the lane tells LE from BE."""
    sample = data[:8192]
    lanes = [_non_text_share(sample[0::2]), _non_text_share(sample[1::2])]
    if len(sample) < 4 or min(lanes) > _UTF16_QUIET_LANE or max(lanes) < _UTF16_LOUD_LANE:
        return None
    return "utf-16-le" if lanes[1] > lanes[0] else "utf-16-be"


def _mostly_utf8(text: str, errors: int) -> bool:
    """Valid UTF-8 sequences outnumber invalid ones among the non-ASCII characters. Legacy 8-bit text
    almost never forms a valid multi-byte sequence: on the 714 dev dumps encodable as cp1252, >= 99.3 % of
    their non-ASCII bytes are invalid UTF-8; a UTF-8 dump with a stray byte has 2.5 % (median)."""
    non_ascii = len(text) - len(text.encode("ascii", "ignore"))
    return errors <= non_ascii - errors


def decode_bytes(data: bytes) -> tuple[str, str, int]:
    """Return (text, encoding, errors): a BOM wins, then UTF-8, then charset detection.

    Text that is UTF-8 but for a few bytes stays UTF-8, each bad sequence a U+FFFD; only text that is not
    mostly UTF-8 goes to charset detection. A few NUL bytes in text are dropped; input with a high share of
    NUL and control bytes is binary, unless it is UTF-16 without a BOM. `errors` counts the replaced
    sequences and the dropped NUL bytes.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            text, errors = _decode(data[len(bom):], encoding)
            return text, encoding, errors
    encoding = _utf16_without_bom(data)
    if encoding is not None:
        text, errors = _decode(data, encoding)
        if _non_text_share(text.encode("utf-8")) <= _BINARY_SHARE:
            return text, encoding, errors
    if _non_text_share(data) > _BINARY_SHARE:
        raise Rejected("binary", "input holds NUL or control bytes, not text")
    nuls = data.count(0)
    if nuls:
        data = data.replace(b"\x00", b"")
    try:
        return data.decode("utf-8"), "utf-8", nuls
    except UnicodeDecodeError:
        pass
    text, errors = _decode(data, "utf-8")
    if _mostly_utf8(text, errors):
        return text, "utf-8", errors + nuls
    matches = list(charset_normalizer.from_bytes(data[:1_000_000]))
    if not matches:
        raise Rejected("undecodable", "no text encoding fits the bytes")
    best = matches[0]
    # On short Western text the detector cannot tell cp1252 from cp1250/cp1257 (they differ in a few
    # letters); windows-1252 is the web's default legacy encoding (WHATWG), so it wins a near tie.
    for match in matches:
        if match.encoding == "cp1252" and match.chaos <= best.chaos + _NEAR_TIE:
            best = match
            break
    text, errors = _decode(data, best.encoding)
    return text, best.encoding, errors + nuls


def normalise_text(text: str) -> str:
    """NFC, Unix line breaks, no control or zero-width characters."""
    if "\r\n" in text:
        text = text.replace("\r\n", "\n")
    text = _LINE_BREAKS.sub("\n", text)
    text = _INVISIBLE.sub("", text)
    return unicodedata.normalize("NFC", text)
