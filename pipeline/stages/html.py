"""HTML pages: main text and metadata through trafilatura, then our line rules over what it returns.

Where trafilatura finds nothing, the page is rendered to text (BeautifulSoup) and goes through the
text-dump cleaner instead; `metadata.provenance.text` says which path produced the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import trafilatura
from bs4 import BeautifulSoup
from htmldate import find_date

from ..base import Stage
from ..clean.decode import normalise_text
from ..clean.textclean import BAD, BLANK, GOOD, SIG_DUPLICATE, screen_lines, summarise_cleaning
from ..config import Config
from ..document import Document, LineReport, LineVerdict
from ..rules import RuleSet, line_key, site_keys
from ..vocabulary import Vocabulary


def render_text(html: str) -> str:
    """The page as a rendered-text dump, for the fallback path."""
    soup = BeautifulSoup(html, "lxml")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    text = soup.get_text("\n")
    return re.sub(r"\n\s*\n+", "\n\n", text)


def _clean_title(title: str | None, sitename: str | None, vocab: Vocabulary) -> str | None:
    """`Headline | Site` -> `Headline`, when the suffix (or prefix) is the site's name."""
    if not title or not sitename:
        return title
    parts = vocab.html_title_split.split(title)
    if len(parts) > 1:
        site = line_key(sitename)
        kept = [p for p in parts if line_key(p) != site]
        if kept and len(kept) < len(parts):
            return " - ".join(kept)
    return title


def release_caches() -> None:
    """Empty trafilatura's LRU caches of whole text strings (`trim`, `line_processing`: 1,024 entries each).

    They are pure, so emptying them changes no output; full, they hold tens of megabytes of old pages, and a
    worker's memory grew with every page until they filled (142 MB at 2,000 pages, 167 MB at 20,000).
    Called between chunks of pages.
    """
    from trafilatura import utils

    for name in ("trim", "line_processing"):
        cache_clear = getattr(getattr(utils, name, None), "cache_clear", None)
        if cache_clear is not None:
            cache_clear()


def date_options(extensive: bool) -> dict:
    """What pagewash asks of htmldate, through trafilatura or directly: the original publication date, and the page's
    text searched only when `extensive`. A new dict each call: trafilatura keeps the one it is given."""
    return {"extensive_search": extensive, "original_date": True}


def extraction_options(fast: bool) -> dict:
    """`trafilatura.bare_extraction`'s options as the stage calls it (bench/html_fast.py times the same call): no
    comments, with metadata, the markup's date only (the text search is `free_text_date`'s)."""
    return {"include_comments": False, "with_metadata": True, "deduplicate": False, "fast": fast,
            "date_extraction_params": date_options(False)}


def free_text_date(html: str, url: str | None, vocab: Vocabulary) -> str | None:
    """htmldate's extensive search (dates printed in the page's text, not only in its markup), for a page whose
    markup gives none (`[html] extensive_date_search`), and only when the page prints a full calendar date somewhere
    (`vocab.date_spans`: `March 4, 2025`, `4 Mar 2025`, `2025-03-04`, `04.03.2025`): without one, what the search
    finds is a year or a partial date. A January 1st it finds is taken for a bare year (`(c) 2025`) and dropped.
    Asked of every page, the extensive search costs several ms a page more even where the markup has the date, and
    there it gives the same date: so it runs only where the markup has none. Validated on four sources:
    docs/model.md, "Dates on the HTML path"."""
    if not vocab.date_spans.search(html):
        return None
    try:
        found = find_date(html, url=url, **date_options(True))
    except Exception:  # noqa: BLE001 - the date is optional: a failure in the date library must not cost the page
        return None
    return None if not found or found.endswith("-01-01") else found


@dataclass
class ExtractHtml(Stage):
    """trafilatura's main text and metadata, our drop rules over its lines; where trafilatura finds no text,
    the rendered page, sent on to the text chain (`reroute`)."""

    config: Config
    rules: RuleSet
    name: str = "extract"

    def process(self, doc: Document) -> Document:
        html = doc.text
        url = doc.metadata.get("url")
        options = self.config.html
        result = trafilatura.bare_extraction(html, url=url, **extraction_options(options.fast))
        text = normalise_text(result.text or "") if result is not None else ""
        if not text.strip():  # nothing found: the rendered page goes down the text chain (`stages.CHAINS`)
            doc.text = normalise_text(render_text(html))
            doc.metadata["provenance"] = {**doc.metadata.get("provenance", {}), "text": "html-fallback:text-dump"}
            doc.reroute = "text"
            return doc
        meta = doc.metadata
        given = meta.get("provenance", {})
        provenance = {"text": "trafilatura", **given}
        for key in ("title", "author", "date", "sitename", "hostname"):
            if key in given:
                continue
            # trafilatura reads OpenGraph and JSON-LD itself (a second reading here added nothing on the dev set)
            value = getattr(result, key, None)
            if value:
                meta[key], provenance[key] = normalise_text(value), "trafilatura"
            else:
                meta.setdefault(key, None)
        if meta.get("author"):
            meta["author"] = "; ".join(a.strip() for a in re.split(r"\s*;\s*", meta["author"]) if a.strip())
        meta["title"] = _clean_title(meta.get("title"), meta.get("sitename"), self.rules.vocab)
        meta["url"] = url or getattr(result, "url", None)
        if options.extensive_date_search and not meta.get("date") and "date" not in given:
            found = free_text_date(html, meta["url"], self.rules.vocab)  # the URL trafilatura's date search had
            if found:
                meta["date"], provenance["date"] = found, "htmldate:text"
        meta["categories"] = [normalise_text(c) for c in result.categories or []]
        meta["tags"] = [normalise_text(t) for t in result.tags or []]
        # the site's own rules too: its host (the URL's, or the page's canonical) and its name
        doc.lines = LineReport(self._apply_rules(text, site_keys(meta.get("hostname"), meta.get("sitename"))))
        doc.text = doc.lines.kept_text()
        meta["cleaning"] = summarise_cleaning(doc.lines.verdicts)
        meta["provenance"] = provenance
        return doc

    def _apply_rules(self, text: str, sites: frozenset[str] = frozenset()) -> list[LineVerdict]:
        """Residue trafilatura keeps (`Advertisement`, share bars) goes by the same drop rules as dumps."""
        screen = screen_lines(text.split("\n"), self.rules, sites)
        trimmed = screen.trimmed
        screened = iter(zip(screen.keys, screen.screened, strict=True))
        verdicts = []
        seen: set[str] = set()
        for i, line in enumerate(trimmed):
            if not line:
                verdicts.append(LineVerdict(i, line, False, None, BLANK))
                continue
            key, could_match = next(screened)
            hit = self.rules.match(line, key, "drop", sites) if could_match else None
            if hit is None and len(line.split()) >= self.config.clean.repeat_min_words and key in seen:
                hit = SIG_DUPLICATE
            seen.add(key)
            verdicts.append(LineVerdict(i, line, hit is None, hit, BAD if hit else GOOD))
        return verdicts
