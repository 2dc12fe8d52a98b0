"""Platt scaling: a logistic fit of labels on one score, monotone, so every ranking, threshold
and operating point it is applied to keeps its order.

The model calibrates its logits with it (``model.calibration``), every other family its own
score (``families``): so that all of them answer "the probability this track is persistent".
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, logit

IDENTITY = (1.0, 0.0)


def platt_fit(values: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(scale, shift) with P(label) = expit(scale * value + shift), fitted on finite values.
    The identity when the labels hold one class only (nothing to fit) or the fitted scale is
    not positive (it would reverse the ranking the score was made for)."""
    from sklearn.linear_model import LogisticRegression

    values = np.asarray(values, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    finite = np.isfinite(values)
    values, labels = values[finite], labels[finite]
    if np.unique(labels).size < 2:
        return IDENTITY
    fit = LogisticRegression(C=1e6).fit(values.reshape(-1, 1), labels.astype(int))
    scale, shift = float(fit.coef_[0, 0]), float(fit.intercept_[0])
    return (scale, shift) if scale > 0 else IDENTITY


def as_logit(probability: np.ndarray) -> np.ndarray:
    """Probabilities as logits, clipped away from 0 and 1 (float32 resolution)."""
    eps = np.finfo(np.float32).eps
    return logit(np.clip(np.asarray(probability, dtype=np.float64), eps, 1.0 - eps))


def platt_apply(values: np.ndarray, scale: float, shift: float) -> np.ndarray:
    """expit(scale * values + shift); NaN stays NaN."""
    return expit(scale * np.asarray(values, dtype=np.float64) + shift)
