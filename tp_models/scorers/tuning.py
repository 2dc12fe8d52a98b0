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
from tp_models.evaluation.metrics import DecisionPoints, mean_roc_auc_by_k, pooled_log_loss
from tp_models.tracks.lives import LifeBuckets

# objective name -> (function of (scores, batch, its decision points), True when larger
# is better)
Objective = Callable[[np.ndarray, TrackBatch, DecisionPoints], float]
OBJECTIVES: dict[str, tuple[Objective, bool]] = {
    "roc_auc": (mean_roc_auc_by_k, True),
    "log_loss": (pooled_log_loss, False),
}


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
