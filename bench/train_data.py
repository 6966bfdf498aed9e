"""Training data for a learned text-dump cleaner: every labelled page rendered to text dumps by several
renderers, each dump line labelled by aligning it to the page's gold (docs/training_data.md).

    python bench/train_data.py [--shared ../shared] [--sources wcxb,readability,...]
        [--renderers bs4,inscriptis,html2text,lxml] [--limit N] [--out bench/.cache/train_data]

Writes `<out>/<renderer>.jsonl.gz` (one page a line: id, source, domain, renderer, habits, lines as
[text, label, in_gold]) and `<out>/quality.json` (a line oracle's word F1 per source x renderer), and prints
the quality table. inscriptis and html2text come with the optional extra `train`. lynx, w3m and html-text
are never used here: they render the dumps the cleaner is evaluated on.
"""

from __future__ import annotations

import argparse
import codecs
import gzip
import hashlib
import io
import json
import random
import re
import sys
import textwrap
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from difflib import SequenceMatcher
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.clean.decode import decode_bytes  # noqa: E402
from pipeline.evaluate import fold, word_f1  # noqa: E402

RENDERERS = ("bs4", "inscriptis", "html2text", "lxml")
LABELS = ("body", "title", "author", "date", "boilerplate")
# Words: lower-cased \w+ tokens, each CJK character one word (train/SOURCES.md); Hangul keeps its spaces.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(f"[{_CJK}]|[^\\W{_CJK}]+")
LOST = 0.5  # a rendering holding less than this share of the gold's words lost the content, not the labeller
MIN_BLOCK = 3  # an aligned run shorter than this counts only where it is a whole gold line (a short heading)
REORDERED_MIN_BLOCK = 6  # the same for words aligned in a second pass, out of the gold's order
BODY_SHARE = 0.5  # a line is in the gold when at least this share of its words is aligned
META_MAX_WORDS = 15  # a byline or date line is short
MAX_TITLES = 2  # title occurrences labelled per page (the <title> line, the headline): a one-word title
# ("pacman", "SELECT") is in dozens of lines of a documentation page, and those are not its title
TITLE_SHARE = 0.5  # the gold title is at least this share of a title line's words ("Title | Site" is a title)
_SKIPPED = ("script", "style", "noscript", "template")
_BLOCKS = frozenset(
    "address article aside blockquote body br dd details dialog div dl dt fieldset figcaption figure footer form "
    "h1 h2 h3 h4 h5 h6 header hr li main nav ol p pre section summary table td th tr ul title option".split()
)
_SPACES = re.compile(r"\s+")
_MONTHS = ("january february march april may june july august september october november december").split()


@dataclass(frozen=True)
class Habits:
    """How a scraper saved the text, drawn per page and renderer so that the model sees them all."""

    bullet: str  # prefix of list items ("" for none); only renderers without their own bullets use it
    blank_lines: str  # "keep" (runs collapsed to one), "none" (all dropped) or "every" (one after each line)
    wrap: int  # hard-wrap width, 0 for none


@dataclass(frozen=True)
class Page:
    id: str
    source: str
    domain: str | None
    html: str
    gold: dict


def draw_habits(page_id: str, renderer: str) -> Habits:
    """Deterministic per page and renderer: seeded by a digest of both, not by Python's salted hash."""
    seed = int.from_bytes(hashlib.sha256(f"{page_id}\0{renderer}".encode()).digest()[:8], "big")
    rng = random.Random(seed)
    bullet = rng.choice(["", "", "• ", "* ", "- "])
    blank_lines = rng.choice(["keep", "keep", "none", "every"])
    wrap = rng.choice([72, 80]) if rng.random() < 0.25 else 0
    return Habits(bullet, blank_lines, wrap)


# --- renderers: HTML string -> raw text -------------------------------------------------------------------


def render_bs4(html: str, habits: Habits) -> str:
    """BeautifulSoup(html, 'lxml').get_text('\\n') without script/style, as the wcxb-dev `bs4` dumps were made."""
    from bs4 import BeautifulSoup, XMLParsedAsHTMLWarning

    with warnings.catch_warnings():  # XHTML pages are HTML to a scraper too
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        soup = BeautifulSoup(html, "lxml")
    for tag in soup(list(_SKIPPED)):
        tag.decompose()
    if habits.bullet:
        for item in soup.find_all("li"):
            first = item.find(string=True)
            if first is not None:  # on the item's first line, as a scraper writes it, not a line of its own
                first.replace_with(habits.bullet + first)
    return soup.get_text("\n")


def render_lxml(html: str, habits: Habits, links: list[str] | None = None) -> str:
    """lxml text nodes in document order, a line break around each block element, spaces collapsed. Given a list
    `links`, each link's text is printed after `[n]`, as lynx prints it, and its target appended to `links` (n is
    its place there; bench/accuracy.py --link-refs, never training)."""
    import lxml.html

    parser = lxml.html.HTMLParser(encoding="utf-8")
    try:
        root = lxml.html.document_fromstring(html.encode("utf-8", "replace"), parser=parser)
    except Exception:  # lxml refuses empty documents ("Document is empty"): an empty rendering
        return ""
    out: list[str] = []
    stack: list[tuple[object, bool]] = [(root, False)]
    while stack:
        element, closing = stack.pop()
        tag = element.tag if isinstance(element.tag, str) else ""
        if closing:
            if tag in _BLOCKS:
                out.append("\n")
            if element.tail:
                out.append(_SPACES.sub(" ", element.tail))
            continue
        stack.append((element, True))
        if not tag or tag in _SKIPPED:  # comments, processing instructions, scripts: only their tail
            continue
        if tag in _BLOCKS:
            out.append("\n")
        if tag == "li" and habits.bullet:
            out.append(habits.bullet)
        if links is not None and tag == "a" and (href := element.get("href")) and not href.startswith("#"):
            links.append(href)
            out.append(f"[{len(links)}]")
        if element.text:
            out.append(element.text if tag == "pre" else _SPACES.sub(" ", element.text))
        stack.extend((child, False) for child in reversed(element))
    return "".join(out)


def render_inscriptis(html: str, habits: Habits) -> str:
    """inscriptis' layout-aware rendering (its own bullets and indentation)."""
    import inscriptis

    return inscriptis.get_text(html)


def render_html2text(html: str, habits: Habits) -> str:
    """html2text as plain as it goes: no links, images or emphasis marks, no wrapping of its own (headings
    keep their `#`, list items their `*`)."""
    import html2text

    converter = html2text.HTML2Text()
    converter.ignore_links = True
    converter.ignore_images = True
    converter.ignore_emphasis = True
    converter.body_width = 0
    converter.unicode_snob = True
    return converter.handle(html)


_RENDER: dict[str, Callable[[str, Habits], str]] = {
    "bs4": render_bs4,
    "inscriptis": render_inscriptis,
    "html2text": render_html2text,
    "lxml": render_lxml,
}
_EXTRA = {"inscriptis": "inscriptis", "html2text": "html2text"}  # renderer -> module of the `train` extra


def apply_habits(text: str, habits: Habits) -> list[str]:
    """The rendering as a scraper would save it: trailing spaces gone, blank-line runs handled per habit,
    long lines hard-wrapped."""
    lines: list[str] = []
    for raw in text.replace("\r", "\n").split("\n"):
        line = raw.rstrip()
        if not line.strip():
            if lines and lines[-1] and habits.blank_lines == "keep":
                lines.append("")
            continue
        if habits.wrap and len(line) > habits.wrap:
            lines.extend(textwrap.wrap(line, habits.wrap, break_long_words=False, break_on_hyphens=False))
        else:
            lines.append(line)
        if habits.blank_lines == "every":
            lines.append("")
    while lines and not lines[-1]:
        lines.pop()
    return lines


def render(page: Page, renderer: str) -> tuple[Habits, list[str]]:
    habits = draw_habits(page.id, renderer)
    return habits, apply_habits(_RENDER[renderer](page.html, habits), habits)


# --- labels -----------------------------------------------------------------------------------------------


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def aligned_shares(lines: list[str], gold_text: str) -> list[float]:
    """Share of each line's words aligned, in order, to the gold text's words.

    One global alignment of the dump's word sequence against the gold's (difflib's longest-matching-block
    recursion), so a wrapped paragraph's pieces align as one run and a menu word that also occurs in the
    article does not: runs shorter than MIN_BLOCK words count only where they are a whole gold line. Then
    what is left on both sides is aligned once more, for blocks that the dump renders in another order.
    """
    dump_words: list[str] = []
    line_of: list[int] = []
    for index, line in enumerate(lines):
        tokens = words(line)
        dump_words.extend(tokens)
        line_of.extend([index] * len(tokens))
    gold_words: list[str] = []
    gold_line_start: set[int] = set()
    gold_line_end: set[int] = set()
    for line in gold_text.split("\n"):
        tokens = words(line)
        if tokens:
            gold_line_start.add(len(gold_words))
            gold_words.extend(tokens)
            gold_line_end.add(len(gold_words))
    dump_done = [False] * len(dump_words)
    gold_done = [False] * len(gold_words)
    matcher = SequenceMatcher(None, dump_words, gold_words, autojunk=False)
    for a, b, size in matcher.get_matching_blocks():
        if size >= MIN_BLOCK or (b in gold_line_start and b + size in gold_line_end):
            dump_done[a:a + size] = [True] * size
            gold_done[b:b + size] = [True] * size
    # Blocks in another order than the gold's (table columns, floated boxes): the words left over on both
    # sides, aligned once more, longer runs only.
    dump_left = [i for i, done in enumerate(dump_done) if not done]
    gold_left = [j for j, done in enumerate(gold_done) if not done]
    if dump_left and gold_left:
        matcher = SequenceMatcher(None, [dump_words[i] for i in dump_left], [gold_words[j] for j in gold_left],
                                  autojunk=False)
        for a, _b, size in matcher.get_matching_blocks():
            if size >= REORDERED_MIN_BLOCK:
                for i in dump_left[a:a + size]:
                    dump_done[i] = True
    matched = Counter(line_of[i] for i, done in enumerate(dump_done) if done)
    totals = Counter(line_of)
    return [matched[i] / totals[i] if totals[i] else 0.0 for i in range(len(lines))]


def _contains(haystack: list[str], needle: list[str]) -> bool:
    n = len(needle)
    return n > 0 and any(haystack[i:i + n] == needle for i in range(len(haystack) - n + 1))


def date_forms(iso: str | None) -> list[str]:
    """Folded surface forms of an ISO date, as bylines write it (English month names, numeric orders)."""
    match = re.match(r"(\d{4})-(\d{2})-(\d{2})", iso or "")
    if not match:
        return []
    y, m, d = match.group(1), int(match.group(2)), int(match.group(3))
    if not 1 <= m <= 12:
        return []
    month = _MONTHS[m - 1]
    forms = {
        f"{y}-{m:02}-{d:02}", f"{y}/{m:02}/{d:02}", f"{m:02}/{d:02}/{y}", f"{d:02}/{m:02}/{y}", f"{m}/{d}/{y}",
        f"{d}/{m}/{y}", f"{d}.{m}.{y}", f"{d:02}.{m:02}.{y}", f"{y}.{m:02}.{d:02}",
    }
    for name in (month, month[:3], month[:3] + "."):
        forms |= {f"{name} {d}, {y}", f"{name} {d:02}, {y}", f"{name} {d} {y}", f"{d} {name} {y}",
                  f"{d}. {name} {y}", f"{d} {name}, {y}", f"{name} {d}th, {y}", f"{name} {d}st, {y}",
                  f"{name} {d}nd, {y}", f"{name} {d}rd, {y}"}
    return sorted(forms)


def author_names(value: str | None) -> list[list[str]]:
    """Each name of the gold author field as words (the separators pipeline/evaluate.py splits on)."""
    if not value:
        return []
    return [words(n) for n in re.split(r"\s*(?:;|,|\band\b|&)\s*", value) if words(n)]


def label_lines(lines: list[str], gold: dict) -> list[tuple[str, bool]]:
    """(label, in_gold) per line. `in_gold`: most of the line's words align to the gold text. Label, first
    that holds: `title` (the gold title's words, contiguous, are at least TITLE_SHARE of the line's; the first
    MAX_TITLES such lines or wrapped runs of lines),
    `author` (a short line holding every gold author name), `date` (a short line holding the gold date in a
    usual form), `body` (in_gold), else `boilerplate`. A line without words takes `body` when the nearest
    worded lines on both sides are body (a separator inside the article), `boilerplate` otherwise."""
    shares = aligned_shares(lines, gold.get("text") or "")
    title = words(gold.get("title") or "")
    names = author_names(gold.get("author"))
    dates = date_forms(gold.get("date"))
    out: list[tuple[str, bool]] = []
    for line, share in zip(lines, shares, strict=True):
        tokens = words(line)
        in_gold = bool(tokens) and share >= BODY_SHARE
        short = 0 < len(tokens) <= META_MAX_WORDS
        if title and _contains(tokens, title) and len(title) >= TITLE_SHARE * len(tokens):
            label = "title"
        elif short and names and all(_contains(tokens, name) for name in names):
            label = "author"
        elif short and dates and any(form in fold(line) for form in dates):
            label = "date"
        else:
            label = "body" if in_gold else "boilerplate"
        out.append((label, in_gold))
    return _fill_wordless(lines, _first_titles(_wrapped_titles(lines, out, title)))


def _first_titles(labels: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    """Only the first MAX_TITLES runs of title lines stay titles; later ones are labelled as any line."""
    out = list(labels)
    runs = 0
    for i, (label, in_gold) in enumerate(labels):
        if label != "title":
            continue
        if i == 0 or labels[i - 1][0] != "title":
            runs += 1
        if runs > MAX_TITLES:
            out[i] = ("body" if in_gold else "boilerplate", in_gold)
    return out


def _wrapped_titles(lines: list[str], labels: list[tuple[str, bool]], title: list[str]) -> list[tuple[str, bool]]:
    """A title hard-wrapped over up to 4 lines: each piece is part of the title, together they hold it."""
    out = list(labels)
    for start, line in enumerate(lines):
        tokens = words(line)
        if not title or out[start][0] == "title" or not tokens or not _contains(title, tokens):
            continue
        joined = list(tokens)
        for end in range(start + 1, min(start + 4, len(lines))):
            joined += words(lines[end])
            if _contains(joined, title) and len(title) >= TITLE_SHARE * len(joined):
                out[start:end + 1] = [("title", in_gold) for _label, in_gold in out[start:end + 1]]
                break
    return out


def _fill_wordless(lines: list[str], labels: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    worded = [i for i, line in enumerate(lines) if words(line)]
    out = list(labels)
    for before, after in zip(worded, worded[1:], strict=False):
        if labels[before][0] == "body" and labels[after][0] == "body":
            for i in range(before + 1, after):
                out[i] = ("body", False)
    return out


def oracle_text(lines: list[list]) -> str:
    """What a perfect line classifier keeps: every line whose words are in the gold text."""
    return "\n".join(line[0] for line in lines if line[2])


# --- corpus -----------------------------------------------------------------------------------------------


def _decode_train(data: bytes, meta: dict) -> str:
    """The page's bytes as text: UTF-8 where the corpus says it is; else its declared charset (ISO-8859-1
    read as windows-1252, as browsers do); else pagewash's own detection."""
    if meta.get("html_is_utf8"):
        return data.decode("utf-8", "replace")
    declared = (meta.get("declared_charset") or "").lower()
    try:
        name = codecs.lookup(declared).name
    except LookupError:
        name = ""
    if name in ("latin-1", "iso8859-1"):
        name = "cp1252"
    if name and name != "utf-8":
        return data.decode(name, "replace")
    return decode_bytes(data)[0]


def _domain(url: str | None) -> str | None:
    host = urlsplit(url).hostname if url else None
    return host[4:] if host and host.startswith("www.") else host


def _selected(source: str, wanted: list[str] | None) -> bool:
    """`wcxb` selects `wcxb` and `wcxb-dev`, `cleaneval` both CleanEval sets."""
    return wanted is None or any(source == w or source.startswith(w + "-") for w in wanted)


def iter_pages(shared: Path, sources: list[str] | None = None, limit: int | None = None) -> Iterator[Page]:
    """Pages of train/ then wcxb-dev/ (source `wcxb-dev`), sorted by id; `limit` per source."""
    taken: Counter[str] = Counter()
    train = shared / "bench" / "train"
    for gold_path in sorted((train / "gold").glob("*.json")):
        gold = json.loads(gold_path.read_text(encoding="utf-8"))
        source = gold["source"]
        if not _selected(source, sources) or (limit is not None and taken[source] >= limit):
            continue
        taken[source] += 1
        data = gzip.decompress((train / "html" / f"{gold['id']}.html.gz").read_bytes())
        yield Page(gold["id"], source, _domain(gold.get("url")), _decode_train(data, gold["meta"]), gold)
    dev = shared / "bench" / "wcxb-dev"
    if not _selected("wcxb-dev", sources):
        return
    for gold_path in sorted((dev / "gold").glob("*.json"))[:limit]:
        gold = json.loads(gold_path.read_text(encoding="utf-8"))
        page_id = f"wcxb-dev-{gold_path.stem}"
        html = gzip.decompress((dev / "html" / f"{gold_path.stem}.html.gz").read_bytes()).decode("utf-8", "replace")
        yield Page(page_id, "wcxb-dev", gold.get("domain") or _domain(gold.get("url")), html, gold)


def page_record(page: Page, renderer: str) -> dict:
    habits, lines = render(page, renderer)
    labels = label_lines(lines, page.gold)
    return {
        "id": page.id, "source": page.source, "domain": page.domain, "renderer": renderer,
        "habits": asdict(habits),
        "lines": [[line, label, int(in_gold)] for line, (label, in_gold) in zip(lines, labels, strict=True)],
    }


class Quality:
    """The line oracle's word F1 per source x renderer (mean over pages), the recall of keeping every line
    (what the rendering holds of the gold at all: the oracle's ceiling), the pages whose rendering holds less
    than LOST of the gold (text built by scripts, hidden), and the worded lines per label."""

    def __init__(self) -> None:
        self.cells: dict[tuple[str, str], dict] = {}

    def add(self, record: dict, gold_text: str) -> None:
        cell = self.cells.setdefault(
            (record["source"], record["renderer"]),
            {"pages": 0, "precision": 0.0, "recall": 0.0, "f1": 0.0, "rendered_recall": 0.0, "lost_pages": 0,
             "labels": Counter()},
        )
        score = word_f1(oracle_text(record["lines"]), gold_text)
        rendered = word_f1("\n".join(line[0] for line in record["lines"]), gold_text).recall
        cell["rendered_recall"] += rendered
        cell["lost_pages"] += rendered < LOST
        cell["pages"] += 1
        cell["precision"] += score.precision
        cell["recall"] += score.recall
        cell["f1"] += score.f1
        cell["labels"].update(label for _text, label, _in in record["lines"] if words(_text))

    def as_json(self) -> list[dict]:
        rows = []
        for (source, renderer), cell in sorted(self.cells.items()):
            n = cell["pages"]
            rows.append({
                "source": source, "renderer": renderer, "pages": n,
                "f1": round(cell["f1"] / n, 4), "precision": round(cell["precision"] / n, 4),
                "recall": round(cell["recall"] / n, 4), "rendered_recall": round(cell["rendered_recall"] / n, 4),
                "lost_pages": cell["lost_pages"],
                "worded_lines": {label: cell["labels"][label] for label in LABELS},
            })
        return rows


def table(rows: list[dict]) -> str:
    head = ("| source | renderer | pages | oracle F1 | P | R | R of all lines | lost | body | title | author "
            "| date | boilerplate |")
    out = [head, "|" + "---|" * 13]
    for row in rows:
        counts = " | ".join(str(row["worded_lines"][label]) for label in LABELS)
        out.append(f"| {row['source']} | {row['renderer']} | {row['pages']} | {row['f1']:.3f} | "
                   f"{row['precision']:.3f} | {row['recall']:.3f} | {row['rendered_recall']:.3f} | "
                   f"{row['lost_pages']} | {counts} |")
    return "\n".join(out)


def _check_extras(renderers: list[str]) -> None:
    for renderer in renderers:
        if renderer not in _RENDER:
            raise SystemExit(f"unknown renderer {renderer!r}; choose from {', '.join(RENDERERS)}")
        module = _EXTRA.get(renderer)
        if module:
            try:
                __import__(module)
            except ImportError:
                raise SystemExit(
                    f"renderer {renderer!r} needs {module}, in the optional extra `train`: "
                    "pip install -e '.[train]'"
                ) from None


def _gzip_writer(path: Path) -> io.TextIOWrapper:
    """gzip without a timestamp or file name in its header: the same records, the same bytes."""
    raw = open(path, "wb")  # noqa: SIM115 (closed with the wrapper)
    return io.TextIOWrapper(gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0), encoding="utf-8")


def build(shared: Path, out: Path, renderers: list[str], sources: list[str] | None = None,
          limit: int | None = None) -> list[dict]:
    """Write one JSONL.gz per renderer and quality.json under `out`; return the quality rows."""
    _check_extras(renderers)
    out.mkdir(parents=True, exist_ok=True)
    quality = Quality()
    writers = {r: _gzip_writer(out / f"{r}.jsonl.gz") for r in renderers}
    try:
        for page in iter_pages(shared, sources, limit):
            for renderer in renderers:
                record = page_record(page, renderer)
                writers[renderer].write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
                quality.add(record, page.gold.get("text") or "")
    finally:
        for writer in writers.values():
            writer.close()
    rows = quality.as_json()
    (out / "quality.json").write_text(
        json.dumps({"renderers": renderers, "sources": sources, "limit": limit, "rows": rows}, indent=1) + "\n",
        encoding="utf-8",
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--sources", help="comma-separated: cleaneval, portal, readability, dragnet, wcxb, "
                        "wcxb-dev (`wcxb` selects both WCXB sets); default all")
    parser.add_argument("--renderers", default="bs4,inscriptis", help=f"comma-separated, of {', '.join(RENDERERS)}")
    parser.add_argument("--limit", type=int, help="at most N pages per source")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / ".cache" / "train_data")
    args = parser.parse_args(argv)
    sources = args.sources.split(",") if args.sources else None
    rows = build(args.shared, args.out, args.renderers.split(","), sources, args.limit)
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
