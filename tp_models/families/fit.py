"""Fitting a family on a store's train split and calibrating it on validation.

Gradient boosting, IPDA (plain and adaptive) and the streaming clutter map fit themselves
(``fit``: gradient boosting on every frame of the train tracks' lives, IPDA's P_D, clutter
density, survival and initial existence by log-loss, then the adaptive IPDA's weights of
the stream's estimates, the clutter map's P_D, base density and weights for ranking); the
track score's P_D and false-alarm density and the M-of-N window are tuned for ranking on
train (``tuning.grid_search``). Then a Platt fit on the validation tracks' decision points
makes each answer a probability. Test is never read.
"""

from __future__ import annotations

from typing import Any

from tp_models.core.batch import TrackBatch
from tp_models.core.calibration import as_logit, platt_fit
from tp_models.evaluation.metrics import pooled_decisions
from tp_models.families.fitted import SCORERS, FittedFamily, parameter_names
from tp_models.scorers.track_score import P_DETECT_GRID
from tp_models.scorers.tuning import grid_search

# family -> (grid, objective) tuned on train; the others fit themselves.
GRIDS: dict[str, tuple[dict[str, tuple[Any, ...]], str]] = {
    "track_score": (
        {
            "p_detect": P_DETECT_GRID,
            "false_alarm_density": (1.0 / (128 * 128), 1e-5, 1e-3, 3e-3, 1e-2, 3e-2),
        },
        "roc_auc",
    ),
    "m_of_n": ({"n": (3, 5, 6, 8)}, "roc_auc"),
}


def fit_family(
    family: str,
    train: TrackBatch,
    val: TrackBatch,
    frame_size: tuple[int, int],
    seed: int = 0,
) -> FittedFamily:
    """``family`` (a classical one, see ``SCORERS``) fitted on ``train``, calibrated on
    ``val``; both batches in ``frame_size``, the frame the family will score in."""
    if family not in SCORERS:
        raise ValueError(f"unknown family {family!r}; one of {sorted(SCORERS)}")
    kind = SCORERS[family]
    scorer = kind(seed=seed) if "seed" in parameter_names(kind) else kind()
    if family in GRIDS:
        grid, objective = GRIDS[family]
        grid_search(scorer, grid, train, objective)
    else:
        scorer.fit(train, val)
    labels, raw = pooled_decisions(scorer.score(val), val)
    calibration = platt_fit(as_logit(raw) if scorer.probabilistic else raw, labels)
    return FittedFamily(family, scorer, calibration, frame_size)
