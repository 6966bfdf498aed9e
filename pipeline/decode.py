"""Bytes to clean Unicode: BOMs, charset detection, NFC, no control or zero-width characters."""

from __future__ import annotations

import codecs
import re
import unicodedata
import zlib

import charset_normalizer

from .document import Rejected

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


def gunzip(data: bytes, limit: int) -> bytes:
    """Decompress gzip data, refusing more than `limit` bytes of output (gzip bombs)."""
    decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
    try:
        out = decompressor.decompress(data, limit + 1)
    except zlib.error as exc:
        raise Rejected("bad_gzip", str(exc)) from exc
    if len(out) > limit:
        raise Rejected("too_large", f"decompresses to more than {limit} bytes")
    if not decompressor.eof:
        raise Rejected("bad_gzip", "truncated gzip stream")
    return out


def is_gzip(data: bytes) -> bool:
    return data[:2] == _GZIP_MAGIC


def _looks_binary(data: bytes) -> bool:
    sample = data[:8192]
    if not sample:
        return False
    if b"\x00" in sample:
        return True
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13))
    return controls / len(sample) > 0.05


def decode_bytes(data: bytes) -> tuple[str, str]:
    """Return (text, encoding). A BOM wins, then strict UTF-8, then charset detection."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom):].decode(encoding, errors="replace"), encoding
    if _looks_binary(data):
        raise Rejected("binary", "input holds NUL or control bytes, not text")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
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
    return data.decode(best.encoding, errors="replace"), best.encoding


def normalise_text(text: str) -> str:
    """NFC, Unix line breaks, no control or zero-width characters."""
    if "\r\n" in text:
        text = text.replace("\r\n", "\n")
    text = _LINE_BREAKS.sub("\n", text)
    text = _INVISIBLE.sub("", text)
    return unicodedata.normalize("NFC", text)
