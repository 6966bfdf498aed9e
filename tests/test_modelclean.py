"""The learned text-dump cleaner: verdicts with probabilities, the user's rules over the model, the heuristic still
selectable, model files checked, training reproducible byte for byte."""

from __future__ import annotations

import gzip
import json
import math
import sys
from pathlib import Path

import pytest
from conftest import ARTICLE, ROOT, SEEDS_RAW, SHARED
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.clean import linefeatures as lf
from pipeline.clean.linemodel import ModelError, load_model
from pipeline.clean.modelclean import clean_with_model
from pipeline.config import CleanConfig, ConfigError, load_config
from pipeline.document import RawPage
from pipeline.linestats import line_stats
from pipeline.rules import line_key, load_rules
from pipeline.stages.runner import Pipeline

SEED = SEEDS_RAW / "000_d2de09946bceaf6b.txt"
MODEL_IDS = ("model.boilerplate", "model.title", "model.author", "model.date")


@pytest.fixture(scope="module")
def model_pipeline() -> Pipeline:
    return Pipeline(load_config(clean={"method": "model"}))


def _lines(pipeline: Pipeline, path: Path = SEED):
    outcome = pipeline.process(RawPage(str(path), path.name, path.read_bytes()))
    return outcome.document.lines.verdicts


def _rules_dir(tmp_path: Path, action: str, line: str, rule_id: str) -> Path:
    folder = tmp_path / f"rules-{action}"
    folder.mkdir(exist_ok=True)
    (folder / f"{action}.toml").write_text(
        f'[[rule]]\nid = "{rule_id}"\naction = "{action}"\nexact = [{json.dumps(line_key(line))}]\n', encoding="utf-8")
    return folder


def test_every_worded_line_has_a_probability_and_a_reason_when_dropped(model_pipeline):
    lines = [v for v in _lines(model_pipeline) if v.label != "blank"]
    assert lines and all(v.probability is not None and 0.0 <= v.probability <= 1.0 for v in lines)
    assert {v.label for v in lines} <= {"body", "title", "author", "date", "boilerplate"}
    for v in lines:
        if not v.kept:
            assert v.rule_id, v
    assert any(v.rule_id in MODEL_IDS for v in lines)  # the model, not only the rules, decided some lines
    assert any(v.kept and v.label == "body" for v in lines)


def test_a_user_drop_rule_beats_the_model(model_pipeline, tmp_path):
    kept = next(v for v in _lines(model_pipeline) if v.kept and len(v.text.split()) >= 8)
    rules = _rules_dir(tmp_path, "drop", kept.text, "mine.drop")
    mine = Pipeline(load_config(rules_dirs=[str(rules)], clean={"method": "model"}))
    verdict = next(v for v in _lines(mine) if v.index == kept.index)
    assert not verdict.kept and verdict.rule_id == "mine.drop"


def test_a_user_keep_rule_keeps_a_line_the_model_drops(model_pipeline, tmp_path):
    dropped = next(v for v in _lines(model_pipeline) if v.rule_id == "model.boilerplate" and len(v.text.split()) >= 2)
    rules = _rules_dir(tmp_path, "keep", dropped.text, "mine.keep")
    mine = Pipeline(load_config(rules_dirs=[str(rules)], clean={"method": "model"}))
    verdict = next(v for v in _lines(mine) if v.index == dropped.index)
    assert verdict.kept and verdict.rule_id == "mine.keep"
    # a drop rule on the same line still wins over the keep rule
    _rules_dir(tmp_path, "drop", dropped.text, "mine.drop").rename(rules / "drop-dir")
    (rules / "drop-dir" / "drop.toml").rename(rules / "drop.toml")
    both = Pipeline(load_config(rules_dirs=[str(rules)], clean={"method": "model"}))
    verdict = next(v for v in _lines(both) if v.index == dropped.index)
    assert not verdict.kept and verdict.rule_id == "mine.drop"


def test_the_heuristic_is_the_default_and_the_model_selectable():
    assert load_config().clean.method == "heuristic"
    heuristic = Pipeline(load_config())
    lines = [v for v in _lines(heuristic) if v.label != "blank"]
    assert {v.label for v in lines} <= {"good", "medium", "short", "bad"}
    assert all(v.probability is None for v in lines)
    with pytest.raises(ConfigError, match="method"):
        load_config(clean={"method": "magic"})


def test_a_model_for_other_features_is_refused_with_a_clear_error(tmp_path):
    bundle = json.loads(gzip.decompress((ROOT / "pipeline" / "models" / "cleaner.model.gz").read_bytes()))
    bundle["features_version"] = -1
    path = tmp_path / "old.model.gz"
    path.write_bytes(gzip.compress(json.dumps(bundle).encode("utf-8")))
    with pytest.raises(ModelError, match="retrain"):
        load_model(str(path))
    with pytest.raises(ModelError, match="cannot read"):
        load_model(str(tmp_path / "missing.model.gz"))
    bundle = json.loads(gzip.decompress((ROOT / "pipeline" / "models" / "cleaner.model.gz").read_bytes()))
    bundle["author_features"] = ["p_author"]
    path.write_bytes(gzip.compress(json.dumps(bundle).encode("utf-8")))
    with pytest.raises(ModelError, match="author ranker"):
        load_model(str(path))
    for key in ("title_ranker", "title_features", "author_ranker", "author_features", "author_min"):
        del bundle[key]  # a model file from before the rankers still loads
    path.write_bytes(gzip.compress(json.dumps(bundle).encode("utf-8")))
    assert load_model(str(path)).rankers is None
    for junk in (b"not gzip", gzip.compress(b"[1, 2]"), gzip.compress(b"{\"stage1\": ")[:-3]):
        (tmp_path / "junk.model.gz").write_bytes(junk)
        with pytest.raises(ModelError, match="not a pagewash model file"):
            load_model(str(tmp_path / "junk.model.gz"))


def test_explain_shows_label_and_probability_of_every_line(tmp_path):
    import subprocess

    config = tmp_path / "model.toml"
    config.write_text('[clean]\nmethod = "model"\n', encoding="utf-8")
    proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "explain", "--config", str(config), str(SEED)],
                          capture_output=True, text=True, cwd=ROOT, check=True)
    rows = [line for line in proc.stdout.splitlines() if " KEEP " in line or " drop " in line]
    assert rows and all(any(f" {label} " in row for label in ("body", "title", "author", "date", "boilerplate"))
                        for row in rows)
    assert any(" drop model.boilerplate " in row and " boilerplate " in row for row in rows)
    probability = rows[0].split("|")[0].split()[-1]
    assert 0.0 <= float(probability) <= 1.0


def test_training_on_a_tiny_corpus_gives_the_same_model_bytes_twice(tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    import train_cleaner
    import train_data

    data = tmp_path / "data"
    train_data.build(SHARED, data, ["bs4"], sources=["readability", "wcxb-dev"], limit=6)
    models = []
    for run in ("a", "b"):
        out = tmp_path / f"{run}.model.gz"
        assert train_cleaner.main(["--shared", str(SHARED), "--data", str(data), "--rounds", "4", "--threads", "1",
                                   "--workers", "1", "--out", str(out), "--cv-dir", str(tmp_path / f"cv-{run}")]) == 0
        models.append(out.read_bytes())
    assert models[0] == models[1]
    assert (tmp_path / "cv-a" / "fold-0.model.gz").read_bytes() == (tmp_path / "cv-b" / "fold-0.model.gz").read_bytes()
    model = load_model(str(tmp_path / "a.model.gz"))
    # wcxb-dev pages have gold titles and authors: the rankers learned from them
    assert model.rankers is not None and model.rankers.title is not None and model.rankers.author is not None
    trained = Pipeline(load_config(clean={"method": "model", "model": str(tmp_path / "a.model.gz")}))
    assert trained.model.digest == model.digest
    assert any(v.probability is not None for v in _lines(trained))


_RULES = load_rules(())
_MODEL = load_model()


@given(st.lists(st.one_of(st.text(max_size=120), st.sampled_from(["", "Home", "By Jane Doe", "May 26, 2025",
                                                                   "© 2024 Example", ARTICLE[0]])), max_size=40))
@settings(max_examples=80, deadline=None)
def test_the_model_cleaner_never_raises_and_outputs_only_input_lines(lines):
    text = "\n".join(lines)
    result = clean_with_model(text, _RULES, frozenset({"the", "a", "of"}), CleanConfig(method="model"), _MODEL)
    raw = text.split("\n")
    assert [v.index for v in result.verdicts] == list(range(len(raw)))
    for v in result.verdicts:
        assert v.text == raw[v.index].strip()
        assert v.kept or v.label == "blank" or v.rule_id
        assert v.probability is None if v.label == "blank" else 0.0 <= v.probability <= 1.0


def _indent_columns(raw_lines: list[str]):
    rows = [i for i, line in enumerate(raw_lines) if line.strip()]
    trimmed = [raw_lines[i].strip() for i in rows]
    none = [None] * len(rows)
    matrix = lf.line_matrix(raw_lines, rows, trimmed, frozenset({"the", "a", "of", "and", "to", "that"}),
                         lf.RuleHits(none, none, none, none))
    names = ("indent_level", "indent_prose_share", "indent_vs_region", "indent_same_prev")
    return {name: matrix[:, lf.BASE_NAMES.index(name)].tolist() for name in names}


def test_indentation_features_read_the_nesting_an_indenting_renderer_prints():
    """inscriptis, lynx and w3m indent nested blocks: the article's paragraphs share one depth, the menu another."""
    menu = ["* Home", "* News", "* Contact"]
    lines = [f"    {m}" for m in menu] + [f"  {p}" for p in ARTICLE] + ["\t* Share"]
    cols = _indent_columns(lines)
    depths = [4, 4, 4] + [2] * len(ARTICLE) + [4]  # a tab counts four
    assert [round(v, 3) for v in cols["indent_level"]] == [round(math.log1p(n), 3) for n in depths]
    assert cols["indent_prose_share"] == [0.0] * 3 + [1.0] * len(ARTICLE) + [0.0]  # every prose word sits at depth 2
    assert cols["indent_vs_region"][3:3 + len(ARTICLE)] == [0.0] * len(ARTICLE)
    assert all(v > 0 for v in cols["indent_vs_region"][:3])  # deeper than the article
    assert cols["indent_same_prev"] == [0.0, 1.0, 1.0, 0.0] + [1.0] * (len(ARTICLE) - 1) + [0.0]


def test_indentation_features_are_constant_for_a_renderer_that_does_not_indent():
    cols = _indent_columns(["Home", "News"] + ARTICLE)
    assert set(cols["indent_level"]) == {0.0} and set(cols["indent_prose_share"]) == {1.0}
    assert set(cols["indent_vs_region"]) == {0.0}


_VOCAB_TOKENS = st.sampled_from(["may", "reply", "related", "share", "said", "the", "ago", "more", "x"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(_VOCAB_TOKENS, max_size=6), min_size=1, max_size=12))
def test_the_one_pass_vocabulary_counts_equal_one_count_per_list(lines):
    """The five fixed marker lists are counted from one lookup a token: each line's count of each list's words,
    lines without a word (`—`) included."""
    stats = line_stats([" ".join(line) or "—" for line in lines])
    together = lf._fixed_vocab_counts(stats)
    for k, vocab in enumerate(lf._FIXED_VOCABS):
        assert together[:, k].tolist() == [float(sum(t in vocab for t in line)) for line in lines]


def _seed_text() -> str:
    return SEED.read_text(encoding="utf-8")


def test_the_heuristic_votes_where_the_model_keeps_two_thresholds():
    """A line the heuristic cleaner keeps needs `threshold_kept`, one it drops `threshold`; `[clean] threshold`
    sets one threshold for every line."""
    import dataclasses

    from pipeline.clean.modelclean import heuristic_votes, prepare
    from pipeline.clean.textclean import clean_lines

    text, stop = _seed_text(), frozenset()
    voting = dataclasses.replace(_MODEL, threshold=0.8, threshold_kept=0.2)
    result = clean_with_model(text, _RULES, stop, CleanConfig(), voting)
    votes = heuristic_votes(prepare(text.split("\n"), _RULES, stop), _RULES, stop, CleanConfig())
    heuristic = clean_lines(text, _RULES, stop, CleanConfig()).verdicts  # the vote is the heuristic's own verdict
    assert votes.tolist() == [heuristic[row].kept for row in result.rows]
    assert votes.any() and not votes.all()
    decided = 0
    for j, row in enumerate(result.rows):
        verdict, p = result.verdicts[row], float(result.scores.body[j])
        if verdict.rule_id is not None and not verdict.rule_id.startswith("model."):
            continue  # a rule or signal decided
        assert verdict.kept == (p >= (0.2 if votes[j] else 0.8)), (verdict, p, votes[j])
        decided += 1
    assert decided
    one = clean_with_model(text, _RULES, stop, CleanConfig(threshold=0.5), voting)
    for j, row in enumerate(one.rows):
        verdict = one.verdicts[row]
        if verdict.rule_id is None or verdict.rule_id.startswith("model."):
            assert verdict.kept == (float(one.scores.body[j]) >= 0.5)


@given(st.lists(st.tuples(st.sampled_from(["", "the cat", "The cat sat", "dog dog", "Σίσυφος ΟΔΟΣ", "x_1 y-2",
                                           "home | about", "a b c d e f"]),
                          st.floats(0, 1), st.booleans(), st.booleans()), max_size=12),
       st.sampled_from(["", "the cat sat on the mat", "dog and cat", "ΟΔΟΣ x_1"]))
@settings(max_examples=60, deadline=None)
def test_training_scores_every_threshold_pair_as_the_metric_does(rows, gold):
    sys.path.insert(0, str(ROOT / "bench"))
    import numpy as np
    import train_cleaner

    from pipeline.clean.modelclean import SectionMarkers, apply_cuts
    from pipeline.evaluate import word_f1

    n_rows = len(rows)
    markers = SectionMarkers([j == 5 for j in range(n_rows)], [j == 1 for j in range(n_rows)],
                             [j == 2 for j in range(n_rows)], [j % 3 == 0 for j in range(n_rows)])
    page = {"trimmed": [r[0] for r in rows], "drop": np.array([r[2] for r in rows], dtype=bool),
            "vote": np.array([r[3] for r in rows], dtype=bool), "markers": markers,
            "words": [len(r[0].split()) for r in rows]}
    p = np.array([r[1] for r in rows], dtype=float)
    fast = train_cleaner.page_f1(page, p, gold)
    for n, (t, k) in enumerate(train_cleaner.PAIRS):
        keep = (((p >= np.where(page["vote"], k, t)) | np.array(markers.forced, dtype=bool)) & ~page["drop"]).tolist()
        apply_cuts(markers, keep, [None] * n_rows, page["words"], p)
        text = "\n".join(line for line, kept in zip(page["trimmed"], keep, strict=True) if kept)
        assert math.isclose(fast[n], word_f1(text, gold).f1, abs_tol=1e-12)


def _cut_page(thread_below: bool, marker_at: int):
    """Ten kept lines of 40 words, a `cut_after` marker at `marker_at`; body probabilities 0.95 (a confident
    story)."""
    import numpy as np

    from pipeline.clean.modelclean import SectionMarkers

    n = 10
    markers = SectionMarkers([j == marker_at for j in range(n)], [False] * n, [False] * n, [thread_below] * n)
    keep = [j != marker_at for j in range(n)]
    return markers, keep, [None] * n, [40] * n, np.full(n, 0.95)


def test_an_early_section_marker_above_a_confident_story_does_not_cut_it():
    import numpy as np

    from pipeline.clean.modelclean import apply_cuts
    from pipeline.clean.textclean import SIG_CUT_AFTER

    # a "Related" box after 4 of 9 story paragraphs, nothing below it reads as a comment thread: the story stays
    markers, keep, rule_of, words, body = _cut_page(thread_below=False, marker_at=4)
    assert apply_cuts(markers, keep, rule_of, words, body) is None
    assert keep == [j != 4 for j in range(10)] and set(rule_of) == {None}
    # the same marker with a comment thread below it cuts, as does any marker without the model's probabilities
    for thread, probabilities in ((True, True), (False, False)):
        markers, keep, rule_of, words, body = _cut_page(thread_below=thread, marker_at=4)
        assert apply_cuts(markers, keep, rule_of, words, body if probabilities else None) == 4
        assert keep[:4] == [True] * 4 and not any(keep[5:]) and rule_of[5:] == [SIG_CUT_AFTER] * 5
    # past the middle of the kept text a marker cuts, thread or not
    markers, keep, rule_of, words, body = _cut_page(thread_below=False, marker_at=6)
    assert apply_cuts(markers, keep, rule_of, words, body) == 6 and not any(keep[7:])
    # below an early marker, a story the model keeps but is not sure of (LIKELY_BODY <= P < CONFIDENT_BODY) is cut
    markers, keep, rule_of, words, body = _cut_page(thread_below=False, marker_at=4)
    assert apply_cuts(markers, keep, rule_of, words, np.full(10, 0.7)) == 4
    # a marker on top of a page the model barely believes (no line likely article) does not cut the whole page
    markers, keep, rule_of, words, body = _cut_page(thread_below=True, marker_at=0)
    assert apply_cuts(markers, keep, rule_of, words, np.full(10, 0.5)) is None and set(rule_of) == {None}


def test_section_markers_see_a_comment_thread_below_a_marker():
    from pipeline.clean.modelclean import THREAD_WINDOW, prepare, section_markers

    story = [f"Paragraph {k} of the story tells the reader what the council decided and why it matters now."
             for k in range(6)]
    thread = ["Comments", "Jane Doe says:", "I agree with every word of this.", "Reply"]
    quiet = ["Related Articles", *story]
    stop = frozenset({"the", "of", "and", "what", "why", "it", "with", "this", "every", "now"})
    for lines, marker, expected in ((story + thread, "Comments", True), (story + quiet, "Related Articles", False)):
        page = prepare(lines, _RULES, stop)
        markers = section_markers(page)
        j = page.trimmed.index(marker)
        assert markers.after[j], marker
        assert markers.thread[j] is expected
    far = story + ["Comments"] + story * 11 + ["Reply"]  # a thread word beyond the window does not count
    page = prepare(far, _RULES, stop)
    j = page.trimmed.index("Comments")
    assert page.trimmed.index("Reply") - j > THREAD_WINDOW
    assert section_markers(page).thread[j] is False


def test_a_sidebar_the_model_barely_keeps_is_not_enough_article_above_a_marker():
    from pipeline.clean.modelclean import apply_cuts

    # six kept lines above the marker that the model barely believes (a sidebar, P 0.5), a confident story below
    markers, keep, rule_of, words, body = _cut_page(thread_below=True, marker_at=6)
    body[:6] = 0.5
    assert apply_cuts(markers, keep, rule_of, words, body) is None and set(rule_of) == {None}
    body[:6] = 0.95  # the same lines as likely article: the marker ends it
    assert apply_cuts(markers, keep, rule_of, words, body) == 6
