"""The one scoring interface shared by classical baselines and learned models.

A scorer sees a batch of tracks and returns, for every track and every frame, a
persistence score that uses only the observations up to that frame (online scoring).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from tp_models.core.batch import TrackBatch


@runtime_checkable
class PersistenceScorer(Protocol):
    """Anything that scores tracks online. Higher means more likely persistent."""

    name: str

    def score(self, batch: TrackBatch) -> np.ndarray:
        """(B, T) float scores; entry [b, t] depends only on frames <= t of track b. Every
        frame of a track's life (first to last observation) is scored, which is every frame
        evaluation reads; a scorer may leave the others NaN (the model and gradient
        boosting do: they score lives alone, at a cost that follows the lives)."""
        ...


@runtime_checkable
class FittableScorer(Protocol):
    """A scorer with parameters learned or tuned before scoring (``fit_scorers`` calls it).

    ``fit`` may read ``train`` freely; ``val`` is passed so a scorer *could* tune on it, but
    every scorer in this package tunes on ``train`` only and leaves ``val`` to the report's
    threshold choice. Neither ever sees the test split.
    """

    name: str

    def fit(self, train: TrackBatch, val: TrackBatch) -> None: ...


def fit_scorers(scorers: Sequence[PersistenceScorer], train: TrackBatch, val: TrackBatch) -> None:
    """Fit (in place) every scorer that implements ``FittableScorer``; leave the others."""
    for scorer in scorers:
        if isinstance(scorer, FittableScorer):
            scorer.fit(train, val)
