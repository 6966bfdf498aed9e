"""The chains of stages, declared in one place: which stages a page goes through, in which order."""

from __future__ import annotations

from ..base import Stage
from ..clean.linemodel import LineModel
from ..clean.stopwords import StopwordIndex
from ..config import Config
from ..rules import RuleSet
from .decode import Decode
from .finalise import Finalise
from .fingerprint import Fingerprint
from .header import ReadHeader
from .html import ExtractHtml
from .language import DetectLanguage
from .text import ExtractText

FIRST = "decode"  # the chain every page starts in; Decode sends it on to the chain of its kind


def chains(config: Config, rules: RuleSet, stopwords: StopwordIndex,
           model: LineModel | None = None) -> dict[str, list[Stage]]:
    """The stages of each kind of page, in order: the one place the chains are declared. A stage may send the
    page on to another chain (`Document.reroute`): `ExtractHtml` does when trafilatura finds no text, and
    the rendered page then goes through the whole text chain (extract, language, header, finalise), so its
    header is read knowing its language, as a dump's is."""
    return {
        FIRST: [Decode(config)],
        "text": [ExtractText(config, rules, stopwords, model), DetectLanguage(config), ReadHeader(config, rules, model),
                 Finalise(config), Fingerprint(config)],
        "html": [ExtractHtml(config, rules), DetectLanguage(config), Finalise(config), Fingerprint(config)],
    }
