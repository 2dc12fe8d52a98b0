"""Tracks packed by life: a batch's tracks cut to their lives and start-aligned, in buckets
of similar life, so whatever reads them costs their lives, not their sequences' length.

Every scorer here reads a track from its first observation on (the scene, which reads
other tracks, is made first on whole videos and travels in ``TrackBatch.extras``), so its
values at the frames of a life are the same as on the whole batch: the tuning
(``scorers.tuning``), gradient boosting's features and the model's batch scoring use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tp_models.core.batch import TrackBatch

# Tracks of one bucket of ``LifeBuckets`` live at most this many times as long as its
# shortest: each bucket costs at most twice the lives it holds.
_LIFE_RATIO = 2


class LifeBuckets:
    """A batch's tracks start-aligned and cut to their lives (first to last observation),
    in buckets of similar life, to score them at the cost of their lives, not of their
    sequence's length: a one-hit track of a 60-scan sequence costs one frame.

    ``per_frame`` gives any per-frame values of the parts (scores, features, a model's
    outputs) at every frame of each track's life, and ``score`` a scorer's (B, T) scores
    (NaN elsewhere): every frame a decision point reads (the k-th and the last
    observation). Only for what reads each track alone from its first observation on: the
    values there are the same as on the whole batch.
    """

    def __init__(self, batch: TrackBatch) -> None:
        observed = np.asarray(batch.observed, dtype=bool)
        self.shape = observed.shape
        seen = observed.any(axis=1)
        self.first = np.argmax(observed, axis=1)  # the first and the last observation
        last = observed.shape[1] - 1 - np.argmax(observed[:, ::-1], axis=1)
        self.life = np.where(seen, last - self.first + 1, 0)
        order = np.argsort(self.life, kind="stable")
        order = order[self.life[order] > 0]
        self.buckets: list[tuple[np.ndarray, TrackBatch]] = []
        start = 0
        while start < order.size:
            shortest = self.life[order[start]]
            stop = int(np.searchsorted(self.life[order], shortest * _LIFE_RATIO, side="right"))
            index = order[start:stop]
            self.buckets.append((index, self._cut(batch, index)))
            start = stop

    def _cut(self, batch: TrackBatch, index: np.ndarray) -> TrackBatch:
        length = int(self.life[index].max())
        frames = np.minimum(self.first[index, None] + np.arange(length), self.shape[1] - 1)
        part = batch.select(index, frames)
        part.observed &= np.arange(length) < self.life[index, None]  # past the life: misses
        return part

    def score(self, scorer: Any) -> np.ndarray:
        """(B, T) ``scorer.score`` of every life frame, NaN elsewhere."""
        out = np.full(self.shape, np.nan)
        track, frame, values = self.per_frame(scorer.score)
        out[track, frame] = values
        return out

    def per_frame(
        self, values_of: Callable[[TrackBatch], np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(track, frame, values): ``values_of`` a part, (n, length, ...), at every frame
        of every track's life, in the batch's (track, frame) order; memory follows the
        lives, not the sequences' length."""
        tracks, frames, values = [], [], []
        for index, part in self.buckets:
            part_values = np.asarray(values_of(part), dtype=np.float64)
            steps = np.arange(part_values.shape[1])
            inside = steps < self.life[index, None]
            tracks.append(np.broadcast_to(index[:, None], inside.shape)[inside])
            frames.append((self.first[index, None] + steps)[inside])
            values.append(part_values[inside])
        if not values:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, np.zeros(0)
        track, frame = np.concatenate(tracks), np.concatenate(frames)
        order = np.lexsort((frame, track))
        return track[order], frame[order], np.concatenate(values)[order]
