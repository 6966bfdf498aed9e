"""The learned text-dump cleaner: two stages of gradient-boosted trees (LightGBM) over every line of a page.

Stage 1 scores each line as article body from its own features and its neighbours' (linefeatures.BASE_NAMES).
Stage 2 reads the same features plus the first stage's probabilities around the line (CONTEXT_NAMES: the
neighbours' scores, window means, the densest region of likely body), so that the body comes out as coherent
runs and isolated prose-like lines (a comment, a teaser) fall away. A third model, over the same inputs, names the
title, byline and date lines; two small ones rank the likeliest title and author lines again from what surrounds
them (header_candidates.title_candidates, author_candidates). Training: bench/train_cleaner.py; data, figures and
terms: docs/model.md.

A model file is a gzip'd JSON bundle: the boosters as LightGBM text, the feature names they were trained
on, the body thresholds (`threshold`, and `threshold_kept` for the lines the heuristic cleaner keeps), and the
training settings. It is read once per process; prediction runs on one thread
and gives the same probabilities for the same page.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from .header_candidates import AUTHOR_FEATURES, TITLE_FEATURES
from .header_model import HeaderRankers
from .linefeatures import BASE_NAMES, CONTEXT_NAMES, FEATURES_VERSION, context_matrix

META_CLASSES = ("other", "title", "author", "date")
PACKAGED_MODEL = "cleaner.model.gz"
META_MAX_WORDS = 25
MODEL_KEYS = ("stage1", "stage2", "meta")
# optional rankers of title and author lines (header_model): bundles from before them have none
RANKERS = (("title_ranker", "title_features", TITLE_FEATURES), ("author_ranker", "author_features", AUTHOR_FEATURES))
RANKER_KEYS = tuple(name for name, _features_key, _names in RANKERS)


class ModelError(ValueError):
    """A model file that cannot be used with this version of the features."""


@dataclass(frozen=True)
class LineScores:
    body: np.ndarray  # P(body) per worded line, after stage 2
    meta: np.ndarray  # (n, 4) P(other, title, author, date) per worded line


@dataclass(frozen=True, eq=False)
class LineModel:
    stage1: object  # lightgbm.Booster
    stage2: object
    meta: object
    threshold: float  # P(body) from which a line is kept (the lines the heuristic drops, when it votes)
    threshold_kept: float  # the same for the lines the heuristic cleaner keeps; = threshold: it does not vote
    digest: str  # sha1 of the model file's bytes: what the settings fingerprint records
    info: dict
    rankers: HeaderRankers | None = None  # the title and author rankers (header_model); None: the file has none

    @classmethod
    def from_bytes(cls, data: bytes) -> LineModel:
        import lightgbm

        bundle = read_bundle(data)
        boosters = {name: lightgbm.Booster(model_str=bundle[name]) for name in MODEL_KEYS}
        info = {k: v for k, v in bundle.items() if k not in (*MODEL_KEYS, *RANKER_KEYS)}
        threshold = float(bundle["threshold"])
        return cls(boosters["stage1"], boosters["stage2"], boosters["meta"], threshold,
                   float(bundle.get("threshold_kept", threshold)), hashlib.sha1(data).hexdigest()[:12], info,
                   _rankers(bundle))

    def scores(self, base: np.ndarray) -> LineScores:
        """Probabilities for the worded lines of one page, `base` = linefeatures.line_matrix(...)."""
        n = len(base)
        if n == 0:
            return LineScores(np.zeros(0), np.zeros((0, len(META_CLASSES))))
        p1 = self.stage1.predict(base, num_threads=1)
        second = np.hstack((base, context_matrix(p1, base[:, 0])))
        p2 = self.stage2.predict(second, num_threads=1)
        # titles, bylines and dates are short: the metadata model reads only lines of up to META_MAX_WORDS words
        # (a third of a page's lines on the dev set); the others are "other" with certainty
        meta = np.zeros((n, len(META_CLASSES)))
        meta[:, 0] = 1.0
        short = np.flatnonzero(base[:, 0] <= np.log1p(META_MAX_WORDS))
        if len(short):
            meta_input = np.hstack((base, context_matrix(p2, base[:, 0])))[short]
            meta[short] = self.meta.predict(meta_input, num_threads=1).reshape(len(short), len(META_CLASSES))
        return LineScores(np.asarray(p2, dtype=np.float64), meta)


def _rankers(bundle: dict) -> HeaderRankers | None:
    import lightgbm

    def scorer(name: str):
        if not bundle.get(name):
            return None
        booster = lightgbm.Booster(model_str=bundle[name])
        return lambda features: booster.predict(features, num_threads=1)

    if not any(bundle.get(name) for name in RANKER_KEYS):
        return None
    return HeaderRankers(scorer("title_ranker"), scorer("author_ranker"), float(bundle.get("author_min", 0.5)))


def read_bundle(data: bytes) -> dict:
    """A model file's bundle, checked against this pagewash's features (no booster is built: LightGBM is not
    loaded, so a parent process can check the files before it forks workers)."""
    try:
        bundle = json.loads(gzip.decompress(data))
    except (OSError, EOFError, ValueError) as exc:  # not gzip, cut short, not JSON
        raise ModelError(f"not a pagewash model file ({type(exc).__name__}: {exc})") from None
    if not isinstance(bundle, dict) or not all(isinstance(bundle.get(k), str) for k in MODEL_KEYS):
        raise ModelError("not a pagewash model file (no stage1/stage2/meta models in it)")
    if bundle.get("features_version") != FEATURES_VERSION:
        raise ModelError(f"model was trained on features version {bundle.get('features_version')}, "
                         f"this pagewash computes version {FEATURES_VERSION}: retrain it (bench/train_cleaner.py)")
    if (list(bundle.get("base_names") or ()) != list(BASE_NAMES)
            or list(bundle.get("context_names") or ()) != list(CONTEXT_NAMES)):
        raise ModelError("model's feature names differ from this pagewash's: retrain it (bench/train_cleaner.py)")
    for name, features_key, names in RANKERS:
        if bundle.get(name) and list(bundle.get(features_key) or ()) != list(names):
            raise ModelError(f"model's {name.replace('_', ' ')} reads other features than this pagewash's: retrain "
                             "it (bench/train_cleaner.py)")
    return bundle


def model_bytes(path: str | None) -> bytes:
    """The model file's bytes: `path`, or the model packaged with pagewash when it is empty."""
    if path:
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            raise ModelError(f"cannot read model {path}: {exc.strerror or exc}") from None
    return resources.files("pipeline").joinpath("models", PACKAGED_MODEL).read_bytes()


def load_model(path: str | None = None) -> LineModel:
    """The model at `path` (the packaged one when empty); the pipeline loads it once and shares it read-only."""
    return LineModel.from_bytes(model_bytes(path))
