"""Platt scaling on validation: calibrated probabilities, the same ranking.

The model is trained on every step of a track's life to the end of its video, but it is
read at its decision points (the k-th observation, the last one). Its probabilities there
are over-confident in the middle of the range (measured: predicted 0.73 where 0.63 of the
tracks were persistent). A logistic fit of the labels on the model's logits at the
validation tracks' decision points (the points the expected calibration error pools) gives
a scale and a shift for the logits; monotone, so every ranking, threshold and operating
point is unchanged, and it travels in the checkpoint with the weights.
"""

from __future__ import annotations

import torch

from tp_models.core.batch import TrackBatch
from tp_models.core.calibration import IDENTITY, as_logit, platt_fit
from tp_models.evaluation.metrics import pooled_decisions
from tp_models.model.heads import PersistenceHead
from tp_models.model.interfaces import ModularTrackingPipeline


def calibrate(pipeline: ModularTrackingPipeline, val: TrackBatch) -> tuple[float, float]:
    """Fit the head's (scale, shift) on ``val``'s decision points; returns them. The
    identity is kept when validation holds one class only (nothing to fit) or the fitted
    scale is not positive (it would reverse the ranking the model was trained for)."""
    head = pipeline.head
    if not isinstance(head, PersistenceHead):
        raise ValueError(f"calibrate needs a PersistenceHead, not {type(head).__name__}")
    head.calibration.copy_(torch.tensor(IDENTITY))
    labels, probabilities = pooled_decisions(pipeline.score(val), val)
    scale, shift = platt_fit(as_logit(probabilities), labels)
    head.calibration.copy_(torch.tensor([scale, shift]))
    return scale, shift
