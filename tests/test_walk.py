"""Finding inputs (pipeline/sources.py `walk_inputs`) and keeping them in the state (pipeline/state.py): bad
directory entries, names that are not UTF-8, unreadable folders, a run's own folders under RAW, and a fuzz
test over random trees: a run always finishes with every input in exactly one stream."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from conftest import ARTICLE, SEEDS_RAW, shard_files, shard_lines
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import load_config
from pipeline.io.sources import walk_inputs
from pipeline.io.writer import dump_record
from pipeline.records import document_id
from pipeline.run.corpus import run_corpus
from pipeline.state import STATE_DIR, RunState, key_of, sql_key

STREAMS = ("documents", "duplicates", "rejects")
LATIN1 = os.fsdecode(b"caf\xe9.txt")  # a file name that is not UTF-8, as Python gives it: `caf\udce9.txt`
ROOT_USER = os.geteuid() == 0  # root reads every file whatever its permissions


def records(out: Path) -> dict[str, list[dict]]:
    """The records of each stream; every shard file must be valid UTF-8."""
    found = {}
    for stream in STREAMS:
        # JSONL lines end at \n alone: splitlines() would also split at U+0085 or U+2028 inside a name
        found[stream] = [json.loads(line) for shard in shard_files(out / stream) for line in shard_lines(shard)]
    return found


def source_paths(out: Path) -> Counter:
    return Counter(r["metadata"]["source_path"] for stream in records(out).values() for r in stream)


def run(raw: Path, out: Path, **config):
    return run_corpus(raw, out, load_config(max_error_rate=1.0, **config), workers=0, progress=False)


def seed(n: int) -> bytes:
    return sorted(SEEDS_RAW.glob("*.txt"))[n].read_bytes()


# --- serialising and naming what a non-UTF-8 name gives ----------------------------------------------------

def test_lone_surrogates_are_written_as_escapes_and_read_back():
    record = {"id": "x", "text": "café —", "metadata": {"source_path": f"/raw/{LATIN1}"}}
    line = dump_record(record)
    line.encode("utf-8")  # valid UTF-8: no lone surrogate left
    assert "\\udce9" in line and "café —" in line  # other text stays as it was
    assert json.loads(line) == record
    assert os.fsencode(json.loads(line)["metadata"]["source_path"]) == b"/raw/caf\xe9.txt"
    assert dump_record({"a": "é"}) == json.dumps({"a": "é"}, ensure_ascii=False, separators=(",", ":"))


def test_document_id_of_a_name_that_is_not_utf8():
    assert document_id("a/b.txt") == hashlib.sha1(b"a/b.txt").hexdigest()  # ids of valid names unchanged
    assert document_id(LATIN1) == hashlib.sha1(b"caf\xe9.txt").hexdigest()  # the name's own bytes
    assert document_id("x", "https://example.org/\ud800") != document_id("x")  # a JSON lone surrogate: no crash


def test_state_keys_that_are_not_utf8_are_blobs_and_valid_ones_unchanged(tmp_path: Path):
    assert sql_key("a/é.txt") == "a/é.txt" and sql_key(LATIN1) == b"caf\xe9.txt"
    assert key_of(sql_key(LATIN1)) == LATIN1 and key_of("a/é.txt") == "a/é.txt"
    # a BLOB never equals a text: no key can take another's place
    db = sqlite3.connect(":memory:")
    assert db.execute("SELECT ? = ?", (b"abc", "abc")).fetchone() == (0,)


# --- bad directory entries -----------------------------------------------------------------------------

def test_bad_entries_become_rejects_and_the_run_completes(tmp_path: Path, caplog):
    """A name that is not UTF-8, a looping and a dangling link, a FIFO and a link to a folder: each crashed
    the run (UnicodeEncodeError in the state, ELOOP) or is skipped; the rest of the run completes, and the
    non-UTF-8 name round-trips through the state and `source_path`."""
    raw = tmp_path / "raw"
    (raw / "sub").mkdir(parents=True)
    (raw / "a.txt").write_bytes(seed(0))
    with open(os.fsencode(raw) + b"/caf\xe9.txt", "wb") as handle:
        handle.write(seed(1))
    (raw / "sub" / "b.txt").write_bytes(seed(2))
    (raw / "loop.txt").symlink_to("loop.txt")
    (raw / "dangling.html").symlink_to("nowhere.html")
    (raw / "folder.txt").symlink_to("sub", target_is_directory=True)
    os.mkfifo(raw / "fifo.txt")
    out = tmp_path / "out"
    result = run(raw, out)
    assert result.report["inputs"]["seen"] == 5 and result.report["inputs"]["failed"] == 2
    found = records(out)
    assert sorted(r["metadata"]["source_path"] for r in found["documents"]) == sorted(
        str(raw / name) for name in ("a.txt", LATIN1, "sub/b.txt"))
    details = sorted((r["metadata"]["filter_reason"], r["metadata"]["filter_detail"]) for r in found["rejects"])
    assert details == [("unreadable", f"{raw / 'dangling.html'}: No such file or directory (ENOENT)"),
                       ("unreadable", f"{raw / 'loop.txt'}: Too many levels of symbolic links (ELOOP)")]
    assert "fifo.txt: not a regular file" in caplog.text
    state = sqlite3.connect(out / STATE_DIR / "state.sqlite")
    assert state.execute("SELECT status FROM inputs WHERE path = ?", (b"caf\xe9.txt",)).fetchone() == ("done",)
    again = run(raw, out)  # nothing new: the name is found in the state as it was stored
    assert again.report["inputs"]["skipped"] == 3 and again.report["inputs"]["new"] == 0
    assert again.report["inputs"]["deleted"] == 0
    assert source_paths(out) == Counter(r["metadata"]["source_path"] for s in found.values() for r in s)


def test_a_changed_input_with_a_non_utf8_name_is_retracted(tmp_path: Path):
    raw = tmp_path / "raw"
    raw.mkdir()
    name = os.fsencode(raw) + b"/caf\xe9.txt"
    with open(name, "wb") as handle:
        handle.write(seed(1))
    out = tmp_path / "out"
    run(raw, out)
    with open(name, "wb") as handle:
        handle.write(seed(3))
    result = run(raw, out)
    assert result.report["inputs"]["changed"] == 1
    docs = records(out)["documents"]
    assert len(docs) == 1 and docs[0]["metadata"]["source_path"] == str(raw / LATIN1)


def _deny(monkeypatch, *folders: Path | str) -> None:
    """`os.scandir` of each of `folders` fails as for a folder without read permission (tests run as root
    here, which reads it anyway)."""
    real, denied = os.scandir, {os.fspath(folder) for folder in folders}

    def scandir(path=".", *args):
        if not isinstance(path, int) and os.fspath(path) in denied:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path, *args)

    monkeypatch.setattr(os, "scandir", scandir)


def test_an_unreadable_folder_is_one_reject_and_its_inputs_stay(tmp_path: Path, monkeypatch):
    """A folder that cannot be read is one `unreadable` reject; the records of its inputs that earlier runs
    wrote are not retracted as deleted, and once it is readable again its reject goes."""
    raw = tmp_path / "raw"
    (raw / "sub").mkdir(parents=True)
    (raw / "a.txt").write_bytes(seed(0))
    (raw / "sub" / "b.txt").write_bytes(seed(1))
    (raw / "sub" / "c.txt").write_bytes(seed(2))
    out = tmp_path / "out"
    run(raw, out)
    before = records(out)["documents"]
    assert len(before) == 3

    _deny(monkeypatch, raw / "sub")
    result = run(raw, out)
    assert result.report["inputs"]["deleted"] == 0 and result.report["inputs"]["failed"] == 1
    after = records(out)
    assert after["documents"] == before
    assert [(r["metadata"]["filter_reason"], r["metadata"]["filter_detail"]) for r in after["rejects"]] == [
        ("unreadable", f"{raw / 'sub'}: Permission denied (EACCES)")]
    assert run(raw, out).report["inputs"]["deleted"] == 0  # still unreadable: still one reject
    assert len(records(out)["rejects"]) == 1

    monkeypatch.undo()
    result = run(raw, out)
    assert result.report["inputs"]["deleted"] == 0 and result.report["inputs"]["skipped"] == 3
    assert records(out) == {"documents": before, "duplicates": [], "rejects": []}


def test_an_unreadable_root_retracts_nothing(tmp_path: Path, monkeypatch):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.txt").write_bytes(seed(0))
    out = tmp_path / "out"
    run(raw, out)
    _deny(monkeypatch, raw)
    result = run(raw, out)
    assert result.report["inputs"]["deleted"] == 0
    assert len(records(out)["documents"]) == 1 and len(records(out)["rejects"]) == 1


@pytest.mark.skipif(ROOT_USER, reason="root reads a folder whatever its permissions (the test above simulates it)")
def test_a_folder_without_permissions_is_one_reject(tmp_path: Path):
    raw = tmp_path / "raw"
    (raw / "sub").mkdir(parents=True)
    (raw / "a.txt").write_bytes(seed(0))
    (raw / "sub" / "b.txt").write_bytes(seed(1))
    out = tmp_path / "out"
    run(raw, out)
    (raw / "sub").chmod(0)
    try:
        result = run(raw, out)
    finally:
        (raw / "sub").chmod(0o755)
    assert result.report["inputs"]["deleted"] == 0
    assert len(records(out)["documents"]) == 2 and len(records(out)["rejects"]) == 1


# --- the run's own folders ------------------------------------------------------------------------------

@pytest.mark.parametrize("spelling", ["inside", "same", "dotdot", "symlink"])
def test_a_run_never_reads_its_own_output(tmp_path: Path, spelling: str):
    """`run nest -o nest/cleaned` and `run raw -o raw` read their own shards back as a JSONL export on every
    run; however OUT is spelled (`..`, a symbolic link), its streams and state are not inputs."""
    raw = tmp_path / "nest"
    (raw / "x").mkdir(parents=True)
    (raw / "a.txt").write_bytes(seed(0))
    (raw / "b.txt").write_bytes(seed(1))
    (tmp_path / "alias").symlink_to(raw, target_is_directory=True)
    out = {"inside": raw / "cleaned", "same": raw, "dotdot": raw / "x" / ".." / "cleaned",
           "symlink": tmp_path / "alias" / "cleaned"}[spelling]
    first = run(raw, out)
    assert first.report["inputs"]["seen"] == 2
    second = run(raw, out)
    assert second.report["inputs"] == {**second.report["inputs"], "seen": 2, "new": 0, "skipped": 2}
    assert sorted(source_paths(out)) == [str(raw / "a.txt"), str(raw / "b.txt")]


def test_another_runs_output_under_raw_is_not_read(tmp_path: Path):
    """`run raw -o raw/nest/out` then `run raw -o raw`: the second run's own folders are excluded, and so is
    the first run's output (its marker), and any state folder: their shards are records, not pages."""
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.txt").write_bytes(seed(0))
    (raw / "b.txt").write_bytes(seed(1))
    run(raw, raw / "nest" / "out")
    run_corpus(raw, tmp_path / "elsewhere", load_config(), workers=0, progress=False,
               state_dir=raw / "states" / "one")
    result = run(raw, raw)
    assert result.report["inputs"]["seen"] == 2 and result.report["duplicates"] == 0
    assert sorted(source_paths(raw)) == [str(raw / "a.txt"), str(raw / "b.txt")]


def test_walk_skips_excluded_folders_by_identity(tmp_path: Path):
    root = tmp_path / "raw"
    (root / "out" / "documents").mkdir(parents=True)
    (root / "out" / "documents" / "part-000000.jsonl").write_text("{}\n", encoding="utf-8")
    (root / "a.txt").write_text("x", encoding="utf-8")
    found = [f.key for f in walk_inputs(root, [tmp_path / "raw" / "out" / ".." / "out" / "documents"])]
    assert found == ["a.txt"]
    assert list(walk_inputs(root / "out" / "documents", [root / "out" / "documents"])) == []


# --- fuzz: random trees --------------------------------------------------------------------------------

PAGE_SUFFIXES = (".txt", ".html", ".htm", ".txt.gz", ".html.gz")
OTHER_SUFFIXES = ("", ".csv", ".meta.json")
TEXT = "\n\n".join(ARTICLE).encode("utf-8")
HTML = b"<html><head><title>T</title></head><body><article><p>" + TEXT + b"</p></article></body></html>"

stems = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00."), min_size=1, max_size=8)
    .map(os.fsencode),
    st.binary(min_size=1, max_size=6).filter(lambda b: b"/" not in b and b"\x00" not in b and b"." not in b),
)
contents = st.one_of(
    st.sampled_from([b"", TEXT, HTML, gzip.compress(TEXT), gzip.compress(TEXT)[:-30], TEXT * 3]),
    st.binary(max_size=300),
)
KINDS = ("file", "file", "file", "link_file", "link_folder", "dangling", "loop", "fifo", "folder_denied")
entries = st.lists(st.tuples(st.integers(0, 2), stems, st.sampled_from(PAGE_SUFFIXES + OTHER_SUFFIXES),
                             st.sampled_from(KINDS), contents), max_size=10)


def _build(raw: bytes, tree: list, folders: list[bytes]) -> tuple[Counter, list[bytes]]:
    """The tree under `raw`; what each stream must account for (source paths) and the folders to deny."""
    os.makedirs(raw)
    dirs = [raw] + [raw + b"/" + name for name in folders]
    for folder in dirs[1:]:
        os.makedirs(folder, exist_ok=True)
    expected, denied, made = Counter(), [], set()
    for where, stem, suffix, kind, data in tree:
        folder = dirs[min(where, len(dirs) - 1)]
        path = folder + b"/" + stem + suffix.encode()
        if path in made or any(path == d for d in dirs):
            continue
        made.add(path)
        is_input = suffix in PAGE_SUFFIXES
        if kind == "file":
            with open(path, "wb") as handle:
                handle.write(data)
        elif kind == "link_file":
            target = path + b".target"
            with open(target, "wb") as handle:
                handle.write(data)
            os.symlink(target, path)
        elif kind == "link_folder":
            os.symlink(dirs[-1], path)
            continue
        elif kind == "dangling":
            os.symlink(path + b".nowhere", path)
        elif kind == "loop":
            os.symlink(path, path)
        elif kind == "fifo":
            os.mkfifo(path)
            continue
        elif kind == "folder_denied":
            denied.append(folder)
            continue
        if is_input:
            expected[os.fsdecode(path)] += 1
    return expected, denied


@pytest.fixture(scope="module")
def quick_runs():
    """Runs made by the dozen: the stop lists built once, not per run, and no fsync (durability is not
    what the fuzz test checks)."""
    from pipeline.clean.stopwords import StopwordIndex

    index = StopwordIndex.load()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(StopwordIndex, "load", classmethod(lambda cls: index))
        patch.setattr(os, "fsync", lambda fd: None)
        yield


def _without_stamp(found: dict[str, list[dict]]) -> dict[str, list[str]]:
    return {stream: sorted(json.dumps({**r, "added": None, "metadata": {**r["metadata"], "processed_at": None}})
                           for r in rs)
            for stream, rs in found.items()}


@settings(max_examples=25, deadline=None)
@given(tree=entries, folders=st.lists(stems, max_size=2, unique=True))
def test_fuzz_every_input_ends_in_exactly_one_stream(quick_runs, tree, folders):
    """Random trees (names of any bytes, links to files, to folders, dangling and looping, FIFOs, unreadable
    folders; empty, binary, cut gzip, too large and good pages): the run finishes, each input is in exactly
    one stream (an unreadable folder is one reject), and a rerun changes nothing."""
    base = Path(tempfile.mkdtemp(prefix="pw-fuzz-"))
    try:
        raw = os.fsencode(base) + b"/raw"
        expected, denied = _build(raw, tree, folders)
        raw_path, out = Path(os.fsdecode(raw)), base / "out"
        unreadable = {os.fsdecode(d) for d in denied if d != raw}  # the root stays readable
        for folder in unreadable:  # its inputs are not seen: one reject for the folder instead
            for name in [k for k in expected if k.startswith(folder + "/")]:
                del expected[name]
            expected[folder] += 1
        config = {"max_input_bytes": 2000, "shard_pages": 3, "dedup": {"partitions": 1}}
        with pytest.MonkeyPatch.context() as patch:
            _deny(patch, *unreadable)
            first = run(raw_path, out, **config)
            assert first.exit_code in (0, 1)
            assert source_paths(out) == expected
            before = records(out)
            again = run(raw_path, out, **config)
        assert again.report["inputs"]["new"] == again.report["inputs"]["changed"] == 0
        assert again.report["inputs"]["deleted"] == 0 and again.report["documents"] == 0
        assert _without_stamp(records(out)) == _without_stamp(before)  # unreadable ones retried: same rejects
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_state_written_before_roots_were_recorded(tmp_path: Path):
    """A state without the `root` column gains it. Its inputs take the root they are next found under; one
    never found again has no known root and is never taken for deleted: the state may have been fed from
    several folders, and a run over one of them must not retract the others' records."""
    one, two = tmp_path / "one", tmp_path / "two"
    for folder, names in ((one, ("a.txt", "b.txt")), (two, ("c.txt", "d.txt"))):
        folder.mkdir()
        for n, name in enumerate(names):
            (folder / name).write_bytes(seed(n + 2 * (folder == two)))
    out = tmp_path / "out"
    run(one, out)
    run(two, out)
    db = sqlite3.connect(out / STATE_DIR / "state.sqlite")
    db.execute("ALTER TABLE inputs DROP COLUMN root")
    db.commit()
    db.close()
    state = RunState(out / STATE_DIR)
    assert state.db.execute("SELECT COUNT(*) FROM inputs WHERE root IS NULL").fetchone() == (4,)
    state.close()
    # a file given as RAW has no input to lose: the others are not taken for its deleted inputs
    assert run(one / "a.txt", out).report["inputs"]["deleted"] == 0
    assert run(one, out).report["inputs"]["deleted"] == 0  # two's inputs: root unknown, not gone
    assert len(records(out)["documents"]) == 4
    (one / "b.txt").unlink()  # found under `one` by the run before: now known to be gone
    result = run(one, out)
    assert result.report["inputs"]["deleted"] == 1
    assert sorted(Path(r["metadata"]["source_path"]).name for r in records(out)["documents"]) == [
        "a.txt", "c.txt", "d.txt"]
