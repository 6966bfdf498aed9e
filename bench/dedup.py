"""Near-duplicate detection on a labelled set built from the WCXB dev gold texts, beside baselines.

    python bench/dedup.py [--shared ../shared] [--seed 1] [--json] [--set gentle|syndication [--stories N]]
                          [--scale N | --run N] [--threshold T --ngram N --num-perm P --bands B --rows R]

The set: every gold story of at least 80 words, published as "headline line + body". About 60 % of the
stories get 1-4 syndicated variants, each made by 1-3 edits that wire copy and re-scrapes show: another
headline, a byline, a boilerplate footer or related-links block, truncation to 60-90 %, sentences
inserted or dropped, a few typos, a re-scrape that differs only in case, spacing and punctuation.
A story and its variants share one label. About 15 % of the stories also get a "same event, other
story": the same headline, lead sentence and ~10 % of its sentences, the rest drawn from many other
stories; it has a label of its own and must stay apart. Different gold stories always have different labels.

`--set syndication` (issue 16; docs/dedup.md) instead copies stories as 40 sites publish them, each copy with
its recorded edit types (truncation to 30-90 %, paragraphs dropped, sentences of a topic-similar story inserted,
headline rewritten or removed, typos, the site's nav block, byline, dateline, related list, footer, spelling and
number format), plus follow-ups that reuse 2-3 sentences of a story and must stay apart; it also reports recall
per edit type and truncation bucket and the hard negatives' false merges. Exit 1 unless pagewash reaches
ARI >= 0.97, pairwise precision >= 0.995 and recall >= 0.9 on copies truncated to <= 50 %.

Metrics: adjusted Rand index over all documents, pairwise precision and recall (pairs put in one cluster),
documents per second for pagewash (signatures + `pagewash run`'s four dedup steps, their fixed costs
included), exact-hash dedup (normalise + hash) and datasketch (MinHash + MinHashLSH with the same num_perm,
threshold and shingles; candidates linked as the library returns them, unverified).
Exit 1 if ARI < 0.95 or pairwise precision < 0.99.

`--run N [--workers W] [--partitions P]` builds an output folder holding N cleaned documents awaiting dedup
and times `pagewash run`'s four dedup steps on it, with the driver's memory beside the signatures' size.

`--scale N` instead times N synthetic ~600-word documents (sentences sampled from the gold texts, 20 %
near-copies): signatures per second on one core, index + clustering (one round of the dedup steps in this
process, as `pagewash dedup --workers 0` runs it, into an empty index), the memory it allocates beside the
signatures' own size (N x num_perm x 4 bytes), and a later round of N/10 new documents (20 % near-copies)
against the N indexed ones.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import random
import re
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.config import DedupConfig  # noqa: E402
from pipeline.dedup import exact_key, fingerprint, normalise  # noqa: E402

ACCEPT_ARI, ACCEPT_PRECISION = 0.95, 0.99
SYNDICATION_ARI, SYNDICATION_PRECISION, SYNDICATION_SHORT_RECALL = 0.97, 0.995, 0.9  # issue 16
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"\w+")

BYLINES = ["By {name} | Associated Press", "By {name}, Reuters", "{name} / AFP", "Story by {name} for the Wire",
           "By {name}\nPublished {date}", "Written by {name} · {date}"]
NAMES = ["Maria Lopez", "John Carter", "Aiko Tanaka", "Samuel Okafor", "Lena Fischer", "Ravi Patel"]
FOOTERS = [
    "This story was originally published by {site}. Republished with permission.\n"
    "Copyright 2025 {site}. All rights reserved. This material may not be published, broadcast, "
    "rewritten or redistributed.",
    "Sign up for our daily newsletter to get the latest stories delivered to your inbox.\n"
    "Follow us on Facebook, Twitter and Instagram.",
    "Have a news tip? Contact our newsroom at tips@{site}.\nCorrections: we are committed to accuracy; "
    "if you spot an error, let us know.",
]
SITES = ["example-news.com", "dailywire.example", "metro.example.org", "globe.example.net"]


# --- the labelled set ---------------------------------------------------------------------------------

@dataclasses.dataclass
class Story:
    title: str
    sentences: list[str]
    paragraphs: list[list[str]]  # the gold's blocks (headings, paragraphs), each as its sentences


def load_stories(gold_dir: Path) -> list[Story]:
    stories = []
    for path in sorted(gold_dir.glob("*.json")):
        gold = json.loads(path.read_text(encoding="utf-8"))
        text = gold.get("text") or ""
        if len(_WORD.findall(text)) < 80:
            continue
        paragraphs = [[s for s in _SENTENCE.split(block.strip()) if s] for block in text.split("\n")]
        paragraphs = [p for p in paragraphs if p]
        sentences = [s for p in paragraphs for s in p]
        stories.append(Story((gold.get("title") or "").strip() or sentences[0], sentences, paragraphs))
    return stories


def publish(title: str, sentences: list[str]) -> str:
    return title + "\n" + " ".join(sentences)


def typo(word: str, rng: random.Random) -> str:
    if len(word) < 4:
        return word
    i = rng.randrange(len(word) - 1)
    if rng.random() < 0.5:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    return word[:i] + word[i + 1:]


def variant(story: Story, others: list[Story], rng: random.Random) -> str:
    """One syndicated copy: 1-3 edits from the ones wire copy and re-scrapes show."""
    title, sentences = story.title, list(story.sentences)
    head, tail = [], []
    edits = rng.sample(["headline", "byline", "footer", "related", "truncate", "insert", "drop", "typos",
                        "rescrape"], rng.randint(1, 3))
    for edit in edits:
        if edit == "headline":
            title = rng.choice(["UPDATE: ", "", "Wire: ", "WATCH: "]) + rng.choice(others).title
        elif edit == "byline":
            head.append(rng.choice(BYLINES).format(name=rng.choice(NAMES), date="June 3, 2025"))
        elif edit == "footer":
            tail.append(rng.choice(FOOTERS).format(site=rng.choice(SITES)))
        elif edit == "related":
            tail.append("Related stories\n" + "\n".join(rng.choice(others).title for _ in range(rng.randint(3, 6))))
        elif edit == "truncate":
            words = sum(len(s.split()) for s in sentences)
            keep, total = rng.uniform(0.6, 0.9) * words, 0
            for i, s in enumerate(sentences):
                total += len(s.split())
                if total >= keep:
                    sentences = sentences[:i + 1]
                    break
            tail.append("Read the full story at " + rng.choice(SITES))
        elif edit == "insert":
            for _ in range(rng.randint(1, 3)):
                sentences.insert(rng.randint(1, len(sentences)), rng.choice(rng.choice(others).sentences))
        elif edit == "drop" and len(sentences) > 3:
            for _ in range(rng.randint(1, 2)):
                sentences.pop(rng.randrange(1, len(sentences)))
        elif edit == "typos":
            words = " ".join(sentences).split(" ")
            for _ in range(rng.randint(2, 6)):
                i = rng.randrange(len(words))
                words[i] = typo(words[i], rng)
            sentences = [" ".join(words)]
        elif edit == "rescrape":
            title = title.upper()
            sentences = [s.replace(", ", " , ").replace("’", "'") for s in sentences]
    return "\n".join(head + [publish(title, sentences)] + tail)


def same_event(story: Story, others: list[Story], rng: random.Random) -> str:
    """Another outlet's story on the same event: the same headline, lead and a quote or fact now and then,
    told in other sentences (drawn from many other stories, so that it copies none of them)."""
    body = [story.sentences[0]]
    while len(body) < len(story.sentences):
        body.append(rng.choice(rng.choice(others).sentences))
    for s in story.sentences[1:]:
        if rng.random() < 0.1:
            body.insert(rng.randint(1, len(body)), s)
    return publish(story.title, body)


def build_set(stories: list[Story], seed: int) -> tuple[list[str], list[int], Counter]:
    """Texts, their labels, and how many of each kind were made."""
    rng = random.Random(seed)
    texts, labels, kinds = [], [], Counter()
    label = 0
    for k, story in enumerate(stories):
        others = stories[:k] + stories[k + 1:]
        texts.append(publish(story.title, story.sentences))
        labels.append(label)
        kinds["originals"] += 1
        if rng.random() < 0.6:
            for _ in range(rng.randint(1, 4)):
                texts.append(variant(story, others, rng))
                labels.append(label)
                kinds["variants"] += 1
        label += 1
        if rng.random() < 0.15:
            texts.append(same_event(story, others, rng))
            labels.append(label)
            kinds["same-event stories"] += 1
            label += 1
    order = list(range(len(texts)))
    rng.shuffle(order)
    return [texts[i] for i in order], [labels[i] for i in order], kinds


# --- the syndication set (issue 16) -------------------------------------------------------------------

NAV_ITEMS = ["Home", "News", "World", "Politics", "Business", "Markets", "Tech", "Science", "Health", "Sport",
             "Football", "Culture", "Arts", "Books", "Travel", "Opinion", "Weather", "Video", "Podcasts",
             "Newsletters", "Subscribe", "Sign in", "Search", "Contact us", "Advertise", "Jobs", "Local",
             "Education", "Climate", "Money", "Lifestyle", "Food", "Obituaries", "Puzzles", "Live", "Photos",
             "Events", "Help", "Privacy policy", "Terms of use", "Cookie settings", "Corrections", "Archive"]
CITIES = ["LONDON", "WASHINGTON", "NEW YORK", "PARIS", "BERLIN", "TOKYO", "SYDNEY", "NAIROBI", "CHICAGO", "MUMBAI"]
SITE_WORDS = ["daily", "herald", "courier", "post", "tribune", "gazette", "wire", "chronicle", "observer",
              "ledger", "times", "star", "sentinel", "bulletin", "record", "monitor", "mail", "express"]
US_UK = {"color": "colour", "colors": "colours", "favorite": "favourite", "favorites": "favourites",
         "center": "centre", "centers": "centres", "defense": "defence", "labor": "labour", "honor": "honour",
         "neighbor": "neighbour", "neighbors": "neighbours", "behavior": "behaviour", "theater": "theatre",
         "catalog": "catalogue", "gray": "grey", "traveled": "travelled", "traveling": "travelling",
         "canceled": "cancelled", "percent": "per cent", "license": "licence", "analyze": "analyse",
         "fiber": "fibre", "jewelry": "jewellery", "aluminum": "aluminium", "mom": "mum", "humor": "humour"}
UK_US = {uk: us for us, uk in US_UK.items()}
_IZE = re.compile(r"\b(\w{3,})iz(e|es|ed|ing|ation|ations)\b")
_THOUSANDS = re.compile(r"\b(\d{1,3}),(\d{3})\b")
_PERCENT = re.compile(r"(\d) ?(?:percent|per cent)\b")
TRUNCATION_BUCKETS = [(0.35, "<= 35 %"), (0.5, "35-50 %"), (0.7, "50-70 %"), (1.0, "> 70 %")]


@dataclasses.dataclass(frozen=True)
class Site:
    """What a site does to every page it publishes: its template (a navigation block identical on every page,
    a footer, a byline style, datelines, a related-stories list), its spelling and number format, and whether
    it runs wire copy (mostly the first third of the story)."""

    name: str
    nav: str | None
    footer: str | None
    byline: str | None
    dateline: bool
    related: bool
    locale: str  # "us", "uk" or "" (as written)
    numbers: str  # thousands separator it writes: "", " ", "." or "," (as written)
    wire: bool


@dataclasses.dataclass
class Doc:
    """One document of the set. `edits`: what was done to the story to make this copy (empty: the original);
    `kept`: share of the story's body words a truncated copy keeps; `quotes`: the story whose sentences a
    follow-up reuses (a hard negative: it must stay apart from that story)."""

    text: str
    label: int
    story: int
    role: str  # "original", "copy" or "follow-up"
    site: str = ""
    edits: tuple[str, ...] = ()
    kept: float | None = None
    quotes: int | None = None


def make_sites(rng: random.Random, count: int = 40) -> list[Site]:
    sites = []
    for k in range(count):
        name = f"{rng.choice(SITE_WORDS)}-{rng.choice(SITE_WORDS)}{k}.example"
        nav = None
        if rng.random() < 0.35:
            items = rng.sample(NAV_ITEMS, rng.randint(15, 30))
            banner = f"{name.split('.')[0].replace('-', ' ').title()} - news since {rng.randint(1850, 2015)}"
            nav = "\n".join([banner] + [" | ".join(items[i:i + 6]) for i in range(0, len(items), 6)])
        footer = rng.choice(FOOTERS).format(site=name) if rng.random() < 0.6 else None
        byline = rng.choice(BYLINES) if rng.random() < 0.6 else None
        sites.append(Site(name, nav, footer, byline, rng.random() < 0.3, rng.random() < 0.35,
                          rng.choice(["us", "uk", "", ""]), rng.choice(["", "", " ", "."]), rng.random() < 0.25))
    return sites


def topic_neighbours(stories: list[Story], among: list[int], rare: int = 5) -> dict[int, int]:
    """For every story, the story of `among` (not itself) sharing the most rare words (in at most `rare`
    stories, weighted by 1/document frequency): a cheap stand-in for "another story on the same topic"."""
    words = [set(w.lower() for w in _WORD.findall(" ".join(s.sentences)) if not w.isdigit()) for s in stories]
    df = Counter(w for ws in words for w in ws)
    holders: dict[str, list[int]] = {}
    for k in among:
        for w in words[k]:
            if 2 <= df[w] <= rare:
                holders.setdefault(w, []).append(k)
    result = {}
    for k in range(len(stories)):
        score: Counter = Counter()
        for w in sorted(words[k]):  # a fixed order: float sums in set order varied with the string hash seed
            for other in holders.get(w, ()):
                if other != k:
                    score[other] += 1 / df[w]
        result[k] = min(score, key=lambda o: (-score[o], o)) if score else min(o for o in among if o != k)
    return result


def respell(text: str, locale: str) -> str:
    """The site's spelling: US to UK (words and -ize) or UK to US (words), keeping a capital initial."""
    table = US_UK if locale == "uk" else UK_US

    def swap(match: re.Match) -> str:
        word = match.group()
        new = table.get(word.lower())
        if new is None:
            return word
        return new[0].upper() + new[1:] if word[0].isupper() else new

    text = re.sub(r"\b(?:" + "|".join(sorted(map(re.escape, table), key=len, reverse=True)) + r")\b", swap, text,
                  flags=re.IGNORECASE)
    return _IZE.sub(r"\1is\2", text) if locale == "uk" else text


def renumber(text: str, separator: str) -> str:
    """The site's number format: thousands separator and a percent sign."""
    return _PERCENT.sub(r"\1%", _THOUSANDS.sub(rf"\1{separator}\2", text))


def _truncate(paragraphs: list[list[str]], share: float) -> list[list[str]]:
    """The first sentences of the body up to `share` of its words (at least one sentence)."""
    total = sum(len(s.split()) for p in paragraphs for s in p)
    kept: list[list[str]] = []
    words = 0
    for p in paragraphs:
        kept.append([])
        for s in p:
            if kept[0] and words >= share * total:
                return [q for q in kept if q]
            kept[-1].append(s)
            words += len(s.split())
    return [q for q in kept if q]


def _words(paragraphs: list[list[str]]) -> int:
    return sum(len(s.split()) for p in paragraphs for s in p)


def _on_site(site: Site, title: str | None, paragraphs: list[list[str]], stories: list[Story],
             rng: random.Random, edits: list[str]) -> str:
    """The page as `site` publishes it: its template around the story, its spelling and numbers."""
    body = [" ".join(p) for p in paragraphs]
    head, tail = [], []
    if site.nav:
        head.append(site.nav)
        edits.append("nav")
    if site.byline:
        head.append(site.byline.format(name=rng.choice(NAMES), date=f"June {rng.randint(1, 28)}, 2025"))
        edits.append("byline")
    if site.dateline:
        body[0] = f"{rng.choice(CITIES)} ({rng.choice(['AP', 'Reuters', 'AFP', 'Wire'])}) - " + body[0]
        edits.append("dateline")
    if site.related:
        tail.append("Related stories\n" + "\n".join(rng.choice(stories).title for _ in range(rng.randint(3, 6))))
        edits.append("related")
    if site.footer:
        tail.append(site.footer)
        edits.append("footer")
    text = "\n\n".join(head + ([title] if title else []) + body + tail)
    if site.locale and (respelt := respell(text, site.locale)) != text:
        text = respelt
        edits.append("spelling")
    if site.numbers and (renumbered := renumber(text, site.numbers)) != text:
        text = renumbered
        edits.append("numbers")
    return text


def syndicate(story: Story, neighbour: Story, site: Site, stories: list[Story],
              rng: random.Random) -> tuple[str, tuple[str, ...], float | None]:
    """One copy of `story` as `site` publishes it: the text, its edit types and the share of body words kept
    when truncated. A mirror (8 %) is the original unchanged."""
    if rng.random() < 0.08:
        return publish_paragraphs(story.title, story.paragraphs), ("verbatim",), None
    title: str | None = story.title
    paragraphs = [list(p) for p in story.paragraphs]
    edits: list[str] = []
    kept = None
    if rng.random() < (0.7 if site.wire else 0.35):
        share = rng.uniform(0.3, 0.4) if site.wire and rng.random() < 0.6 else rng.uniform(0.3, 0.9)
        total = _words(paragraphs)
        paragraphs = _truncate(paragraphs, share)
        kept = _words(paragraphs) / total
        edits.append("truncated")
    if len(paragraphs) >= 3 and rng.random() < 0.25:
        for _ in range(rng.randint(1, min(2, len(paragraphs) - 2))):
            paragraphs.pop(rng.randrange(1, len(paragraphs)))
        edits.append("paragraphs_dropped")
    if rng.random() < 0.25:
        for _ in range(rng.randint(1, 3)):
            p = rng.randrange(len(paragraphs))
            paragraphs[p].insert(rng.randint(0, len(paragraphs[p])), rng.choice(neighbour.sentences))
        edits.append("sentences_inserted")
    draw = rng.random()
    if draw < 0.3:
        lead = story.sentences[0].split()
        title = " ".join(lead[:rng.randint(6, 12)]).rstrip(",;:.") + rng.choice(["", "", " - report", ": what we know"])
        edits.append("headline_rewritten")
    elif draw < 0.45:
        title = None
        edits.append("headline_removed")
    if rng.random() < 0.25:
        for _ in range(max(2, _words(paragraphs) // 200)):
            p = rng.randrange(len(paragraphs))
            i = rng.randrange(len(paragraphs[p]))
            words = paragraphs[p][i].split(" ")
            w = rng.randrange(len(words))
            words[w] = typo(words[w], rng)
            paragraphs[p][i] = " ".join(words)
        edits.append("typos")
    text = _on_site(site, title, paragraphs, stories, rng, edits)
    return text, tuple(edits) or ("verbatim",), kept  # no edit drawn and no template: published as is


def follow_up(body: Story, original: Story, site: Site, stories: list[Story], rng: random.Random) -> str:
    """A new story on the same topic (`body`, published nowhere else; half the time only its first 15-50 %, a
    short update) that reuses 2-3 sentences of `original` (quotes, where it has any), as `site` publishes it."""
    paragraphs = [list(p) for p in body.paragraphs]
    if rng.random() < 0.5:  # a short update, where the reused sentences weigh more
        paragraphs = _truncate(paragraphs, rng.uniform(0.15, 0.5))
    long = [s for s in original.sentences if len(s.split()) >= 8] or original.sentences
    quoted = [s for s in long if any(q in s for q in '"“”')]
    for s in rng.sample(quoted if len(quoted) >= 3 else long, min(rng.randint(2, 3), len(long))):
        p = rng.randrange(len(paragraphs))
        paragraphs[p].insert(rng.randint(0, len(paragraphs[p])), s)
    return _on_site(site, body.title, paragraphs, stories, rng, [])


def publish_paragraphs(title: str | None, paragraphs: list[list[str]]) -> str:
    return "\n\n".join(([title] if title else []) + [" ".join(p) for p in paragraphs])


def build_syndication(stories: list[Story], seed: int, count: int = 0) -> list[Doc]:
    """The syndication set from `count` gold stories (0: all): about 15 % of them are the bodies of follow-ups
    (each quoting its most topic-similar published story, a label of its own); each other story is published as
    is and, for 80 % of them, copied by 1-6 of 40 sites. Shuffled; same seed, same set."""
    rng = random.Random(seed)
    chosen = sorted(rng.sample(range(len(stories)), count)) if 0 < count < len(stories) else list(range(len(stories)))
    stories = [stories[k] for k in chosen]
    sites = make_sites(rng)
    bodies = set(rng.sample(range(len(stories)), max(1, len(stories) * 15 // 100))) if len(stories) > 2 else set()
    published = [k for k in range(len(stories)) if k not in bodies]
    neighbours = topic_neighbours(stories, published)
    docs = []
    for k in published:
        docs.append(Doc(publish_paragraphs(stories[k].title, stories[k].paragraphs), k, k, "original"))
        if rng.random() < 0.8:
            for site in rng.sample(sites, rng.randint(1, 6)):
                text, edits, kept = syndicate(stories[k], stories[neighbours[k]], site, stories, rng)
                docs.append(Doc(text, k, k, "copy", site.name, edits, kept))
    for k in sorted(bodies):
        site = rng.choice(sites)
        text = follow_up(stories[k], stories[neighbours[k]], site, stories, rng)
        docs.append(Doc(text, k, k, "follow-up", site.name, ("follow_up",), None, neighbours[k]))
    rng.shuffle(docs)
    return docs


def syndication_scores(docs: list[Doc], predicted: list) -> dict:
    """Per-copy recall (a copy is found when it shares a cluster with its story's original), by edit type (edits
    combine, so also among the copies that are not truncated) and by truncation bucket, and the hard negatives'
    false merges: follow-ups put with the story they quote, and pairs of different stories from one site put
    together."""
    original = {d.story: predicted[i] for i, d in enumerate(docs) if d.role == "original"}
    by_edit: dict[str, list[int]] = {}
    untruncated: dict[str, list[int]] = {}
    by_bucket: dict[str, list[int]] = {name: [0, 0] for _, name in TRUNCATION_BUCKETS}
    found_all = [0, 0]
    for i, d in enumerate(docs):
        if d.role != "copy":
            continue
        found = int(predicted[i] == original[d.story])
        found_all[0] += found
        found_all[1] += 1
        for edit in d.edits:
            for table in (by_edit, untruncated) if "truncated" not in d.edits else (by_edit,):
                table.setdefault(edit, [0, 0])
                table[edit][0] += found
                table[edit][1] += 1
        if d.kept is not None:
            bucket = next(name for top, name in TRUNCATION_BUCKETS if d.kept <= top)
            by_bucket[bucket][0] += found
            by_bucket[bucket][1] += 1
    short = [sum(by_bucket[name][j] for _, name in TRUNCATION_BUCKETS[:2]) for j in (0, 1)]
    follow = [(predicted[i] == original[d.quotes]) for i, d in enumerate(docs) if d.role == "follow-up"]
    per_site: dict[str, list[int]] = {}
    for i, d in enumerate(docs):
        if d.site:
            per_site.setdefault(d.site, []).append(i)
    pairs = merged = 0
    for members in per_site.values():
        for a, b in itertools.combinations(members, 2):
            if docs[a].label != docs[b].label:
                pairs += 1
                merged += predicted[a] == predicted[b]

    def rate(found: int, total: int) -> dict:
        return {"found": found, "of": total, "recall": found / total if total else None}

    return {"copy_recall": rate(*found_all), "recall_truncated_le_50": rate(*short),
            "recall_by_edit": {edit: rate(*v) for edit, v in sorted(by_edit.items())},
            "recall_by_edit_untruncated": {edit: rate(*v) for edit, v in sorted(untruncated.items())},
            "recall_by_truncation": {name: rate(*v) for name, v in by_bucket.items()},
            "follow_ups_merged": {"merged": sum(follow), "of": len(follow),
                                  "rate": sum(follow) / len(follow) if follow else None},
            "site_template_pairs_merged": {"merged": merged, "of": pairs, "rate": merged / pairs if pairs else None}}


# --- metrics ------------------------------------------------------------------------------------------

def pair_scores(truth: list, predicted: list) -> dict:
    """Adjusted Rand index (Hubert and Arabie) and pairwise precision and recall from the contingency table."""
    n = len(truth)
    cells = Counter(zip(truth, predicted, strict=True))
    same_both = sum(math.comb(c, 2) for c in cells.values())
    same_truth = sum(math.comb(c, 2) for c in Counter(truth).values())
    same_pred = sum(math.comb(c, 2) for c in Counter(predicted).values())
    expected = same_truth * same_pred / math.comb(n, 2) if n > 1 else 0.0
    top = (same_truth + same_pred) / 2
    ari = 1.0 if top == expected else (same_both - expected) / (top - expected)
    return {"ari": ari, "precision": same_both / same_pred if same_pred else 1.0,
            "recall": same_both / same_truth if same_truth else 1.0, "clusters": len(set(predicted))}


# --- methods ------------------------------------------------------------------------------------------

def run_pagewash(texts: list[str], cfg: DedupConfig, workers: int) -> tuple[list[str], float]:
    """pagewash's engine as `pagewash run` executes it: signatures here, then its four dedup steps (in a
    `pagewash run` subprocess, timed by its report). Seconds: signing + the dedup phase."""
    started = time.perf_counter()
    docs = [(f"{i:040x}", text, len(text), *fingerprint(text, cfg)) for i, text in enumerate(texts)]
    signed = time.perf_counter() - started
    report, clusters = dedup_by_run(docs, cfg, workers)
    return [clusters[doc[0]] for doc in docs], signed + report["dedup"]["seconds"]


def run_exact(texts: list[str]) -> tuple[list[str], float]:
    started = time.perf_counter()
    keys = [exact_key(text) for text in texts]
    return keys, time.perf_counter() - started


def run_datasketch(texts: list[str], cfg: DedupConfig) -> tuple[list[int], float, tuple[int, int]]:
    from datasketch import MinHash, MinHashLSH

    started = time.perf_counter()
    lsh = MinHashLSH(threshold=cfg.threshold, num_perm=cfg.num_perm)
    hashes = []
    for i, text in enumerate(texts):
        words = normalise(text).split()
        n = cfg.ngram
        shingles = {" ".join(words[j:j + n]) for j in range(max(len(words) - n + 1, 1))}
        minhash = MinHash(num_perm=cfg.num_perm, seed=cfg.seed)
        minhash.update_batch([s.encode("utf-8") for s in shingles])
        lsh.insert(i, minhash)
        hashes.append(minhash)
    parent = list(range(len(texts)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, minhash in enumerate(hashes):
        for j in lsh.query(minhash):
            parent[find(j)] = find(i)
    return [find(i) for i in range(len(texts))], time.perf_counter() - started, (lsh.b, lsh.r)


# --- scale --------------------------------------------------------------------------------------------

def synthetic(stories: list[Story], count: int, seed: int) -> list[str]:
    """~600-word documents of sentences sampled from the gold texts; 20 % are near-copies of an earlier one."""
    rng = random.Random(seed)
    pool = [s for story in stories for s in story.sentences if len(s.split()) >= 5]
    texts: list[str] = []
    for _ in range(count):
        if texts and rng.random() < 0.2:
            sentences = _SENTENCE.split(rng.choice(texts))
            for _ in range(rng.randint(1, 3)):
                sentences.pop(rng.randrange(len(sentences)))
            sentences.insert(rng.randint(0, len(sentences)), rng.choice(pool))
            texts.append(" ".join(sentences) + " " + rng.choice(FOOTERS).format(site=rng.choice(SITES)))
            continue
        sentences, words = [], 0
        while words < 600:
            sentences.append(rng.choice(pool))
            words += len(sentences[-1].split())
        texts.append(" ".join(sentences))
    return texts


def scale(stories: list[Story], count: int, cfg: DedupConfig, seed: int, workers: int = 0) -> dict:
    """Signatures of `count` synthetic documents, then one round of the dedup steps over them (in this process
    with `workers` 0, as `dedup --workers 0` runs them; else on a pool of that many), into an empty index; then
    a later round of count/10 new documents against the indexed ones. Run twice: once timed, once under
    tracemalloc (numpy's buffers included; with workers, the driver's alone)."""
    from pipeline.dedup.driver import run_round, steps_executor
    from pipeline.io.store import LocalStore
    from pipeline.state import STATE_DIR

    texts = synthetic(stories, count + count // 10, seed)
    words = sum(len(t.split()) for t in texts) / len(texts)
    started = time.perf_counter()
    fingerprints = [fingerprint(text, cfg) for text in texts]
    sign_seconds = time.perf_counter() - started
    docs = [(f"{i:08d}", f"document {i}", len(text), *fp)
            for i, (text, fp) in enumerate(zip(texts, fingerprints, strict=True))]
    del texts, fingerprints
    result = {"documents": count, "mean_words": round(words, 1),
              "signatures_per_second": round(len(docs) / sign_seconds)}
    sign_seconds *= count / len(docs)
    with tempfile.TemporaryDirectory() as tmp:
        for run in ("time", "memory"):
            out = Path(tmp) / run
            state = stage_docs(out, docs[:count], cfg)
            executor = steps_executor(workers, out / STATE_DIR)
            if run == "memory":
                tracemalloc.start()
            started = time.perf_counter()
            first = run_round(state, out / STATE_DIR, LocalStore(out), cfg, executor)
            seconds = time.perf_counter() - started
            if run == "time":
                # fresh workers for a fresh state connection: a process forked while an earlier connection
                # was open must not read the database after that connection closed (SQLite and fork)
                executor.close()
                state.close()
                state = stage_docs(out, docs[count:], cfg)
                executor = steps_executor(workers, out / STATE_DIR)
                later_started = time.perf_counter()
                later = run_round(state, out / STATE_DIR, LocalStore(out), cfg, executor)
                cores = max(workers, 1)  # signatures are made by the run's workers in parallel too
                result.update(
                    workers=workers, index_and_clustering_seconds=round(seconds, 2), steps=first.report["steps"],
                    signatures_and_clustering_per_second_per_core=round(count / (sign_seconds + cores * seconds)),
                    duplicates=first.report["duplicates"], later_batch=len(docs) - count,
                    later_batch_seconds=round(time.perf_counter() - later_started, 2),
                    later_batch_duplicates=later.report["duplicates"],
                    index_file_mb=round((out / STATE_DIR / "state.sqlite").stat().st_size / 2**20, 1))
            else:
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
                result.update(traced_peak_mb=round(peak / 2**20, 1),
                              signature_mb=round(count * cfg.num_perm * 4 / 2**20, 1),
                              traced_peak_over_signatures=round(peak / (count * cfg.num_perm * 4), 2))
            state.close()
            executor.close()
    return result


def stage_docs(out: Path, docs: Iterable[tuple[str, str, int, str, bytes, int]], cfg: DedupConfig,
               shard_pages: int = 2000):
    """An output folder holding `docs` (id, text, length, exact key, signature, distinct n-grams) as cleaned
    documents awaiting dedup, as a run's clean phase leaves it (after any shards already there); its state."""
    from pipeline.dedup import stage_as_kept
    from pipeline.dedup.tasks import STAGED
    from pipeline.document import Document
    from pipeline.io.writer import to_json
    from pipeline.records import record_of
    from pipeline.state import FORMAT_KEY, STATE_DIR, RunState

    state = RunState(out / STATE_DIR)
    state.set_setting(FORMAT_KEY, "jsonl")  # the run below writes JSON lines, read back by dedup_by_run
    run_id = state.begin_run("bench")
    seq = state.next_seq()
    docs = iter(docs)
    while shard := list(itertools.islice(docs, shard_pages)):
        pending = [(doc_id, f"in{seq}", seq, pos, length, None, exact, sig, shingles)
                   for pos, (doc_id, _, length, exact, sig, shingles) in enumerate(shard)]
        outputs = [(doc_id, f"in{seq}", "documents") for doc_id, *_ in shard]
        # records as a run stages them: the schema's envelope, with the kept decision in it
        lines = [to_json(stage_as_kept(record_of(Document(doc_id, text, {"source_path": f"raw/in{seq}"}), "bench")))
                 for doc_id, text, *_ in shard]
        folder = out / STATE_DIR / STAGED
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"part-{seq:06d}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        state.commit_shard(seq, run_id, "staged", {STAGED: len(shard)}, [], outputs, pending)
        seq += 1
    state.end_run(run_id, "interrupted", "bench", {})
    return state


# --- the run path: the four dedup steps of `pagewash run` ---------------------------------------------

def dedup_by_run(docs: Iterable[tuple[str, str, int, str, bytes, int]], cfg: DedupConfig, workers: int,
                 shard_pages: int = 2000) -> tuple[dict, dict[str, str]]:
    """`pagewash run`'s dedup phase over `docs` (id, text, length, exact key, signature, distinct n-grams): an
    output folder holding them as cleaned documents awaiting dedup (as a run leaves it after its clean phase), then
    `pagewash run` over an empty input folder, so that only its four dedup steps work. Returns the run's
    report and each document's cluster (`dup_cluster`, a kept document's own id) as the output holds it."""
    import subprocess

    with tempfile.TemporaryDirectory() as tmp:
        raw, out = Path(tmp) / "raw", Path(tmp) / "out"
        raw.mkdir()
        stage_docs(out, docs, cfg, shard_pages).close()
        config = Path(tmp) / "pagewash.toml"
        config.write_text("[dedup]\n" + "".join(f"{k} = {getattr(cfg, k)}\n" for k in (
            "threshold", "containment", "containment_min", "ngram", "num_perm", "bands", "rows", "seed", "partitions")),
                          encoding="utf-8")
        proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "-q", "run", str(raw), "-o", str(out),
                               "--workers", str(workers), "--config", str(config), "--format", "jsonl"],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr)
        report = json.loads((out / "report.json").read_text(encoding="utf-8"))
        clusters = {}
        for stream in ("documents", "duplicates"):
            for path in sorted((out / stream).glob("*.jsonl")):
                for line in filter(None, path.read_text(encoding="utf-8").split("\n")):  # not splitlines: U+2028
                    record = json.loads(line)
                    clusters[record["id"]] = record["metadata"].get("dup_cluster") or record["id"]
    return report, clusters


def run_path(count: int, cfg: DedupConfig, seed: int, workers: int) -> dict:
    """Times `pagewash run`'s dedup steps on `count` documents, with the driver's memory beside the signatures'
    size. Signatures are synthetic (random slots; 20 % near copies keeping 75-95 % of an earlier document's
    slots, 5 % exact copies), which exercises the steps as real text would without spending minutes on MinHash."""
    import numpy as np

    rng = np.random.default_rng(seed)
    result = {"documents": count, "workers": workers, "partitions": cfg.partitions,
              "signature_mb": round(count * cfg.num_perm * 4 / 2**20, 1)}

    def documents() -> Iterator[tuple[str, str, int, str, bytes]]:
        sigs = np.empty((count, cfg.num_perm), dtype=np.uint32)
        exacts: list[str] = []
        for k in range(count):
            draw = rng.random()
            if k and draw < 0.25:
                source = int(rng.integers(0, k))
                sigs[k] = sigs[source]
                if draw < 0.05:
                    exacts.append(exacts[source])
                else:
                    changed = rng.random(cfg.num_perm) < rng.uniform(0.05, 0.25)
                    sigs[k, changed] = rng.integers(0, 2**32, size=int(changed.sum()), dtype=np.uint32)
                    exacts.append(rng.bytes(16).hex())
            else:
                sigs[k] = rng.integers(0, 2**32, size=cfg.num_perm, dtype=np.uint32)
                exacts.append(rng.bytes(16).hex())
            yield f"{k:040x}", f"document {k}", 3000, exacts[k], sigs[k].tobytes(), 0  # size unknown: Jaccard only

    report, _ = dedup_by_run(documents(), cfg, workers)
    dedup = report["dedup"]
    driver = dedup["driver_rss_mb"]
    result.update(duplicates=dedup["duplicates"], seconds=dedup["seconds"], steps=dedup["steps"],
                  driver_rss_before_mb=driver["before"], driver_peak_mb=driver["peak"],
                  driver_peak_over_signatures=round(driver["peak"] / result["signature_mb"], 2),
                  driver_growth_mb=round(driver["peak"] - driver["before"], 1),
                  largest_worker_mb=report["peak_rss_mb"]["largest_worker"])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"))
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated set (not the MinHash seed)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--scale", type=int, default=0, metavar="N", help="time N synthetic 600-word documents")
    parser.add_argument("--run", type=int, default=0, metavar="N",
                        help="the dedup steps of `pagewash run` over N documents: time and the driver's memory")
    parser.add_argument("--workers", type=int, default=2,
                        help="workers of the dedup steps (`--scale`: 0 runs them in this process)")
    parser.add_argument("--partitions", type=int, default=DedupConfig().partitions, help="for --run")
    parser.add_argument("--set", choices=("gentle", "syndication"), default="gentle",
                        help="the labelled set: gentle variants (the README's figures) or syndication-like copies")
    parser.add_argument("--stories", type=int, default=0, metavar="N",
                        help="--set syndication: use N gold stories (0: all)")
    parser.add_argument("--no-datasketch", action="store_true", help="skip the (slow) datasketch baseline")
    for name in ("threshold", "ngram", "num_perm", "bands", "rows"):
        kind = float if name == "threshold" else int
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, help="override the default")
    args = parser.parse_args(argv)
    cfg = dataclasses.replace(DedupConfig(), **{k: v for k in ("threshold", "ngram", "num_perm", "bands", "rows")
                                                if (v := getattr(args, k)) is not None})
    stories = load_stories(Path(args.shared) / "bench" / "wcxb-dev" / "gold")
    params = {k: getattr(cfg, k) for k in ("threshold", "ngram", "num_perm", "bands", "rows", "seed")}
    if args.run:
        cfg = dataclasses.replace(cfg, partitions=args.partitions)
        result = {"params": params, **run_path(args.run, cfg, args.seed, args.workers)}
        print(json.dumps(result, indent=1) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
        return 0
    if args.scale:
        result = {"params": params, **scale(stories, args.scale, cfg, args.seed, args.workers)}
        print(json.dumps(result, indent=1) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
        return 0
    if args.set == "syndication":
        return syndication_report(stories, cfg, params, args)
    texts, labels, kinds = build_set(stories, args.seed)
    rows = compare(texts, labels, cfg, args)
    ours = rows[PAGEWASH]
    passed = ours["ari"] >= ACCEPT_ARI and ours["precision"] >= ACCEPT_PRECISION
    words = sum(len(_WORD.findall(t)) for t in texts) / len(texts)
    summary = {"params": params, "set_seed": args.seed, "documents": len(texts), "true_clusters": len(set(labels)),
               **kinds, "mean_words": round(words), "methods": rows, "accepted": passed}
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(f"{len(texts)} documents ({', '.join(f'{v} {k}' for k, v in kinds.items())}), mean {words:.0f} words, "
              f"{len(set(labels))} true clusters; set seed {args.seed}; params {params}")
        print("| method | clusters | ARI | pairwise P | pairwise R | docs/s (1 core) |\n|---|---|---|---|---|---|")
        for name, row in rows.items():
            print(f"| {name} | {row['clusters']} | {row['ari']:.4f} | {row['precision']:.4f} "
                  f"| {row['recall']:.4f} | {row['docs_per_second']:,} |")
        print(f"acceptance (ARI >= {ACCEPT_ARI}, precision >= {ACCEPT_PRECISION}): {'pass' if passed else 'FAIL'}")
    return 0 if passed else 1


PAGEWASH = "pagewash (run's dedup steps: exact + MinHash LSH, verified)"


def compare(texts: list[str], labels: list, cfg: DedupConfig, args: argparse.Namespace,
            docs: list[Doc] | None = None) -> dict[str, dict]:
    """Every method on one set: ARI, pairwise precision and recall, documents per second, and with `docs`
    (the syndication set) the per-copy and hard-negative figures."""
    runs = {PAGEWASH: lambda: run_pagewash(texts, cfg, args.workers),
            "exact hash of normalised text": lambda: run_exact(texts)}
    if not args.no_datasketch:
        runs["datasketch MinHashLSH (unverified)"] = lambda: run_datasketch(texts, cfg)
    rows = {}
    for name, method in runs.items():
        clusters, seconds, *bands = method()
        if bands:
            name = f"datasketch MinHashLSH ({bands[0][0]}x{bands[0][1]}, unverified)"
        rows[name] = {**pair_scores(labels, clusters), "docs_per_second": round(len(texts) / seconds)}
        if docs is not None:
            rows[name].update(syndication_scores(docs, clusters))
    return rows


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def syndication_report(stories: list[Story], cfg: DedupConfig, params: dict, args: argparse.Namespace) -> int:
    """The syndication set's table (or JSON); exit 1 unless pagewash meets issue 16's acceptance: ARI >= 0.97,
    pairwise precision >= 0.995, recall on copies truncated to <= 50 % >= 0.9."""
    docs = build_syndication(stories, args.seed, args.stories)
    texts, labels = [d.text for d in docs], [d.label for d in docs]
    rows = compare(texts, labels, cfg, args, docs)
    ours = rows[PAGEWASH]
    short = ours["recall_truncated_le_50"]["recall"]
    passed = (ours["ari"] >= SYNDICATION_ARI and ours["precision"] >= SYNDICATION_PRECISION
              and (short is None or short >= SYNDICATION_SHORT_RECALL))
    roles = Counter(d.role for d in docs)
    words = sum(len(_WORD.findall(t)) for t in texts) / len(texts)
    summary = {"set": "syndication", "params": params, "set_seed": args.seed, "stories": len(set(labels)),
               "documents": len(docs), "originals": roles["original"], "copies": roles["copy"],
               "follow_ups": roles["follow-up"], "mean_words": round(words), "methods": rows, "accepted": passed}
    if args.json:
        print(json.dumps(summary, indent=1))
        return 0 if passed else 1
    print(f"{len(docs)} documents ({roles['original']} originals, {roles['copy']} copies, {roles['follow-up']} "
          f"follow-ups), mean {words:.0f} words, {len(set(labels))} true clusters; set seed {args.seed}; "
          f"params {params}")
    print("| method | clusters | ARI | pairwise P | pairwise R | copies found | truncated <= 50 % found "
          "| follow-ups merged | same-site pairs merged | docs/s |\n|---|---|---|---|---|---|---|---|---|---|")
    for name, row in rows.items():
        follow, site = row["follow_ups_merged"], row["site_template_pairs_merged"]
        print(f"| {name} | {row['clusters']} | {row['ari']:.4f} | {row['precision']:.4f} | {row['recall']:.4f} "
              f"| {_pct(row['copy_recall']['recall'])} | {_pct(row['recall_truncated_le_50']['recall'])} "
              f"| {follow['merged']}/{follow['of']} | {site['merged']}/{site['of']} | {row['docs_per_second']:,} |")
    names = list(rows)
    for title, key in (("edit type", "recall_by_edit"), ("edit type, untruncated copies", "recall_by_edit_untruncated"),
                       ("body kept (truncated copies)", "recall_by_truncation")):
        print(f"\n| {title} | copies | " + " | ".join(names) + " |\n|---|---|" + "---|" * len(names))
        for kind, cell in rows[names[0]][key].items():
            print(f"| {kind} | {cell['of']} | " + " | ".join(_pct(rows[n][key][kind]["recall"]) for n in names) + " |")
    print(f"acceptance (ARI >= {SYNDICATION_ARI}, precision >= {SYNDICATION_PRECISION}, recall on copies truncated "
          f"to <= 50 % >= {SYNDICATION_SHORT_RECALL}): {'pass' if passed else 'FAIL'}")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
