"""Gradient boosting on hand-made online features: what an ML engineer tries first.

One sklearn ``HistGradientBoostingClassifier`` for every k (the observation count is a
feature), fitted on the train split at every frame of every labelled track's life (birth to
last observation), so it scores online at any frame like the other scorers. It reads the
hand-made online features of ``tracks.features.handmade_features`` (hits, misses, motion,
area, innovation likelihoods, the clutter-map count, the scene's rates), the same ones the
persistence model can read beside its kinematics (``ModelConfig.track_features``). NaN (no
value yet, e.g. no innovation before the second hit) is handled natively by the model. The
output is the predicted probability of persistence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tp_models.core.batch import TrackBatch
from tp_models.tracks.features import handmade_features, with_scene_features
from tp_models.tracks.lives import LifeBuckets


class NotFittedError(ValueError):
    """A learned scorer was asked to score before ``fit``."""


@dataclass
class GradientBoostingScorer:
    """P(persistent) from ``HistGradientBoostingClassifier`` on ``handmade_features``."""

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
        track, _, x = life_features(train)
        labelled = train.label[track] >= 0
        x, y = x[labelled], train.label[track[labelled]] == 1
        if np.unique(y).size < 2:
            # Nothing to separate (a tiny or one-sided store): the best it can say is the
            # base rate, so it scores like a constant (reported, never a crash).
            self.model = BaseRate(float(y.mean()) if len(y) else 0.5)
            return
        if len(y) > self.max_rows:
            keep = np.random.default_rng(self.seed).choice(len(y), self.max_rows, replace=False)
            x, y = x[keep], y[keep]
        # A feature without a single value (e.g. box area of point tracks, which have no
        # boxes) makes scikit-learn's binning fail; as a constant it is simply never split on.
        x = np.where(np.isnan(x).all(axis=0), 0.0, x)
        self.model = HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            early_stopping=True,
            random_state=self.seed,
        ).fit(x, y)

    def score(self, batch: TrackBatch) -> np.ndarray:
        """(B, T) P(persistent) at every frame of each track's life; NaN elsewhere."""
        if self.model is None:
            raise NotFittedError(
                f"{self.name} is not fitted: call fit(train, val) (or build_report(..., "
                "train=...)) before scoring."
            )
        out = np.full(batch.observed.shape, np.nan)
        track, frame, features = life_features(batch)
        if len(track):
            out[track, frame] = self.predict(features)
        return out

    def predict(self, features: np.ndarray) -> np.ndarray:
        """(N,) P(persistent) of N rows of ``HANDMADE_FEATURES`` (a fitted scorer's model)."""
        return self.model.predict_proba(features)[:, 1]

    def rule(self, threshold: float) -> str:
        return f"P(persistent) >= {threshold:.3f}"


def life_features(batch: TrackBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(track, frame, features): ``handmade_features`` at every frame of every track's life
    (first to last observation), in (track, frame) order, made on the lives alone
    (``LifeBuckets``; the scene features first, on whole videos): the same values as on the
    whole batch, in memory that follows the lives, not the sequences' length."""
    return LifeBuckets(with_scene_features(batch)).per_frame(handmade_features)


@dataclass(frozen=True)
class BaseRate:
    """What gradient boosting falls back to when train holds one class: its share ``p``."""

    p: float

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.tile([1.0 - self.p, self.p], (len(x), 1))
