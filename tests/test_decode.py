"""pipeline.clean.decode: bytes to clean Unicode, gzip limits, binary rejection."""

from __future__ import annotations

import codecs
import gzip
import unicodedata

import pytest
from conftest import SEEDS_RAW
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.clean.decode import decode_bytes, gunzip, is_gzip, normalise_text
from pipeline.document import Rejected

SAMPLE = "Le café « déjà » — naïve ‘quote’ résumé, the committee’s decision on the new façade was announced today."
# English prose whose non-ASCII characters are curly quotes, dashes and é: the Windows-1252 case.
ENGLISH_1252 = (
    "The committee’s “final” decision — announced today after a long meeting — surprised everyone "
    "who had followed the café debate, and the résumé of the new director was read aloud. "
)


def test_utf8_passthrough():
    text, encoding, _errors = decode_bytes(SAMPLE.encode("utf-8"))
    assert text == SAMPLE
    assert encoding == "utf-8"


def test_ascii_is_utf8():
    text, encoding, _errors = decode_bytes(b"plain ascii text\n")
    assert text == "plain ascii text\n"
    assert encoding == "utf-8"


def test_utf8_with_bom_drops_bom():
    text, encoding, _errors = decode_bytes(codecs.BOM_UTF8 + SAMPLE.encode("utf-8"))
    assert text == SAMPLE
    assert not text.startswith("\ufeff")
    assert encoding == "utf-8"


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_with_bom(codec):
    data = SAMPLE.encode(codec)
    if codec == "utf-16-le":
        data = codecs.BOM_UTF16_LE + data
    elif codec == "utf-16-be":
        data = codecs.BOM_UTF16_BE + data
    text, encoding, _errors = decode_bytes(data)
    assert text == SAMPLE
    assert encoding.startswith("utf-16")


def test_utf32_with_bom():
    text, encoding, _errors = decode_bytes(SAMPLE.encode("utf-32"))
    assert text == SAMPLE
    assert encoding.startswith("utf-32")


@pytest.mark.parametrize("repeat", [1, 3, 6])
def test_windows_1252_french_and_english(repeat):
    original = " ".join([SAMPLE] * repeat)
    data = original.encode("cp1252")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    text, encoding, _errors = decode_bytes(data)
    assert text == original
    for word in ("café", "« déjà »", "naïve", "‘quote’", "résumé", "committee’s", "façade", "—"):
        assert word in text
    assert "\ufffd" not in text
    assert encoding == "cp1252"


def test_windows_1252_english_with_curly_quotes():
    original = ENGLISH_1252 * 4
    data = original.encode("cp1252")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # so the charset-detection branch is what is tested
    text, _encoding, _errors = decode_bytes(data)
    assert text == original
    for ch in "’“”—é":
        assert ch in text
    assert "\ufffd" not in text


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x01\x02\x03binary\x00payload" * 10,
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(range(256)),
        b"a short text\x00\x00\x00\x00\x00 with five NULs",
    ],
)
def test_binary_is_rejected(data):
    with pytest.raises(Rejected) as info:
        decode_bytes(data)
    assert info.value.reason == "binary"


def test_many_control_bytes_are_binary():
    data = bytes([1, 2, 3, 4, 5, 6, 7, 8]) * 20 + b"some words"
    with pytest.raises(Rejected) as info:
        decode_bytes(data)
    assert info.value.reason == "binary"


def test_normalise_removes_invisible_characters():
    text = "zero\u200bwidth soft\u00adhyphen bell\x07 nul\x00 del\x7f bom\ufeff word\u2060joiner"
    assert normalise_text(text) == "zerowidth softhyphen bell nul del bom wordjoiner"


def test_normalise_keeps_tab_and_newline():
    assert normalise_text("a\tb\nc") == "a\tb\nc"


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("one\r\ntwo\r\nthree", "one\ntwo\nthree"),
        ("one\rtwo", "one\ntwo"),
        ("one\u2028two\u2029three", "one\ntwo\nthree"),
        ("one\x85two", "one\ntwo"),
        ("one\r\n\r\ntwo", "one\n\ntwo"),
    ],
)
def test_normalise_line_breaks(raw, expected):
    assert normalise_text(raw) == expected


def test_normalise_gives_nfc():
    assert normalise_text("e\u0301") == "é"
    assert normalise_text("cafe\u0301 nai\u0308ve") == "café naïve"
    out = normalise_text("Ångstro\u0308m")
    assert unicodedata.is_normalized("NFC", out)
    assert out == "Ångström"


def test_gunzip_roundtrip():
    payload = SAMPLE.encode("utf-8") * 50
    data = gzip.compress(payload)
    assert is_gzip(data)
    assert not is_gzip(payload)
    assert gunzip(data, limit=len(payload)) == payload


def test_gunzip_truncated_is_bad_gzip():
    data = gzip.compress(SAMPLE.encode("utf-8") * 200)
    with pytest.raises(Rejected) as info:
        gunzip(data[: len(data) // 2], limit=1_000_000)
    assert info.value.reason == "bad_gzip"


def test_gunzip_garbage_after_magic_is_bad_gzip():
    with pytest.raises(Rejected) as info:
        gunzip(b"\x1f\x8b" + b"this is not a deflate stream at all", limit=1_000_000)
    assert info.value.reason == "bad_gzip"


def test_gunzip_bomb_is_too_large():
    limit = 64 * 1024
    bomb = gzip.compress(b"\x00" * (50 * 1024 * 1024))  # 50 MB of zeros in ~50 kB
    assert len(bomb) < limit
    with pytest.raises(Rejected) as info:
        gunzip(bomb, limit=limit)
    assert info.value.reason == "too_large"


def test_gunzip_exactly_at_limit_is_fine():
    payload = b"a" * 4096
    assert gunzip(gzip.compress(payload), limit=4096) == payload


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_decode_and_normalise_only_raise_rejected(data):
    try:
        text, encoding, _errors = decode_bytes(data)
    except Rejected as rejected:
        assert rejected.reason in {"binary", "undecodable"}
        return
    assert isinstance(text, str)
    assert isinstance(encoding, str) and encoding
    out = normalise_text(text)
    assert "\r" not in out
    assert "\u200b" not in out and "\ufeff" not in out
    assert unicodedata.is_normalized("NFC", out)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=500))
def test_utf8_encoded_text_decodes_back(text):
    data = text.encode("utf-8")
    if sum(1 for b in data if b < 32 and b not in (9, 10, 12, 13)) > 0.05 * len(data):
        return  # mostly NUL and control characters: binary, or UTF-16 where NULs alternate with text
    try:
        decoded, _, _ = decode_bytes(text.encode("utf-8"))
    except Rejected as rejected:
        assert rejected.reason == "binary"
        return
    # A leading U+FEFF is read as a BOM, NUL characters are dropped; otherwise UTF-8 round-trips exactly.
    assert decoded == (text[1:] if text.startswith("\ufeff") else text).replace("\x00", "")


# --- UTF-8 with stray bytes, NUL bytes, UTF-16 without a BOM, multi-member gzip ---------------------------

@pytest.mark.parametrize("name", ["000_d2de09946bceaf6b.txt", "001_92dcaf02a642ec9d.txt", "003_dd8aa30334888c44.txt"])
def test_utf8_dump_with_one_stray_byte_stays_utf8(name):
    """One \\xff in a UTF-8 dump used to send the whole page to charset detection (cp1252, mac_iceland:
    `—` became `‚Äî`); it is one U+FFFD now, counted."""
    data = (SEEDS_RAW / name).read_bytes()
    original = data.decode("utf-8")
    cut = data.index(b"\n", len(data) // 2) + 1
    text, encoding, errors = decode_bytes(data[:cut] + b"\xff" + data[cut:])
    assert (encoding, errors) == ("utf-8", 1)
    assert text == original[:len(data[:cut].decode())] + "\ufffd" + original[len(data[:cut].decode()):]


def test_a_genuine_replacement_character_is_not_an_error():
    assert decode_bytes("caf\u00e9 \ufffd ok".encode()) == ("caf\u00e9 \ufffd ok", "utf-8", 0)
    assert decode_bytes("caf\u00e9 \ufffd ok".encode() + b"\xff") == ("caf\u00e9 \ufffd ok\ufffd", "utf-8", 1)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x2FFF, exclude_categories=("Cs",)),
               min_size=1, max_size=300), st.data())
def test_stray_bytes_in_utf8_are_replaced_one_each(text, data):
    """As long as valid multi-byte sequences are not outnumbered, each stray byte is one U+FFFD and the
    rest of the text is what was written."""
    non_ascii = sum(1 for c in text if ord(c) > 127)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=non_ascii)))
    pieces, last = [], 0
    for cut in cuts:
        pieces.append(text[last:cut].encode())
        last = cut
    pieces.append(text[last:].encode())
    decoded, encoding, errors = decode_bytes(b"\xff".join(pieces))
    assert encoding == "utf-8" and errors == len(cuts)
    assert decoded.replace("\ufffd", "") == text.replace("\ufffd", "")


@pytest.mark.parametrize("where", [10, 20_000])
def test_a_few_nul_bytes_are_dropped_wherever_they_are(where):
    """One rule for NUL bytes: a NUL in the first 8 kB used to reject the page as binary, one after it was
    silently stripped; a few NULs are dropped (and counted) wherever they are."""
    body = (SAMPLE + "\n") * 300
    data = body.encode()
    text, encoding, errors = decode_bytes(data[:where] + b"\x00\x00" + data[where:])
    assert (text, encoding, errors) == (body, "utf-8", 2)


def test_many_nul_bytes_are_binary_wherever_they_are():
    body = (SAMPLE + "\n").encode() * 300
    with pytest.raises(Rejected) as info:
        decode_bytes(body + bytes(len(body) // 10) + b"\xff\xd8\x01\x02" * 100)
    assert info.value.reason == "binary"


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("sample", [SAMPLE, "Президент заявил во вторник, что переговоры продолжатся на этой неделе."])
def test_utf16_without_bom_is_detected(codec, sample):
    """UTF-16 without a BOM used to be a `binary` reject; the byte lane of NUL or control bytes gives it away."""
    text, encoding, errors = decode_bytes((sample + "\n").encode(codec) * 5)
    assert (text, encoding, errors) == ((sample + "\n") * 5, codec, 0)


def test_gunzip_reads_every_member():
    """`cat a.gz b.gz` is one gzip file: everything after the first member used to be dropped, silently."""
    first, second = SAMPLE.encode() * 20, ENGLISH_1252.encode() * 20
    assert gunzip(gzip.compress(first) + gzip.compress(second) + b"\x00" * 8, limit=10_000) == first + second


def test_gunzip_bounds_all_members_together():
    member = gzip.compress(b"a" * 3000)
    assert len(gunzip(member * 3, limit=9000)) == 9000
    with pytest.raises(Rejected) as info:
        gunzip(member * 4, limit=9000)
    assert info.value.reason == "too_large"


@pytest.mark.parametrize("tail", [gzip.compress(b"second member")[:-6], b"not gzip at all"])
def test_gunzip_damaged_second_member_is_bad_gzip(tail):
    with pytest.raises(Rejected) as info:
        gunzip(gzip.compress(b"first member") + tail, limit=10_000)
    assert info.value.reason == "bad_gzip"


def test_many_empty_gzip_members_cost_their_length_and_are_bounded():
    """Each member used to copy all that followed it (quadratic: 16 MB of empty members took minutes)."""
    import gzip

    from pipeline.clean.decode import MAX_GZIP_MEMBERS, gunzip

    assert gunzip(gzip.compress(b"") * 40_000 + gzip.compress(b"end"), 1 << 20) == b"end"
    with pytest.raises(Rejected, match="gzip members") as info:
        gunzip(gzip.compress(b"") * (MAX_GZIP_MEMBERS + 1), 1 << 24)
    assert info.value.reason == "bad_gzip"
