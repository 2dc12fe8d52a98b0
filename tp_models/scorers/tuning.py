"""Choosing a classical scorer's free parameters on the training split, by grid search.

A tracking engineer tunes P_D, clutter density or a gate on recorded data, then fixes them;
here the recorded data is the train split (never validation, which chooses thresholds, and
never test). Rules that rank tracks are tuned for ranking (mean ROC-AUC over the decision
points k = 1..10 and full); probabilities for a proper score (log-loss), which rewards
ranking and calibration together.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from tp_models.core.batch import TrackBatch
from tp_models.core.scorer import PersistenceScorer
from tp_models.evaluation.metrics import (
    DecisionPoints,
    decision_frames,
    mean_roc_auc_by_k,
    pooled_log_loss,
)

# Tracks of one bucket of ``LifeBuckets`` live at most this many times as long as its
# shortest: each bucket costs at most twice the lives it holds.
_LIFE_RATIO = 2

# objective name -> (function of (scores, batch, its decision points), True when larger
# is better)
Objective = Callable[[np.ndarray, TrackBatch, DecisionPoints], float]
OBJECTIVES: dict[str, tuple[Objective, bool]] = {
    "roc_auc": (mean_roc_auc_by_k, True),
    "log_loss": (pooled_log_loss, False),
}


class LifeBuckets:
    """A batch's tracks start-aligned and cut to their lives (first to last observation),
    in buckets of similar life, to score them at the cost of their lives, not of their
    sequence's length: a one-hit track of a 60-scan sequence costs one frame.

    ``score`` gives the (B, T) scores of the whole batch at every frame of each track's life
    (NaN elsewhere), which is every frame a decision point reads (``decision_frames``: the
    k-th and the last observation). Only for scorers that read each track alone from its
    first observation on: their values there are the same as on the whole batch.
    """

    def __init__(self, batch: TrackBatch) -> None:
        observed = np.asarray(batch.observed, dtype=bool)
        self.shape = observed.shape
        self.first, seen = decision_frames(observed, 1)  # the first and the last observation
        last, _ = decision_frames(observed, "full")
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
        rows = index[:, None]
        part = batch.select(index)

        def cut(values: np.ndarray) -> np.ndarray:
            return values[rows, frames]

        within = np.arange(length) < self.life[index, None]
        part.position, part.area = cut(batch.position), cut(batch.area)
        part.color, part.loglik = cut(batch.color), cut(batch.loglik)
        part.observed = cut(batch.observed) & within  # past the life: misses, never read
        per_frame = {k for k, v in batch.extras.items() if v.shape[:2] == self.shape}
        part.extras.update({k: cut(batch.extras[k]) for k in per_frame})
        return part

    def score(self, scorer: PersistenceScorer) -> np.ndarray:
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


def grid_search(
    scorer: PersistenceScorer,
    grid: Mapping[str, Sequence[Any]],
    train: TrackBatch,
    objective: str,
    per_track: bool = False,
) -> dict[str, Any]:
    """Set on ``scorer`` the grid point with the best ``objective`` on ``train``; return it.

    Candidates are scored on copies, so a failed candidate never leaves the scorer half set.
    Ties keep the earliest grid point (list the textbook value first). With no labelled
    track in ``train`` the scorer is left as it was and {} is returned. ``per_track``: the
    scorer reads each track alone from its first observation on, so candidates are scored
    on the tracks' lives only (``LifeBuckets``), with the same result.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {sorted(OBJECTIVES)}, got {objective!r}")
    measure, larger_is_better = OBJECTIVES[objective]
    lives = LifeBuckets(train) if per_track else None
    points = DecisionPoints(train.observed)
    best: dict[str, Any] = {}
    best_value = None
    names = list(grid)
    for values in itertools.product(*(grid[name] for name in names)):
        candidate = copy.copy(scorer)
        point = dict(zip(names, values, strict=True))
        for name, value in point.items():
            setattr(candidate, name, value)
        scores = candidate.score(train) if lives is None else lives.score(candidate)
        value = measure(np.asarray(scores, dtype=np.float64), train, points)
        if not np.isfinite(value):
            continue
        sign = 1.0 if larger_is_better else -1.0
        if best_value is None or sign * value > sign * best_value:
            best, best_value = point, value
    for name, value in best.items():
        setattr(scorer, name, value)
    return best


def grid_search_scene_last(
    scorer: PersistenceScorer,
    grid: Mapping[str, Sequence[Any]],
    scene: Sequence[str],
    train: TrackBatch,
    objective: str,
    per_track: bool = False,
) -> dict[str, Any]:
    """``grid_search`` in two stages, for scorers with terms that read the scene: the
    parameters outside ``scene`` with those terms off (0.0), then the ``scene`` ones given
    them: the sum of the two grids' sizes where every combination would be their product."""
    rest = {name: values for name, values in grid.items() if name not in scene}
    for name in scene:
        setattr(scorer, name, 0.0)
    found = grid_search(scorer, rest, train, objective, per_track)
    later = {name: grid[name] for name in scene if name in grid}  # absent: stays off
    return found | grid_search(scorer, later, train, objective, per_track)
