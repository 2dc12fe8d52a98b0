"""Gradient boosting on hand-made online features: what an ML engineer tries first.

One sklearn ``HistGradientBoostingClassifier`` for every k (the observation count is a
feature), fitted on the train split at every frame of every labelled track's life (birth to
last observation), so it scores online at any frame like the other scorers. Features at
frame t read frames <= t only (``track_features``):

    hits, misses, frames since the last hit, hits in the last 3 and 5 frames,
    net displacement, path length, speed (net displacement per frame of life), mean step,
    latest area, mean area, relative area change since the first observation,
    innovation log-likelihood: latest, mean, minimum,
    clutter-map count: detections of other tracks of the video near the latest detection
    at earlier frames (``clutter_map.past_detections_nearby``).

Absolute time and position are left out on purpose: the first frame and the frame border
are artifacts of the simulator, not cues a deployed tracker has. NaN (no value yet, e.g. no
innovation before the second hit) is handled natively by the model. The output is the
predicted probability of persistence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tp_models.clutter_map import past_detections_nearby
from tp_models.scoring import TrackBatch
from tp_models.track_features import (
    born,
    first_value,
    hits_so_far,
    latest,
    latest_index,
    net_displacement,
    path_length,
    window_hits,
)

FEATURES = (
    "hits",
    "misses",
    "frames_since_hit",
    "hits_last_3",
    "hits_last_5",
    "net_displacement",
    "path_length",
    "speed",
    "mean_step",
    "area",
    "mean_area",
    "area_change",
    "loglik_latest",
    "loglik_mean",
    "loglik_min",
    "clutter_count",
)


class NotFittedError(ValueError):
    """A learned scorer was asked to score before ``fit``."""


def track_features(batch: TrackBatch, clutter_radius: float = 4.0) -> np.ndarray:
    """(B, T, len(FEATURES)) float64 online features (see module); NaN before birth."""
    observed = batch.observed
    frames = np.arange(batch.frames)[None, :]
    alive = born(observed)
    hits = hits_so_far(observed)
    birth = np.argmax(observed, axis=1)[:, None]
    age = frames - birth + 1
    misses = age - hits
    since_hit = frames - latest_index(observed)
    moved = net_displacement(batch.position, observed)
    path = path_length(batch.position, observed)
    life = np.maximum(latest_index(observed) - birth, 1)
    area = latest(batch.area, observed)
    area_sum = np.cumsum(np.where(observed, np.nan_to_num(batch.area), 0.0), axis=1)
    first_area = first_value(batch.area, observed)[:, None]
    finite = observed & np.isfinite(batch.loglik)
    loglik = np.where(finite, batch.loglik, 0.0).astype(np.float64)
    n_loglik = np.cumsum(finite, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        loglik_mean = np.where(n_loglik > 0, np.cumsum(loglik, axis=1) / n_loglik, np.nan)
        area_change = area / first_area - 1.0
    loglik_min = np.fmin.accumulate(np.where(finite, batch.loglik, np.nan), axis=1)
    clutter = past_detections_nearby(batch, clutter_radius)
    columns = [
        hits,
        misses,
        since_hit,
        window_hits(observed, 3),
        window_hits(observed, 5),
        moved,
        path,
        moved / life,
        path / np.maximum(hits - 1, 1),
        area,
        area_sum / np.maximum(hits, 1),
        area_change,
        latest(np.where(finite, batch.loglik, np.nan), finite),
        loglik_mean,
        loglik_min,
        latest(clutter, observed),
    ]
    out = np.stack([np.broadcast_to(c, observed.shape).astype(np.float64) for c in columns], -1)
    out[~alive] = np.nan
    return out


@dataclass
class GradientBoostingScorer:
    """P(persistent) from ``HistGradientBoostingClassifier`` on ``track_features``."""

    max_iter: int = 200
    learning_rate: float = 0.1
    max_rows: int = 400_000
    seed: int = 0
    name: str = "gradient_boosting"
    probabilistic = True
    threshold: float = 0.5
    model: Any = field(default=None, repr=False)

    def fit(self, train: TrackBatch, val: TrackBatch) -> None:
        """Fit on every frame of the life of every labelled train track (``val`` unread;
        early stopping holds out 10 % of ``train`` itself). At most ``max_rows`` frames,
        drawn at random with ``seed``, keep the fit time bounded on large stores."""
        from sklearn.ensemble import HistGradientBoostingClassifier

        del val
        features = track_features(train)
        last = train.frames - 1 - np.argmax(train.observed[:, ::-1], axis=1)
        in_life = born(train.observed) & (np.arange(train.frames)[None, :] <= last[:, None])
        rows = in_life & (train.label >= 0)[:, None]
        x = features[rows]
        y = np.broadcast_to((train.label == 1)[:, None], rows.shape)[rows]
        if np.unique(y).size < 2:
            # Nothing to separate (a tiny or one-sided store): the best it can say is the
            # base rate, so it scores like a constant (reported, never a crash).
            self.model = _BaseRate(float(y.mean()) if len(y) else 0.5)
            return
        if len(y) > self.max_rows:
            keep = np.random.default_rng(self.seed).choice(len(y), self.max_rows, replace=False)
            x, y = x[keep], y[keep]
        self.model = HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            early_stopping=True,
            random_state=self.seed,
        ).fit(x, y)

    def score(self, batch: TrackBatch) -> np.ndarray:
        if self.model is None:
            raise NotFittedError(
                f"{self.name} is not fitted: call fit(train, val) (or build_report(..., "
                "train=...)) before scoring."
            )
        out = np.full(batch.observed.shape, np.nan)
        alive = born(batch.observed)
        if alive.any():
            out[alive] = self.model.predict_proba(track_features(batch)[alive])[:, 1]
        return out

    def rule(self, threshold: float) -> str:
        return f"P(persistent) >= {threshold:.3f}"


@dataclass(frozen=True)
class _BaseRate:
    """What gradient boosting falls back to when train holds one class: its share."""

    p: float

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.tile([1.0 - self.p, self.p], (len(x), 1))
