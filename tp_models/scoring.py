"""The one scoring interface shared by classical baselines and learned models.

A scorer sees a batch of tracks and returns, for every track and every frame, a
persistence score that uses only the observations up to that frame (online scoring).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass
class TrackBatch:
    """A batch of B tracks over the T frames of their videos (frame-aligned, not start-aligned).

    position  (B, T, 2) float32  detection centroid (x = column, y = row); NaN where unobserved
    observed  (B, T)    bool     a detection was assigned to the track in that frame
    area      (B, T)    float32  detection area in pixels; NaN where unobserved
    color     (B, T, 3) float32  mean RGB (0..255) of the detection; NaN where unobserved
    loglik    (B, T)    float32  Kalman innovation log-likelihood of the update; NaN where none
    label     (B,)      int8     1 persistent, 0 brief or clutter, -1 unknown
    video     (B,)      int64    index of the track's video in the store
    extras             dict      optional per-track inputs of richer scorers, first axis B
                                 (e.g. cached video latents sampled along the track)
    frame_size (B, 2)   float    (height, width) in px of each track's frames, or None: the
                                 model config's frame size. Imported tracks come from videos
                                 of any size; positions are normalised by their own frames.
    """

    position: np.ndarray
    observed: np.ndarray
    area: np.ndarray
    color: np.ndarray
    loglik: np.ndarray
    label: np.ndarray
    video: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    frame_size: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.observed.shape[0])

    @property
    def frames(self) -> int:
        return int(self.observed.shape[1])

    def select(self, index: np.ndarray) -> TrackBatch:
        """The sub-batch of the given track indices (or boolean mask)."""
        return TrackBatch(
            position=self.position[index],
            observed=self.observed[index],
            area=self.area[index],
            color=self.color[index],
            loglik=self.loglik[index],
            label=self.label[index],
            video=self.video[index],
            extras={k: v[index] for k, v in self.extras.items()},
            frame_size=None if self.frame_size is None else self.frame_size[index],
        )


@runtime_checkable
class PersistenceScorer(Protocol):
    """Anything that scores tracks online. Higher means more likely persistent."""

    name: str

    def score(self, batch: TrackBatch) -> np.ndarray:
        """(B, T) float scores; entry [b, t] depends only on frames <= t of track b."""
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
