"""The stages of both chains (text dump and HTML), each a pure function of one document, and `chains()`, the
one place the chains are declared."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from .base import Stage
from .config import Config
from .decode import decode_bytes, gunzip, is_gzip, normalise_text
from .dedup import fingerprint
from .document import Document, RawPage, Rejected
from .header import analyse_header, header_from_model
from .html import ExtractHtml
from .html_sniff import looks_like_html
from .language import detect_language
from .linemodel import LineModel
from .modelclean import clean_with_model
from .records import document_id
from .rules import RuleSet, site_keys
from .stopwords import StopwordIndex
from .textclean import clean_lines, summarise_cleaning

_WORD = re.compile(r"\w+")
_SNIFF_CHARS = 65536  # as much of the page as looks_like_html reads


def decode_page(page: RawPage, config: Config) -> Document:
    """Bytes to a document whose text is the whole normalised dump."""
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
    doc = Document(id=document_id(page.rel_path, meta["url"]), text="", metadata=meta)
    data = page.data
    if is_gzip(data):
        data = gunzip(data, config.max_input_bytes)
    if len(data) > config.max_input_bytes:
        raise Rejected("too_large", f"{len(data)} bytes > max_input_bytes {config.max_input_bytes}")
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
    return doc


def _kept_text(doc: Document) -> str:
    return "\n".join(v.text for v in doc.lines or () if v.kept)


@dataclass
class ExtractText(Stage):
    """Strip boilerplate from a text dump: a verdict for every line, the kept ones become the text."""

    config: Config
    rules: RuleSet
    stopwords: StopwordIndex
    model: LineModel | None = None  # None: the heuristic cleaner ([clean] method = "heuristic")
    name: str = "extract"

    def process(self, doc: Document) -> Document:
        stop = self.stopwords.guess(doc.text)
        # the site rules of the page's site, as known before cleaning: its URL's host, a sidecar's site name
        sites = site_keys(doc.metadata.get("hostname"), doc.metadata.get("sitename"))
        if self.model is not None:
            result = clean_with_model(doc.text, self.rules, stop, self.config.clean, self.model, sites)
            doc.lines = result.verdicts
            doc.line_model = result
        else:
            heuristic = clean_lines(doc.text, self.rules, stop, self.config.clean, sites)
            doc.lines = heuristic.verdicts
            doc.line_features = heuristic.features
        doc.text = _kept_text(doc)
        return doc


@dataclass
class ReadHeader(Stage):
    """Title, byline, date and site from the dump; header lines found in the text leave it."""

    config: Config
    rules: RuleSet
    name: str = "metadata"

    def process(self, doc: Document) -> Document:
        verdicts = doc.lines or []
        language = doc.metadata.get("language")
        if doc.line_model is not None:
            header = header_from_model(verdicts, doc.line_model.scores.meta, doc.line_model.rows, self.rules, language)
        else:
            header = analyse_header(verdicts, doc.line_features or [], self.rules, self.config.clean, language)
        doc.text = _kept_text(doc)
        given = doc.metadata.get("provenance", {})
        doc.metadata.update(title=header.title, author=header.author, date=header.date)
        if "sitename" not in given:
            doc.metadata["sitename"] = header.sitename
        doc.metadata["cleaning"] = summarise_cleaning(verdicts)
        doc.metadata["provenance"] = {"text": "text-dump", **header.provenance, **given}
        return doc


@dataclass
class DetectLanguage(Stage):
    config: Config
    name: str = "language"

    def process(self, doc: Document) -> Document:
        lang, score = detect_language(doc.text, self.config.language_seed)
        doc.metadata["language"] = lang
        doc.metadata["language_score"] = score
        return doc


@dataclass
class Finalise(Stage):
    """Word count, the dedup fields (empty until the dedup steps decide), and the too-short check that rejects
    a page."""

    config: Config
    name: str = "finalise"

    def process(self, doc: Document) -> Document:
        words = len(_WORD.findall(doc.text))
        doc.metadata["word_count"] = words
        for key in ("duplicate_of", "dup_cluster", "similarity", "superseded_by"):
            doc.metadata.setdefault(key, None)
        if words < self.config.clean.min_article_words:
            raise Rejected("no_article" if words == 0 else "too_short",
                           f"{words} words of article text < min_article_words {self.config.clean.min_article_words}")
        return doc


@dataclass
class Fingerprint(Stage):
    """The dedup step's view of the article, from one tokenisation: the content hash (`metadata.content_hash`,
    equal for copies that differ in case or punctuation, the dedup exact key), the MinHash signature and the
    number of distinct n-grams (`Document.fingerprint`). Every kept page is signed, also with dedup off, so
    that a later run with it on can decide the documents already written."""

    config: Config
    name: str = "fingerprint"

    def process(self, doc: Document) -> Document:
        exact, sig, shingles = fingerprint(doc.text, self.config.dedup)
        doc.metadata["content_hash"] = exact
        doc.fingerprint = (exact, sig, shingles)
        return doc


def chains(config: Config, rules: RuleSet, stopwords: StopwordIndex,
           model: LineModel | None = None) -> dict[str, list[Stage]]:
    """The stages of each kind of page, in order: the one place the chains are declared. A stage may send the
    page on to another chain (`Document.reroute`): `ExtractHtml` does when trafilatura finds no text, and
    the rendered page then goes through the whole text chain (extract, language, header, finalise), so its
    header is read knowing its language, as a dump's is."""
    return {
        "text": [ExtractText(config, rules, stopwords, model), DetectLanguage(config), ReadHeader(config, rules),
                 Finalise(config), Fingerprint(config)],
        "html": [ExtractHtml(config, rules), DetectLanguage(config), Finalise(config), Fingerprint(config)],
    }
