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
from tp_models.evaluation.metrics import mean_roc_auc_by_k, pooled_log_loss

# objective name -> (function of (scores, batch), True when larger is better)
OBJECTIVES: dict[str, tuple[Callable[[np.ndarray, TrackBatch], float], bool]] = {
    "roc_auc": (mean_roc_auc_by_k, True),
    "log_loss": (pooled_log_loss, False),
}


def grid_search(
    scorer: PersistenceScorer,
    grid: Mapping[str, Sequence[Any]],
    train: TrackBatch,
    objective: str,
) -> dict[str, Any]:
    """Set on ``scorer`` the grid point with the best ``objective`` on ``train``; return it.

    Candidates are scored on copies, so a failed candidate never leaves the scorer half set.
    Ties keep the earliest grid point (list the textbook value first). With no labelled
    track in ``train`` the scorer is left as it was and {} is returned.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {sorted(OBJECTIVES)}, got {objective!r}")
    measure, larger_is_better = OBJECTIVES[objective]
    best: dict[str, Any] = {}
    best_value = None
    names = list(grid)
    for values in itertools.product(*(grid[name] for name in names)):
        candidate = copy.copy(scorer)
        point = dict(zip(names, values, strict=True))
        for name, value in point.items():
            setattr(candidate, name, value)
        value = measure(np.asarray(candidate.score(train), dtype=np.float64), train)
        if not np.isfinite(value):
            continue
        sign = 1.0 if larger_is_better else -1.0
        if best_value is None or sign * value > sign * best_value:
            best, best_value = point, value
    for name, value in best.items():
        setattr(scorer, name, value)
    return best
