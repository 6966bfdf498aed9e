"""pipeline.rules: packaged defaults, user overrides, error messages, named heuristics."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import stream_records
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import ConfigError
from pipeline.rules import HEURISTIC_TESTS, HEURISTICS, RuleSet, line_key, load_rules


@pytest.fixture(scope="module")
def defaults() -> RuleSet:
    return load_rules()


def drop_hit(rules: RuleSet, line: str) -> str | None:
    return rules.match(line, line_key(line), "drop")


def cut_after_hit(rules: RuleSet, line: str) -> str | None:
    return rules.match(line, line_key(line), "cut_after")


def write_rules(folder: Path, text: str, name: str = "mine.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# --- packaged defaults ------------------------------------------------------------------------------


def test_defaults_load(defaults):
    ids = {rule.id for rule in defaults.rules}
    assert {"nav.menu", "cookie.banner", "related.section", "footer.copyright", "share.bar"} <= ids
    assert len(defaults.files) >= 10
    assert all(f.endswith(".toml") for f in defaults.files)
    assert {p.field for p in defaults.meta} == {"author", "sitename"}


def test_default_ids_are_unique(defaults):
    ids = [rule.id for rule in defaults.rules]
    assert len(ids) == len(set(ids))


def test_every_heuristic_has_a_test_and_a_default_rule(defaults):
    assert set(HEURISTICS) == set(HEURISTIC_TESTS)
    assert {rule.heuristic for rule in defaults.rules if rule.heuristic} == set(HEURISTICS)


@pytest.mark.parametrize(
    "line, rule_id",
    [
        ("Home", "nav.menu"),
        ("  • Skip to content", "nav.menu"),
        ("SUBSCRIBE:", "nav.menu"),
        ("We use cookies to improve your experience on our site.", "cookie.banner"),
        ("Accept all cookies", "cookie.banner"),
        ("© 2024 Example Times. All rights reserved.", "footer.copyright"),
        ("Privacy Policy", "legal.links"),
        ("Share on Facebook", "share.bar"),
        ("Home > News > World", "nav.breadcrumb"),
        ("Page 2 of 10", "nav.pagination"),
        ("Tags: politics, economy", "tags.line"),
        ("July 2025 (829)", "archive.month"),
        ("5 min read", "time.relative"),
    ],
)
def test_default_drop_rules_match(defaults, line, rule_id):
    assert drop_hit(defaults, line) == rule_id


@pytest.mark.parametrize("line", ["Related Posts", "You May Also Like", "Leave a Reply"])
def test_default_cut_after_markers(defaults, line):
    assert cut_after_hit(defaults, line) in {"related.section", "comments.section"}
    assert drop_hit(defaults, line) is None


@pytest.mark.parametrize(
    "line",
    [
        "The council voted on Tuesday to approve a new plan for the old harbour district.",
        "Home prices rose sharply in the second quarter, the report said.",
        "iPhone",
    ],
)
def test_prose_matches_nothing(defaults, line):
    for action in ("drop", "cut_after", "cut_before"):
        assert defaults.match(line, line_key(line), action) is None


def test_line_key_folds_bullets_case_and_space():
    assert line_key("  •  Skip   TO Content : ") == "skip to content"
    assert line_key("» Related Posts") == "related posts"


# --- user folders -----------------------------------------------------------------------------------


def test_user_rule_disables_default_by_id(tmp_path, defaults):
    assert drop_hit(defaults, "Subscribe") == "nav.menu"
    write_rules(tmp_path, '[[rule]]\nid = "nav.menu"\nenabled = false\n')
    rules = load_rules([tmp_path])
    ids = {rule.id for rule in rules.rules}
    assert "nav.menu" not in ids
    assert "cookie.banner" in ids
    assert drop_hit(rules, "Subscribe") is None
    assert str(tmp_path / "mine.toml") in rules.files


def test_user_rule_overrides_default_key_by_key(tmp_path):
    write_rules(tmp_path, '[[rule]]\nid = "nav.menu"\nexact = ["frobnicate now"]\n')
    rules = load_rules([tmp_path])
    (menu,) = [rule for rule in rules.rules if rule.id == "nav.menu"]
    assert menu.exact == frozenset({"frobnicate now"})
    assert menu.action == "drop"
    assert drop_hit(rules, "Frobnicate Now") == "nav.menu"
    assert drop_hit(rules, "Skip to content") is None


def test_user_rule_adds_exact_phrase(tmp_path, defaults):
    line = "Support Independent Harbour Journalism Today"
    assert drop_hit(defaults, line) is None
    write_rules(
        tmp_path,
        '[[rule]]\nid = "mysite.donate"\ndescription = "donation box"\n'
        'exact = ["support independent harbour journalism today"]\n',
    )
    rules = load_rules([tmp_path])
    assert drop_hit(rules, line) == "mysite.donate"
    assert drop_hit(rules, "• " + line.upper()) == "mysite.donate"
    assert drop_hit(rules, "Subscribe") == "nav.menu"  # defaults still apply


def test_user_site_rule_applies_only_to_its_site(tmp_path):
    write_rules(tmp_path, '[[rule]]\nid = "site.only"\nexact = ["harbour extra"]\nsites = ["example.com"]\n')
    rules = load_rules([tmp_path])
    assert rules.match("Harbour Extra", "harbour extra", "drop") is None
    assert rules.match("Harbour Extra", "harbour extra", "drop", frozenset({"example.com"})) == "site.only"


def test_user_folder_without_defaults(tmp_path):
    write_rules(tmp_path, '[[rule]]\nid = "only.one"\nregex = ["^zzz+$"]\n')
    rules = load_rules([tmp_path], include_defaults=False)
    assert [rule.id for rule in rules.rules] == ["only.one"]
    assert drop_hit(rules, "zzzz") == "only.one"
    assert drop_hit(rules, "Home") is None


def test_missing_folder_is_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not a folder"):
        load_rules([tmp_path / "nope"])


# --- error messages ---------------------------------------------------------------------------------


def test_bad_regex_names_file_line_and_reason(tmp_path):
    path = write_rules(
        tmp_path,
        "# my rules\n"
        "[[rule]]\n"
        'id = "x.bad"\n'
        'description = "broken"\n'
        'regex = ["(unclosed"]\n',
        name="broken.toml",
    )
    with pytest.raises(ConfigError) as info:
        load_rules([tmp_path])
    message = str(info.value)
    assert "broken.toml" in message
    assert str(path) in message
    assert ":5:" in message  # the line of the `regex =` key
    assert "bad regex" in message
    assert "(unclosed" in message


def test_bad_regex_in_second_table_points_at_its_line(tmp_path):
    write_rules(
        tmp_path,
        '[[rule]]\nid = "a.ok"\nregex = ["fine"]\n\n'
        '[[rule]]\nid = "b.bad"\nexact = ["x"]\nregex = ["[z-a]"]\n',
    )
    with pytest.raises(ConfigError) as info:
        load_rules([tmp_path])
    assert ":8:" in str(info.value)
    assert "bad regex" in str(info.value)


def test_unknown_key_names_key_and_line(tmp_path):
    write_rules(tmp_path, '[[rule]]\nid = "x.y"\nexact = ["foo"]\ncolour = "red"\n', name="keys.toml")
    with pytest.raises(ConfigError) as info:
        load_rules([tmp_path])
    message = str(info.value)
    assert "keys.toml:4:" in message
    assert "'colour'" in message
    assert "unknown key" in message


def test_unknown_heuristic(tmp_path):
    write_rules(tmp_path, '[[rule]]\nid = "x.y"\n\nheuristic = "telepathy"\n', name="h.toml")
    with pytest.raises(ConfigError) as info:
        load_rules([tmp_path])
    message = str(info.value)
    assert "h.toml:4:" in message
    assert "unknown heuristic 'telepathy'" in message
    for name in HEURISTICS:
        assert name in message


def test_toml_syntax_error_mentions_line(tmp_path):
    write_rules(tmp_path, '[[rule]]\nid = "x.y"\nexact = = ["foo"]\n', name="syntax.toml")
    with pytest.raises(ConfigError) as info:
        load_rules([tmp_path])
    message = str(info.value)
    assert "syntax.toml" in message
    assert re.search(r"\bline 3\b", message)


@pytest.mark.parametrize(
    "body, fragment",
    [
        ('[[rule]]\nexact = ["foo"]\n', "needs a string id"),
        ('[[rule]]\nid = "x.y"\naction = "explode"\nexact = ["foo"]\n', "action must be one of"),
        ('[[rule]]\nid = "x.y"\ndescription = "nothing to match"\n', "none of exact, prefix, regex, heuristic"),
        ('[[rule]]\nid = "x.y"\nexact = [1, 2]\n', "exact must be a list of strings"),
        ('[settings]\nfoo = 1\n', "unknown top-level key"),
        ('[[meta]]\nid = "m.x"\nfield = "colour"\nregex = "(?P<value>x)"\n', "field must be one of"),
        ('[[meta]]\nid = "m.x"\nfield = "author"\nregex = "by (.+)"\n', "(?P<value>...)"),
    ],
)
def test_other_validation_errors(tmp_path, body, fragment):
    write_rules(tmp_path, body, name="bad.toml")
    with pytest.raises(ConfigError) as info:
        load_rules([tmp_path])
    assert "bad.toml" in str(info.value)
    assert fragment in str(info.value)


# --- heuristics -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, line",
    [
        ("stray_chars", ". . .. $ $ $ - - -"),
        ("stray_chars", "* * *"),
        ("glued_words", "ShareTweetPin"),
        ("glued_words", "app-storeplay-store"),
        ("counter_cloud", "Africa (977) Asia (834) Brazil (858)"),
        ("counter_cloud", "January 2025 (12) February 2025 (9) March 2025 (4)"),
        ("counter_cloud", "mHealth for Wellness, Behavior Change and Prevention (3333) Anxiety and Stress Disorders "
                          "(1334) Mindfulness and Meditation (268)"),
        ("counter_cloud", "Categories: Africa (977) Asia (834) Brazil (858)"),  # a heading may open the cloud
        ("counter_cloud", "U.S. (1,977) U.K. (834) Mr. Smith (3) St. Louis (5)"),  # abbreviations, counts with commas
        ("counter_cloud", "Africa (977) Asia (834) Brazil (858)."),
        ("counter_cloud", "Africa (977) Asia (834) Brazil (858) Chile (3) and more in the archive, see below. (5)"),
        ("calendar", "MTWTFSS"),
        ("calendar", "567891011"),
        ("calendar", "« Apr Jun »"),
        ("image_file", "Hong-Kong-Finance-1280x765.jpg"),
        ("image_file", "photo.PNG?w=640"),
    ],
)
def test_heuristic_matches(name, line):
    assert HEURISTIC_TESTS[name](line) is True


@pytest.mark.parametrize(
    "name, line",
    [
        ("stray_chars", "Price: $5"),
        ("stray_chars", ""),
        ("glued_words", "iPhone"),
        ("glued_words", "McDonald"),
        ("glued_words", "Share Tweet Pin"),
        ("counter_cloud", "Africa (977) Asia (834)"),
        ("counter_cloud", "The population of Brazil (2022) was large."),
        # prose with years or counts in brackets: what stands before them is no label
        ("counter_cloud", "Her work was shown at the Centre Pompidou, Paris (1982); San Francisco Museum of Modern "
                          "Art (1990); Tate, London (2001); and elsewhere."),
        ("counter_cloud", "Receive 20% off your purchase of three (3) to five (5) qualifying skincare products "
                          "(defined below) to create a custom set, and a free cleanser with orders of $40 or more (1) "
                          "per customer."),
        ("counter_cloud", "PMP leads with 24,780 postings, followed by CAPM (3,923), HubSpot (3,371), and CSCP "
                          "(2,915). Use these numbers to choose."),
        ("counter_cloud", "He showed at MoMA, New York (1993). He taught at Harvard (1994) and Leipzig (1996)"),
        ("counter_cloud", "Africa (977) Asia (834) Brazil (858) Chile (3) and more in the archive, see below. (5) "
                          "Then the story goes on for a good while longer."),
        ("calendar", "The meeting is on Monday."),
        ("calendar", "2025"),
        ("image_file", "See the attached photo.jpg for details"),
        ("image_file", "Hong Kong Finance"),
    ],
)
def test_heuristic_rejects(name, line):
    assert HEURISTIC_TESTS[name](line) is False


@pytest.mark.parametrize(
    "line, rule_id",
    [
        (". . .. $ $ $ - - -", "stray.chars"),
        ("Africa (977) Asia (834) Brazil (858)", "tags.counter_cloud"),
        ("MTWTFSS", "calendar.widget"),
        ("Hong-Kong-Finance-1280x765.jpg", "media.image_file"),
        ("PinterestRedditTelegram", "share.glued"),
    ],
)
def test_heuristic_rules_fire_through_ruleset(defaults, line, rule_id):
    assert drop_hit(defaults, line) == rule_id


# --- the screen that lets most lines skip the rules ---------------------------------------------------

def _any_action_hits(rules: RuleSet, line: str) -> bool:
    key = line_key(line)
    return any(rules.match(line, key, action) is not None for action in ("drop", "cut_after", "cut_before"))


def _screened(rules: RuleSet, line: str) -> bool:
    """The rule screen's verdict on one line (`RuleSet.candidates` of a one-line page)."""
    from pipeline.linestats import line_stats

    return rules.candidates(line_stats([line]), [line_key(line)])[0]


def _seed_lines() -> list[str]:
    from conftest import SEEDS_RAW

    lines = []
    for path in sorted(SEEDS_RAW.iterdir()):
        lines += [ln.strip() for ln in path.read_text(encoding="utf-8", errors="replace").split("\n") if ln.strip()]
    return lines


def test_screen_never_hides_a_rule_hit_on_the_seed_lines(defaults):
    lines = _seed_lines()
    hits = [line for line in lines if _any_action_hits(defaults, line)]
    assert len(hits) > 50  # the seeds are full of boilerplate: the check below is not vacuous
    for line in lines:
        if _any_action_hits(defaults, line):
            assert _screened(defaults, line), line
    # and it does screen: most lines (the article's) are not handed to the rules at all
    screened_out = sum(1 for line in lines if not _screened(defaults, line))
    assert screened_out > 0.5 * len(lines)


_RULE_WORDS = ["cookies", "we use", "share on", "facebook", "home", "»", "›", "/", "page", "of", "comments", "photo:",
               "tags:", "©", "2024", "12", "(3)", "MTWTFSS", "img.jpg", "ShareTweetPin", "...", "- - -", "read more:"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_RULE_WORDS) | st.text(max_size=12), max_size=8).map(" ".join))
def test_screen_never_hides_a_rule_hit_on_any_line(line):
    rules = load_rules()
    line = line.strip()
    if _any_action_hits(rules, line):
        assert _screened(rules, line)


@pytest.mark.parametrize("pattern, anchored", [
    (r"^foo", True), (r"^(?:a|b)c$", True), (r"^a|b", False), (r"(?:^a)", True), (r"(^a)|b", False), (r"\bfoo", False),
    (r"foo$", False),
])
def test_anchored_patterns_are_told_apart(pattern, anchored):
    from pipeline.rulescreen import _anchored

    assert _anchored(re.compile(pattern)) is anchored


def test_user_patterns_that_cannot_be_combined_still_match(tmp_path):
    """Back-references and inline flags keep a pattern out of the combined screens, never out of the rules."""
    write_rules(tmp_path / "r", '[[rule]]\nid = "x.backref"\nregex = ["^(\\\\w+) \\\\1$"]\n'
                                '[[rule]]\nid = "x.flags"\nregex = ["(?s)^spam.*eggs$"]\n')
    rules = load_rules([tmp_path / "r"])
    for line, rule_id in (("bye bye", "x.backref"), ("spam and eggs", "x.flags")):
        assert _screened(rules, line)
        assert drop_hit(rules, line) == rule_id


def test_conditional_groups_are_screened_alone(tmp_path):
    """Combined with `^(x)?y`, `(?(1)b|c)` would test the other pattern's group 1 and never see its own."""
    write_rules(tmp_path / "r", '[[rule]]\nid = "x.first"\nregex = ["^(x)?y$"]\n'
                                '[[rule]]\nid = "x.cond"\nregex = ["^(a)?(?(1)b|c)$"]\n')
    rules = load_rules([tmp_path / "r"])
    assert _screened(rules, "ab")
    assert drop_hit(rules, "ab") == "x.cond"
    assert drop_hit(rules, "xy") == "x.first"


def test_no_packaged_pattern_backtracks_on_long_runs_of_digits_or_spaces():
    """`(?:\\d+\\s*){2,}` took minutes on a calendar's 284-digit line ending in ` Page` (nested quantifiers over
    the same characters: exponential backtracking once the anchor fails). Every packaged pattern, on lines built
    to trip such nesting, must give its answer; the alarm turns a hang into a failure."""
    import signal

    rules = load_rules(())
    lines = ["".join(str(i) for i in range(1, 130)) + " Page", "1 " * 200 + "x", "- " * 300 + "a",
             "Tag (1) " * 100 + "x", "a1" * 300 + " "]

    def hung(*_args):
        raise TimeoutError("a rule pattern backtracks without end")

    previous = signal.signal(signal.SIGALRM, hung)
    try:
        for line in lines:
            signal.alarm(10)
            rules.match(line, line_key(line), "drop")
            for rule in rules.rules:
                for pattern in rule.regex:
                    pattern.search(line)
            signal.alarm(0)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    digits = "".join(str(i) for i in range(1, 30))
    assert rules.match(digits, line_key(digits), "drop") is not None  # a pager of glued numbers still goes
    assert rules.match("« 1 2 3 4 »", line_key("« 1 2 3 4 »"), "drop") == "nav.pagination"


# --- site rules in a run ----------------------------------------------------------------------------


_PROMO = "Harbour Extra readers get a weekly offer on ferry tickets to the islands all through this summer."


def _article(topic: str) -> str:
    """A text dump of a short article about `topic`, with the promotion line between its paragraphs."""
    paragraphs = [
        f"The council met on Tuesday evening to discuss the future of the {topic} and the money it needs.",
        f"Residents who spoke at the meeting said the {topic} had been neglected for years, and that repairs "
        "were long overdue after two winters of storms along the coast.",
        _PROMO,
        f"The mayor promised that a plan for the {topic} would be published before the end of the year, with "
        "a public consultation to follow in the spring and a vote in the summer.",
        f"Opposition members said the promise came too late, and asked why the {topic} had not been part of "
        "the budget approved in March, when the costs were already known to the officials.",
    ]
    return f"{topic.title()} plan promised\n\n" + "\n\n".join(paragraphs) + "\n"


def test_a_site_rule_fires_in_a_run_on_its_site_only(tmp_path):
    """Issue 17: a `sites` rule was parsed but no stage passed the page's site, so it never fired in a run. Now
    the page's hostname (from its URL: sidecar, export, archive; any subdomain of a listed domain) or its
    site name (sidecar) selects it: the same line goes on example.com pages, text or HTML, and stays
    elsewhere."""
    from pipeline.config import load_config
    from pipeline.run.corpus import run_corpus

    rules = write_rules(tmp_path / "rules", '[[rule]]\nid = "site.harbour_promo"\naction = "drop"\n'
                        f'exact = ["{_PROMO}"]\nsites = ["example.com"]\n').parent
    raw = tmp_path / "raw"
    raw.mkdir()
    pages = {"mine.txt": ("https://www.example.com/harbour", "harbour"),
             "theirs.txt": ("https://other.org/bridge", "bridge"),
             "named.txt": (None, "library"),
             "page.html": ("https://news.example.com/pool", "pool")}
    for name, (url, topic) in pages.items():
        text = _article(topic)
        if name.endswith(".html"):
            body = "".join(f"<p>{p}</p>" for p in text.split("\n\n")[1:])
            text = f"<html><head><title>{topic}</title></head><body><article>{body}</article></body></html>"
        (raw / name).write_text(text, encoding="utf-8")
        side = {"url": url} if url else {"site": "Example.com"}
        (raw / (name.split(".")[0] + ".meta.json")).write_text(json.dumps(side), encoding="utf-8")
    out = tmp_path / "out"
    run_corpus(raw, out, load_config(rules_dirs=[str(rules)]), workers=0, progress=False)
    records = {Path(r["metadata"]["source_path"]).name: r for stream in ("documents", "duplicates")
               for r in stream_records(out / stream)}
    assert set(records) == set(pages)
    for name in ("mine.txt", "named.txt", "page.html"):
        assert _PROMO not in records[name]["text"], name
        hits = {hit["rule"]: hit["lines"] for hit in records[name]["metadata"]["cleaning"]["rules_hit"]}
        assert hits.get("site.harbour_promo") == 1, name
    assert _PROMO in records["theirs.txt"]["text"]
    theirs = records["theirs.txt"]["metadata"]["cleaning"]["rules_hit"]
    assert "site.harbour_promo" not in {hit["rule"] for hit in theirs}


@pytest.mark.parametrize(("text", "message"), [
    ('[vocabulary]\nmonths = ["mai"]\nmonthz = ["x"]\n', r"words\.toml:3: unknown key 'monthz' in \[vocabulary\]"),
    ('[vocabulary]\nbyline_words = "von"\n', r"words\.toml:2: byline_words must be a list of non-empty strings"),
    ('[vocabulary]\nbyline_words = ["", "von"]\n', r"words\.toml:2: byline_words must be a list"),
    ('vocabulary = 3\n', r"words\.toml:1: vocabulary must be a table"),
])
def test_a_bad_vocabulary_is_refused_naming_file_and_line(tmp_path, text, message):
    write_rules(tmp_path, text, "words.toml")
    with pytest.raises(ConfigError, match=message):
        load_rules([tmp_path])


def test_the_packaged_vocabulary_is_what_a_ruleset_uses_by_default():
    from pipeline.rules import packaged_vocabulary

    assert load_rules().vocab == packaged_vocabulary() == RuleSet(rules=(), meta=()).vocab
    assert "september" in packaged_vocabulary().months
