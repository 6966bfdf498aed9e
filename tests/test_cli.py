"""The CLI through a real subprocess: run, extract, explain, rules check, stats; bad inputs; determinism."""

from __future__ import annotations

import codecs
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ARTICLE, ROOT, SEEDS_RAW, SHARED, stream_records

PROSE = (
    "The city council approved the new budget on Tuesday after a long debate about housing, transport "
    "and the future of the old harbour district, which has been empty for more than a decade."
)


def pagewash(*args: str, env: dict | None = None, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), *args],
        capture_output=True, cwd=ROOT, input=stdin, env={**os.environ, **(env or {})},
    )


def read_jsonl(folder: Path) -> list[dict]:
    return stream_records(folder)


@pytest.fixture()
def mixed_raw(tmp_path: Path) -> Path:
    """The seeds plus one of each kind of bad input the issue names."""
    raw = tmp_path / "raw"
    raw.mkdir()
    for seed in sorted(SEEDS_RAW.glob("*.txt")):
        (raw / seed.name).write_bytes(seed.read_bytes())
    (raw / "empty.txt").write_bytes(b"")
    (raw / "binary.txt").write_bytes(bytes(range(256)) * 40)
    article = "\n\n".join([PROSE.replace("council", f"council ({n})") for n in range(6)])
    cp1252 = ("Café “Déjà vu” reopens\n\n" + article + "\n\nThe owner’s new façade, designed by a local "
              "architect for the reopening, cost more than 5 000 € and was finished in March.")
    (raw / "windows1252.txt").write_bytes(cp1252.encode("cp1252"))
    (raw / "bom.txt").write_bytes(codecs.BOM_UTF8 + article.encode("utf-8"))
    (raw / "noarticle.txt").write_text("Home\nAbout us\nContact\nPrivacy Policy\n© 2024 Nobody\n", encoding="utf-8")
    with gzip.open(raw / "seed.txt.gz", "wb") as handle:
        handle.write((SEEDS_RAW / "003_dd8aa30334888c44.txt").read_bytes())
    (raw / "ignored.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    return raw


def test_run_writes_documents_rejects_and_report(mixed_raw: Path, tmp_path: Path):
    out = tmp_path / "out"
    proc = pagewash("run", str(mixed_raw), "-o", str(out), "--max-error-rate", "0.5")
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"documents" in proc.stderr  # the one-line summary
    documents = read_jsonl(out / "documents")
    rejects = read_jsonl(out / "rejects")
    # bom.txt holds the article of windows1252.txt without its title and last paragraph: a near-duplicate
    duplicates = {Path(d["metadata"]["source_path"]).name: d for d in read_jsonl(out / "duplicates")}
    # and seed.txt.gz is seed 003 gzipped: one of the two is kept
    assert set(duplicates) in ({"bom.txt", "seed.txt.gz"}, {"bom.txt", "003_dd8aa30334888c44.txt"})
    assert {Path(d["metadata"]["source_path"]).name for d in documents} | set(duplicates) >= {
        "000_d2de09946bceaf6b.txt", "004_57d7f56e55303209.txt", "windows1252.txt", "seed.txt.gz"}
    reasons = {Path(r["metadata"]["source_path"]).name: r["metadata"]["filter_reason"] for r in rejects}
    assert reasons == {"empty.txt": "empty", "binary.txt": "binary", "noarticle.txt": "no_article"}
    by_name = {Path(d["metadata"]["source_path"]).name: d for d in documents}
    assert by_name["windows1252.txt"]["metadata"]["title"] == "Café “Déjà vu” reopens"
    assert "façade" in by_name["windows1252.txt"]["text"] and "5 000 €" in by_name["windows1252.txt"]["text"]
    assert duplicates["bom.txt"]["metadata"]["duplicate_of"] == by_name["windows1252.txt"]["id"]
    assert not duplicates["bom.txt"]["text"].startswith("\ufeff")
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["inputs"]["new"] == 11 and report["pages"] == 11 and report["documents"] == len(documents)
    assert report["duplicates"] == 2
    assert report["rejects"] == {"binary": 1, "empty": 1, "no_article": 1}
    assert report["rules_hit"]["nav.menu"] > 0
    for doc in documents:
        meta = doc["metadata"]
        assert set(meta) >= {"source_path", "title", "author", "date", "sitename", "language", "language_score",
                             "word_count", "content_hash", "cleaning", "provenance", "pipeline_version",
                             "processed_at", "duplicate_of", "dup_cluster", "similarity"}
        assert len(doc["id"]) == 40
        assert meta["cleaning"]["lines_kept"] <= meta["cleaning"]["lines_in"]


def test_rerun_is_byte_identical(mixed_raw: Path, tmp_path: Path):
    env = {"SOURCE_DATE_EPOCH": "1760000000"}
    outputs = []
    for n in range(2):
        out = tmp_path / f"out{n}"
        assert pagewash("run", str(mixed_raw), "-o", str(out), "--max-error-rate", "0.5", env=env).returncode == 0
        outputs.append({p.relative_to(out).as_posix(): p.read_bytes()
                        for p in sorted(out.rglob("part-*"))})
    assert outputs[0] == outputs[1]
    assert outputs[0]  # something was written


def test_rerun_into_same_output_adds_nothing(mixed_raw: Path, tmp_path: Path):
    out = tmp_path / "out"
    assert pagewash("run", str(mixed_raw), "-o", str(out)).returncode == 1  # the binary input: 1/11 > 5 %
    first = read_jsonl(out / "documents")
    assert pagewash("run", str(mixed_raw), "-o", str(out)).returncode == 0  # nothing new, nothing failed
    assert [d["id"] for d in read_jsonl(out / "documents")] == [d["id"] for d in first]
    assert not list(out.rglob("*.tmp"))


def test_too_many_failures_exit_1(tmp_path: Path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.txt").write_bytes(b"\x00\x01" * 100)
    (raw / "b.txt").write_text("\n\n".join([PROSE] * 4), encoding="utf-8")
    proc = pagewash("run", str(raw), "-o", str(tmp_path / "out"))
    assert proc.returncode == 1
    assert b"max_error_rate" in proc.stderr


def test_oversized_input_is_rejected_not_read(tmp_path: Path):
    raw = tmp_path / "raw"
    raw.mkdir()
    big = raw / "big.txt"
    with open(big, "wb") as handle:  # 50 MB of prose-like text
        block = (PROSE + "\n\n").encode() * 1000
        while handle.tell() < 50 * 1024 * 1024:
            handle.write(block)
    (raw / "ok.txt").write_text("\n\n".join([PROSE] * 4), encoding="utf-8")
    out = tmp_path / "out"
    proc = pagewash("run", str(raw), "-o", str(out))
    rejects = read_jsonl(out / "rejects")
    assert [r["metadata"]["filter_reason"] for r in rejects] == ["too_large"]
    assert len(read_jsonl(out / "documents")) == 1
    assert proc.returncode == 1  # one of two inputs failed: above the 5 % default


def test_extract_reads_stdin():
    data = (SEEDS_RAW / "001_92dcaf02a642ec9d.txt").read_bytes()
    proc = pagewash("extract", "-", stdin=data)
    assert proc.returncode == 0
    record = json.loads(proc.stdout)
    assert record["metadata"]["date"] == "2025-04-22"
    assert "broken image" not in record["text"]


def test_explain_lists_every_line_with_its_rule():
    path = SEEDS_RAW / "000_d2de09946bceaf6b.txt"
    proc = pagewash("explain", str(path))
    assert proc.returncode == 0
    out = proc.stdout.decode()
    non_blank = sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    verdict_lines = [line for line in out.splitlines() if " KEEP " in line or " drop " in line or " META " in line]
    assert len(verdict_lines) == non_blank
    assert [line.split()[1:3] for line in verdict_lines if " META " in line] == [
        ["META", "meta.title"], ["META", "meta.byline"], ["META", "meta.date"]]  # what became metadata, as such
    assert any(" drop nav.menu " in line and line.endswith("| • Contact Us") for line in verdict_lines)
    assert any(" KEEP " in line and "In a decisive effort" in line for line in verdict_lines)
    assert "title: Hong Kong’s John Lee Visits Hangzhou" in out


def test_explain_shows_the_link_list_of_a_lynx_dump_it_dropped(tmp_path: Path):
    path = tmp_path / "lynx.txt"
    links = [f"   {n}. https://example.com/{n}" for n in range(1, 4)]
    path.write_text("\n".join(["[1]Home [2]News", "", *ARTICLE, "", "Read [3]more.", "", "References", "", *links]),
                    encoding="utf-8")
    proc = pagewash("explain", str(path))
    assert proc.returncode == 0
    listed = [line for line in proc.stdout.decode().splitlines() if " signal.link_list " in line]
    assert len(listed) == 4 and all(" drop " in line for line in listed)
    assert listed[0].endswith("| References") and listed[-1].endswith("| 3. https://example.com/3")


def test_rules_check_ok_and_errors(tmp_path: Path):
    proc = pagewash("rules", "check")
    assert proc.returncode == 0 and proc.stdout.startswith(b"ok:")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "mine.toml").write_text('[[rule]]\nid = "x.y"\nregex = ["(unclosed"]\n', encoding="utf-8")
    proc = pagewash("rules", "check", str(bad))
    assert proc.returncode == 2
    assert b"mine.toml:3:" in proc.stderr and b"bad regex" in proc.stderr
    (bad / "mine.toml").write_text('[[rule]]\nid = "x.y"\nexact = ["a"]\nfrobnicate = 1\n', encoding="utf-8")
    proc = pagewash("rules", "check", str(bad))
    assert proc.returncode == 2 and b"mine.toml:4:" in proc.stderr and b"frobnicate" in proc.stderr


def test_bad_rules_refused_before_any_input_is_read(tmp_path: Path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "r.toml").write_text("[[rule]\n", encoding="utf-8")
    out = tmp_path / "out"
    proc = pagewash("run", str(SEEDS_RAW), "-o", str(out), "--rules", str(bad))
    assert proc.returncode == 2 and b"r.toml" in proc.stderr
    assert not (out / "documents").exists()


def test_stats_and_usage_errors(tmp_path: Path):
    out = tmp_path / "out"
    assert pagewash("run", str(SEEDS_RAW), "-o", str(out)).returncode == 0
    proc = pagewash("stats", str(out))
    assert proc.returncode == 0 and b"inputs seen 5 new 5" in proc.stdout and b"history:" in proc.stdout
    assert pagewash("stats", str(tmp_path / "nothing")).returncode == 2
    assert pagewash("run", str(tmp_path / "missing"), "-o", str(out)).returncode == 2
    assert pagewash("frobnicate").returncode == 2


def test_installed_entry_point_is_the_same_command(tmp_path: Path):
    script = Path(sys.executable).with_name("pagewash")
    if not script.exists():
        pytest.fail(f"pagewash entry point not installed next to {sys.executable}")
    proc = subprocess.run([str(script), "rules", "check"], capture_output=True)
    assert proc.returncode == 0 and proc.stdout == pagewash("rules", "check").stdout


# --- failures of the output side: one clear line and the documented exit code ------------------------------

@pytest.fixture()
def small_disk(tmp_path: Path):
    """A 4 MB tmpfs: a disk that fills up, and can be remounted read-only (needs root, as CI runs)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root and tmpfs mounts")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _seeds(raw: Path, names: list[Path]) -> None:
    raw.mkdir(exist_ok=True)
    for seed in names:
        (raw / seed.name).write_bytes(seed.read_bytes())


def _fill(folder: Path) -> Path:
    """Take every free byte of the filesystem of `folder`."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def _two_runs_in_one(raw: Path, out: Path) -> None:
    """A first run over two seeds into `out`, then the other three seeds added to `raw` for a second."""
    seeds = sorted(SEEDS_RAW.glob("*.txt"))
    _seeds(raw, seeds[:2])
    assert pagewash("run", str(raw), "-o", str(out), "--workers", "1").returncode == 0
    _seeds(raw, seeds[2:])


def test_disk_full_exits_75_with_one_line_and_the_rerun_completes(small_disk: Path, tmp_path: Path):
    raw, out = tmp_path / "raw", small_disk / "out"
    _two_runs_in_one(raw, out)
    filler = _fill(small_disk)
    full = pagewash("run", str(raw), "-o", str(out), "--workers", "1")
    err = full.stderr.decode()
    assert full.returncode == 75, err
    assert "Traceback" not in err and "No space left on device" in err or "disk is full" in err, err
    filler.unlink()
    again = pagewash("run", str(raw), "-o", str(out), "--workers", "1")
    assert again.returncode == 0, again.stderr.decode()
    assert len(read_jsonl(out / "documents")) == 5


def test_read_only_output_exits_75_and_stats_still_reads_it(small_disk: Path, tmp_path: Path):
    raw, out = tmp_path / "raw", small_disk / "out"
    _two_runs_in_one(raw, out)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        proc = pagewash("run", str(raw), "-o", str(out), "--workers", "1")
        err = proc.stderr.decode()
        assert proc.returncode == 75 and "Traceback" not in err and "Read-only file system" in err, err
        assert len(err.strip().splitlines()) == 1, err
        stats = pagewash("stats", str(out))
        assert stats.returncode == 0, stats.stderr.decode()
        assert "documents 2" in stats.stdout.decode()
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    files = sorted((out / "_state").iterdir())
    assert pagewash("stats", str(out)).returncode == 0
    assert sorted((out / "_state").iterdir()) == files  # stats writes nothing, not even SQLite's companions


def test_a_damaged_state_is_not_a_temporary_failure(tmp_path: Path):
    """Cron retries on 75; a state that is not a database stays so: exit 1, one line, no traceback."""
    raw, out = tmp_path / "raw", tmp_path / "out"
    _seeds(raw, sorted(SEEDS_RAW.glob("*.txt"))[:1])
    assert pagewash("run", str(raw), "-o", str(out), "--workers", "1").returncode == 0
    (out / "_state" / "state.sqlite").write_bytes(b"not a database" * 100)
    for args in (("run", str(raw), "-o", str(out), "--workers", "1"), ("stats", str(out))):
        proc = pagewash(*args)
        err = proc.stderr.decode()
        assert proc.returncode == 1 and "not a database" in err and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1, err


def test_output_naming_a_file_is_a_usage_error(tmp_path: Path):
    target = tmp_path / "out.jsonl"
    target.write_text("", encoding="utf-8")
    for args in (("run", str(SEEDS_RAW), "-o", str(target)), ("stats", str(target)),
                 ("run", str(SEEDS_RAW), "-o", str(tmp_path / "out"), "--state", str(target))):
        proc = pagewash(*args)
        err = proc.stderr.decode()
        assert proc.returncode == 2 and "not a folder" in err and "Traceback" not in err, err


_SLOW_CLI = """
import sys, time
from pipeline.run.worker import Worker
from pipeline.cli import main

work_one = Worker.one

def slow(self, item):  # every page takes 2 s: a chunk of 16 takes half a minute
    time.sleep(2)
    return work_one(self, item)

Worker.one = slow  # before the pool forks, so its workers run it
sys.exit(main())  # as the installed program calls it (argv from sys.argv)
"""


def test_a_second_sigterm_stops_at_once_with_143_and_no_traceback(tmp_path: Path):
    """The first SIGTERM finishes the shard in hand; the second stops at once: the workers are killed, not
    waited for (each is half a minute into its chunk here), and the exit is the signal's, in one line."""
    import signal
    import time

    raw = tmp_path / "raw"
    raw.mkdir()
    for path in sorted((SHARED / "bench" / "wcxb-dev" / "dumps" / "bs4").glob("*.txt.gz"))[:40]:
        (raw / path.name).write_bytes(path.read_bytes())
    out = tmp_path / "out"
    args = [sys.executable, "-c", _SLOW_CLI, "run", str(raw), "-o", str(out), "--workers", "2"]
    proc = subprocess.Popen(args, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    time.sleep(4)  # the pool is started and busy
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    stopped = time.monotonic()
    _, err = proc.communicate(timeout=120)
    assert time.monotonic() - stopped < 10, err  # waiting for the chunks in hand would take 30 s and more
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err and "stopped at once" in err, err
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["status"] == "interrupted"
    assert pagewash("run", str(raw), "-o", str(out), "--workers", "1").returncode == 0


def test_workers_beyond_the_machine_are_capped(tmp_path: Path):
    raw = tmp_path / "raw"
    _seeds(raw, sorted(SEEDS_RAW.glob("*.txt"))[:1])
    proc = pagewash("run", str(raw), "-o", str(tmp_path / "out"), "--workers", "500")
    assert proc.returncode == 0 and "500 workers capped to" in proc.stderr.decode(), proc.stderr.decode()


def test_a_fifo_as_raw_is_refused_not_read(tmp_path: Path):
    """Reading a FIFO blocks until a writer comes: `run FIFO` is refused at once (exit 2)."""
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "run", str(fifo), "-o", str(tmp_path / "out")],
                          capture_output=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2 and b"not a file or folder" in proc.stderr


def test_dedup_into_a_run_output_is_refused(tmp_path: Path):
    """The next `run` would sweep the shards `dedup` wrote there (its state never wrote them)."""
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.txt").write_bytes((SEEDS_RAW / "000_d2de09946bceaf6b.txt").read_bytes())
    out = tmp_path / "out"
    assert pagewash("run", str(raw), "-o", str(out)).returncode == 0
    before = sorted(p.relative_to(out) for p in out.rglob("part-*"))
    extra = tmp_path / "extra.jsonl"
    extra.write_text(json.dumps({"id": "x", "text": PROSE}) + "\n", encoding="utf-8")
    proc = pagewash("dedup", str(extra), "-o", str(out))
    assert proc.returncode == 2 and b"is the output of `pagewash run`" in proc.stderr
    assert sorted(p.relative_to(out) for p in out.rglob("part-*")) == before
    state = tmp_path / "state"  # a run whose state lives elsewhere: its output's marker tells
    assert pagewash("run", str(raw), "-o", str(tmp_path / "out2"), "--state", str(state)).returncode == 0
    assert pagewash("dedup", str(extra), "-o", str(tmp_path / "out2")).returncode == 2


def test_logging_flags_after_the_command_libraries_quiet_unless_vv_and_time_stamps_under_cron(tmp_path: Path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "page.html").write_text("<html><head><title>Harbour</title></head><body><article>" + "".join(
        f"<p>{line}</p>" for line in ARTICLE) + "</article></body></html>", encoding="utf-8")
    log_file = tmp_path / "pagewash.log"
    one = pagewash("run", str(raw), "-o", str(tmp_path / "a"), "--workers", "1", "-v", "--log-file", str(log_file))
    assert one.returncode == 0, one.stderr
    lines = one.stderr.decode().splitlines()
    assert any(" pagewash: DEBUG: " in line for line in lines)  # -v after the command counts
    assert all(line[:4].isdigit() and "T" in line[:20] for line in lines if ": DEBUG: " in line)  # no terminal
    assert not any(line.split(" ", 1)[-1].startswith(("trafilatura", "htmldate")) for line in lines)
    assert "pagewash: DEBUG: " in log_file.read_text(encoding="utf-8")
    two = pagewash("-vv", "run", str(raw), "-o", str(tmp_path / "b"), "--workers", "1")
    assert any(line.split(" ", 1)[-1].startswith(("trafilatura", "htmldate", "courlan"))
               for line in two.stderr.decode().splitlines())  # -vv: the libraries' own lines, under their names
    quiet = pagewash("run", str(raw), "-o", str(tmp_path / "c"), "--workers", "1", "-q")
    assert quiet.returncode == 0 and quiet.stderr == b""


def test_config_show_prints_the_effective_configuration_as_toml(tmp_path: Path):
    from pipeline.config import load_config

    user = tmp_path / "site.toml"
    user.write_text('[dedup]\nthreshold = 0.7\n[output]\nformat = "parquet"\n', encoding="utf-8")
    shown = pagewash("config", "show", "--config", str(user))
    assert shown.returncode == 0, shown.stderr
    (tmp_path / "shown.toml").write_bytes(shown.stdout)
    assert load_config(tmp_path / "shown.toml") == load_config(user)
    assert b"threshold = 0.7" in shown.stdout and b'format = "parquet"' in shown.stdout


def test_help_lists_exit_codes_and_an_example_per_command():
    for command in ("run", "dedup", "extract", "explain", "stats", "config"):
        text = pagewash(command, "--help").stdout.decode()
        assert "exit codes:" in text and "example:" in text and f"pagewash {command}" in text, command


def _json_lines(proc) -> list[dict]:
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.decode().splitlines()]


def test_explain_and_extract_address_every_page_kind(tmp_path: Path):
    """explain FILE:LINE (an export), FILE@OFFSET (an archive record), an HTML page with trafilatura's drops,
    and --id ID OUT; extract of an export or archive is one record a page; --json round-trips."""
    import io

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    html = ("<html><head><title>Council Approves Harbour Plan</title></head><body><nav>Home</nav><nav>Sport</nav>"
            "<article>" + "".join(f"<p>{line}</p>" for line in ARTICLE) + "</article></body></html>")
    raw = tmp_path / "raw"
    raw.mkdir()
    export = raw / "export.jsonl"
    export.write_text("".join(json.dumps({"text": (SEEDS_RAW / name).read_text(encoding="utf-8")}) + "\n"
                              for name in sorted(p.name for p in SEEDS_RAW.glob("*.txt"))[:2]), encoding="utf-8")
    archive = raw / "crawl.warc.gz"
    with open(archive, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record("https://example.com/h", "response",
                                                      payload=io.BytesIO(html.encode()), http_headers=http))
    records = _json_lines(pagewash("extract", str(export)))
    assert [r["metadata"]["source_path"] for r in records] == [f"{export}:1", f"{export}:2"]
    [warc_record] = _json_lines(pagewash("extract", str(archive)))
    assert warc_record["metadata"]["url"] == "https://example.com/h"
    assert pagewash("explain", str(export)).returncode == 2  # two pages: one must be named
    line = _json_lines(pagewash("explain", f"{export}:2", "--json"))
    assert line[-1]["page"] and line[-1]["metadata"]["source_path"] == f"{export}:2"
    assert {o["verdict"] for o in line[:-1]} >= {"keep", "drop"}
    explained = _json_lines(pagewash("explain", warc_record["metadata"]["source_path"], "--json"))
    drops = [o for o in explained if o.get("verdict") == "drop"]
    assert any(o["rule"] == "trafilatura" and o["text"] in ("Home", "Sport") for o in drops)  # the page shown whole
    assert any(o.get("verdict") == "meta" and o["rule"] == "meta.title" for o in explained)
    out = tmp_path / "out"
    assert pagewash("run", str(raw), "-o", str(out), "--workers", "1").returncode == 0
    by_id = _json_lines(pagewash("explain", "--id", records[0]["id"], str(out), "--json"))
    assert by_id[-1]["metadata"]["source_path"] == f"{export}:1"
    text = pagewash("explain", f"{export}:1", "--width", "0").stdout.decode()
    assert "…" not in text  # --width 0: never cut


def test_rules_list_names_every_packaged_rule():
    from pipeline.rules import load_rules

    listed = pagewash("rules", "list").stdout.decode().splitlines()
    ids = {line.split()[0] for line in listed}
    assert ids == {rule.id for rule in load_rules().rules}
    assert all(" on " in line for line in listed)


def test_a_heartbeat_line_tells_the_progress_when_no_terminal_is_attached(tmp_path: Path, capsys):
    """Under cron (no terminal, no bar): pages, rate and inputs seen every `heartbeat` seconds on stderr, and a
    line per dedup step."""
    import shutil as _shutil

    from pipeline.config import load_config
    from pipeline.run.corpus import run_corpus

    raw = tmp_path / "raw"
    raw.mkdir()
    for seed in sorted(SEEDS_RAW.glob("*.txt")):
        _shutil.copy(seed, raw / seed.name)
    _shutil.copy(sorted(SEEDS_RAW.glob("*.txt"))[0], raw / "copy.txt")
    run_corpus(raw, tmp_path / "out", load_config(), workers=0, progress=False, heartbeat=1e-9)
    err = capsys.readouterr().err
    assert "pages in" in err and "pages/s" in err and "inputs seen so far" in err
    assert "dedup signatures:" in err or "dedup: " in err


def test_stats_reads_a_dedup_output_too(tmp_path: Path):
    records = [{"id": f"r{n}", "text": (SEEDS_RAW / "000_d2de09946bceaf6b.txt").read_text(encoding="utf-8")}
               for n in range(2)]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    out = tmp_path / "out"
    assert pagewash("dedup", str(path), "-o", str(out), "--workers", "0").returncode == 0
    assert {p.name for p in out.iterdir()} >= {"documents", "duplicates", "rejects", "report.json"}
    stats = pagewash("stats", str(out))
    assert stats.returncode == 0 and b"pagewash dedup" in stats.stdout and b"duplicates 1" in stats.stdout
    assert pagewash("stats", str(out), "--html").returncode == 0 and (out / "report.html").exists()
