"""The maths of online evaluation: decision points after k observations, threshold choice,
binary metrics, confirmation, the tracker operating characteristic, calibration.

Pure functions over (B, T) scores and a ``TrackBatch``; ``report`` assembles them into a
report and tables. Undefined values (no tracks, one class only) are None, never NaN.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tp_models.core.batch import TrackBatch

K_VALUES: tuple[int, ...] = tuple(range(1, 11))
K_KEYS: tuple[str, ...] = tuple(str(k) for k in K_VALUES) + ("full",)
FCR_TARGETS: tuple[float, ...] = (0.01, 0.001)
CONFIDENCE = 0.95
CALIBRATION_BINS = 10


def decision_frames(observed: np.ndarray, k: int | str) -> tuple[np.ndarray, np.ndarray]:
    """Frame of each track's k-th observation (or last one for "full") and whether it exists."""
    n_tracks, n_frames = observed.shape
    if n_frames == 0:
        return np.zeros(n_tracks, dtype=np.int64), np.zeros(n_tracks, dtype=bool)
    if k == "full":
        valid = observed.any(axis=1)
        frame = n_frames - 1 - np.argmax(observed[:, ::-1], axis=1)
        return frame.astype(np.int64), valid
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be >= 1 or 'full', got {k}")
    at_k = observed & (np.cumsum(observed, axis=1) == k)
    return np.argmax(at_k, axis=1).astype(np.int64), at_k.any(axis=1)


def scores_at(
    scores: np.ndarray, observed: np.ndarray, k: int | str
) -> tuple[np.ndarray, np.ndarray]:
    """(values, valid): each track's score at its k-th observation; non-finite is invalid."""
    return _values_at(scores, *decision_frames(observed, k))


def _values_at(
    scores: np.ndarray, frame: np.ndarray, valid: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    values = scores[np.arange(scores.shape[0]), frame] if scores.shape[0] else np.zeros(0)
    values = np.asarray(values, dtype=np.float64)
    return values, valid & np.isfinite(values)


class DecisionPoints:
    """Each track's frame at every decision point of ``K_KEYS``, found once for a batch: a
    tuning scores hundreds of candidates on one batch, and finding the frames (a cumulative
    count over every track and frame per k) would cost more than scoring them."""

    def __init__(self, observed: np.ndarray) -> None:
        observed = np.asarray(observed, dtype=bool)
        self.frames = {key: decision_frames(observed, key) for key in K_KEYS}

    def scores_at(self, scores: np.ndarray, key: str) -> tuple[np.ndarray, np.ndarray]:
        """``scores_at`` at decision point ``key`` (one of ``K_KEYS``)."""
        return _values_at(scores, *self.frames[key])


def ratio(num: float, den: float) -> float | None:
    return float(num) / float(den) if den else None


def binary_metrics(
    labels: np.ndarray, scores: np.ndarray, threshold: float | None
) -> dict[str, float | int | None]:
    """Precision, recall, F1 at ``score >= threshold``; ROC-AUC and PR-AUC (average precision)."""
    # Imported here: sklearn.metrics costs ~1 s of import time, which code that imports this
    # module for its constants (K_KEYS, fcr_key) should not pay.
    from sklearn.metrics import average_precision_score, roc_auc_score

    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    n = int(labels.size)
    n_pos = int(labels.sum())
    out: dict[str, float | int | None] = {
        "precision": None,
        "recall": None,
        "f1": None,
        "roc_auc": None,
        "pr_auc": None,
        "n": n,
    }
    if n == 0:
        return out
    if threshold is not None:
        predicted = scores >= threshold
        tp = int(np.sum(predicted & labels))
        fp = int(np.sum(predicted & ~labels))
        fn = n_pos - tp
        out["precision"] = ratio(tp, tp + fp)
        out["recall"] = ratio(tp, n_pos)
        out["f1"] = ratio(2 * tp, 2 * tp + fp + fn)
    if 0 < n_pos < n:
        out["roc_auc"] = float(roc_auc_score(labels, scores))
    if n_pos > 0:
        out["pr_auc"] = float(average_precision_score(labels, scores))
    return out


def best_f1_threshold(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """The score threshold (predict positive when >=) maximising F1; None without positives."""
    from sklearn.metrics import precision_recall_curve

    labels = np.asarray(labels).astype(bool)
    if labels.sum() == 0:
        return None
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    precision, recall = precision[:-1], recall[:-1]
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
    return float(thresholds[int(np.argmax(f1))])


def pooled_decisions(
    scores: np.ndarray, batch: TrackBatch, points: DecisionPoints | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores of every labelled track at every k it reaches, plus full
    (``points``: the batch's ``DecisionPoints``, when already found)."""
    points = points or DecisionPoints(batch.observed)
    labelled = batch.label >= 0
    ys, ss = [], []
    for key in K_KEYS:
        values, valid = points.scores_at(scores, key)
        valid &= labelled
        ys.append(batch.label[valid] == 1)
        ss.append(values[valid])
    return np.concatenate(ys), np.concatenate(ss)


def confirmation(
    scores: np.ndarray, observed: np.ndarray, threshold: float | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First frame within each track's life (first to last observation) with score >= threshold.

    Returns (confirmed (B,) bool, observations so far at confirmation, frames since birth
    at confirmation counting the birth frame as 1); the latter two are 0 when never.
    """
    n_tracks, n_frames = observed.shape
    never = np.zeros(n_tracks, dtype=bool)
    if threshold is None or n_tracks == 0 or n_frames == 0:
        return never, np.zeros(n_tracks, dtype=np.int64), np.zeros(n_tracks, dtype=np.int64)
    born = np.logical_or.accumulate(observed, axis=1)
    not_over = np.logical_or.accumulate(observed[:, ::-1], axis=1)[:, ::-1]
    with np.errstate(invalid="ignore"):
        hit = born & not_over & (np.nan_to_num(scores, nan=-np.inf) >= threshold)
    confirmed = hit.any(axis=1)
    frame = np.argmax(hit, axis=1)
    birth = np.argmax(observed, axis=1)
    n_obs = np.cumsum(observed, axis=1)[np.arange(n_tracks), frame]
    return (
        confirmed,
        np.where(confirmed, n_obs, 0).astype(np.int64),
        np.where(confirmed, frame - birth + 1, 0).astype(np.int64),
    )


def percentile(values: np.ndarray, q: float) -> float | None:
    return float(np.percentile(values, q)) if values.size else None


def fcr_key(target: float) -> str:
    """Report key of a false-confirmation-rate target, e.g. 0.01 -> "fcr_0.01"."""
    return f"fcr_{target:g}"


def proportion_ci(successes: int, n: int) -> list[float] | None:
    """Exact (Clopper-Pearson) ``CONFIDENCE`` interval of a binomial proportion; None if n = 0.

    The beta-quantile form (the same interval as ``scipy.stats.binomtest(...).proportion_ci(
    method="exact")``, about twice as fast: a report asks for about a thousand of them).
    """
    from scipy.stats import beta

    if n == 0:
        return None
    x, n = int(successes), int(n)
    tail = (1.0 - CONFIDENCE) / 2.0
    low = float(beta.ppf(tail, x, n - x + 1)) if x > 0 else 0.0
    high = float(beta.ppf(1.0 - tail, x + 1, n - x)) if x < n else 1.0
    return [low, high]


def fcr_threshold(negative_scores: np.ndarray, target: float) -> float | None:
    """The lowest threshold (confirm when score >= it) at which at most floor(target * n) of
    the n false tracks are confirmed; None without false tracks."""
    scores = np.sort(np.asarray(negative_scores, dtype=np.float64))[::-1]
    if scores.size == 0:
        return None
    allowed = math.floor(target * scores.size + 1e-9)
    if allowed >= scores.size:
        return float(scores[-1])
    # Just above the (allowed + 1)-th highest false score: it and every tie stay refused.
    return float(np.nextafter(scores[allowed], np.inf))


def confirmation_rates(
    positive_scores: np.ndarray, negative_scores: np.ndarray, threshold: float | None
) -> dict[str, Any]:
    """P_D (true tracks confirmed) and FCR (false tracks confirmed) at ``score >= threshold``,
    with their intervals."""
    n_pos, n_neg = int(np.size(positive_scores)), int(np.size(negative_scores))
    out: dict[str, Any] = {"threshold": threshold, "n_true": n_pos, "n_false": n_neg}
    if threshold is None:
        return {**out, "p_d": None, "p_d_ci": None, "fcr": None, "fcr_ci": None}
    hits = int(np.sum(np.asarray(positive_scores) >= threshold))
    false = int(np.sum(np.asarray(negative_scores) >= threshold))
    return {
        **out,
        "p_d": ratio(hits, n_pos),
        "p_d_ci": proportion_ci(hits, n_pos),
        "fcr": ratio(false, n_neg),
        "fcr_ci": proportion_ci(false, n_neg),
    }


def toc_point(
    val_labels: np.ndarray,
    val_scores: np.ndarray,
    test_labels: np.ndarray,
    test_scores: np.ndarray,
    target: float,
) -> dict[str, Any]:
    """P_D at false-confirmation rate ``target``: threshold chosen on validation, rates on
    test; ``test_toc`` repeats it with the threshold read off the test TOC (optimistic)."""
    val_labels = np.asarray(val_labels, dtype=bool)
    test_labels = np.asarray(test_labels, dtype=bool)
    val_negatives = np.asarray(val_scores)[~val_labels]
    threshold = fcr_threshold(val_negatives, target)
    positives, negatives = test_scores[test_labels], test_scores[~test_labels]
    point = confirmation_rates(positives, negatives, threshold)
    on_test = confirmation_rates(positives, negatives, fcr_threshold(negatives, target))
    return {
        "target_fcr": target,
        "threshold_source": "validation",
        **point,
        "resolvable": bool(val_negatives.size * target >= 1),
        "test_toc": {k: on_test[k] for k in ("threshold", "p_d", "p_d_ci", "fcr")},
    }


def life_max(scores: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """(B,) highest score within each track's life (first to last observation): a track is
    ever confirmed at threshold h exactly when this is >= h (-inf for a track never seen)."""
    if observed.shape[1] == 0:
        return np.full(observed.shape[0], -np.inf)
    born = np.logical_or.accumulate(observed, axis=1)
    not_over = np.logical_or.accumulate(observed[:, ::-1], axis=1)[:, ::-1]
    inside = np.where(born & not_over, np.nan_to_num(scores, nan=-np.inf), -np.inf)
    return inside.max(axis=1)


def expected_calibration_error(
    labels: np.ndarray, probabilities: np.ndarray, n_bins: int = CALIBRATION_BINS
) -> dict[str, Any]:
    """ECE over equal-mass bins: sum over bins of (bin share) x |observed frequency - mean
    predicted probability|, with the reliability-diagram points (None without data)."""
    labels = np.asarray(labels, dtype=np.float64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.size and (probabilities.min() < 0 or probabilities.max() > 1):
        raise ValueError(
            "expected_calibration_error needs probabilities in [0, 1]; mark a scorer "
            "probabilistic only if its scores are probabilities."
        )
    if labels.size == 0:
        return {"ece": None, "bins": []}
    order = np.argsort(probabilities, kind="stable")
    bins, ece = [], 0.0
    for part in np.array_split(order, min(n_bins, labels.size)):
        predicted, frequency = float(probabilities[part].mean()), float(labels[part].mean())
        ece += part.size / labels.size * abs(frequency - predicted)
        bins.append({"predicted": predicted, "observed": frequency, "n": int(part.size)})
    return {"ece": float(ece), "bins": bins}


def mean_roc_auc_by_k(
    scores: np.ndarray, batch: TrackBatch, points: DecisionPoints | None = None
) -> float:
    """Mean ROC-AUC over the decision points of ``K_KEYS`` where both classes occur (NaN if
    none): the ranking objective parameters are tuned on (``tuning.grid_search``)."""
    from sklearn.metrics import roc_auc_score  # see binary_metrics

    points = points or DecisionPoints(batch.observed)
    aucs = []
    labelled = batch.label >= 0
    for key in K_KEYS:
        values, valid = points.scores_at(scores, key)
        valid &= labelled
        labels = batch.label[valid] == 1
        if 0 < labels.sum() < labels.size:
            aucs.append(float(roc_auc_score(labels, values[valid])))
    return float(np.mean(aucs)) if aucs else math.nan


def pooled_log_loss(
    scores: np.ndarray, batch: TrackBatch, points: DecisionPoints | None = None
) -> float:
    """Log-loss of probabilities over every labelled decision point (NaN without any)."""
    labels, probabilities = pooled_decisions(scores, batch, points)
    if labels.size == 0:
        return math.nan
    p = np.clip(probabilities, 1e-12, 1 - 1e-12)
    return float(-np.mean(np.where(labels, np.log(p), np.log1p(-p))))
