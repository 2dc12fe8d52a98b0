"""Online evaluation of persistence scorers: the score after k observations, per track.

For k = 1..10 a track is evaluated at the frame of its k-th observation (tracks with fewer
observations are left out at that k; ``n`` says how many remain); "full" evaluates it at its
last observation. Each k entry uses its own threshold, the one maximising F1 on the
validation split at that k. One more "operating" threshold per scorer, maximising F1 over
all validation decision points pooled (every track at every k it reaches, plus full), is
what an online system would run with: it decides latency, false confirmations and the
breakdowns by video type. Undefined metrics (no tracks, one class only) are None, never
NaN, so the report is valid JSON.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tp_models.labels import KIND_BRIEF, KIND_CLUTTER, KIND_EMPTY, summarize_quality
from tp_models.scoring import PersistenceScorer, TrackBatch

K_VALUES: tuple[int, ...] = tuple(range(1, 11))
K_KEYS: tuple[str, ...] = tuple(str(k) for k in K_VALUES) + ("full",)
NEGATIVE_KINDS = {"brief": KIND_BRIEF, "clutter": KIND_CLUTTER, "no_object": KIND_EMPTY}


@dataclass
class TrackMeta:
    """What evaluation needs beyond the TrackBatch (never shown to scorers).

    video_type (B,) str   type of the track's video (persistent, brief, noise, mixed, ...)
    kind       (B,) int8  kind of the track's object: 0 persistent, 1 brief, 2 clutter,
                          -1 no object
    n_videos   int        videos in the split (including videos without any track)
    """

    video_type: np.ndarray
    kind: np.ndarray
    n_videos: int


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
    frame, valid = decision_frames(observed, k)
    values = scores[np.arange(scores.shape[0]), frame] if scores.shape[0] else np.zeros(0)
    values = np.asarray(values, dtype=np.float64)
    return values, valid & np.isfinite(values)


def _ratio(num: float, den: float) -> float | None:
    return float(num) / float(den) if den else None


def binary_metrics(
    labels: np.ndarray, scores: np.ndarray, threshold: float | None
) -> dict[str, float | int | None]:
    """Precision, recall, F1 at ``score >= threshold``; ROC-AUC and PR-AUC (average precision)."""
    # Imported here: sklearn.metrics costs ~1 s of import time, which every extraction worker
    # would pay through track_arrays -> TrackMeta without ever computing a metric.
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
        out["precision"] = _ratio(tp, tp + fp)
        out["recall"] = _ratio(tp, n_pos)
        out["f1"] = _ratio(2 * tp, 2 * tp + fp + fn)
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


def _pooled(scores: np.ndarray, batch: TrackBatch) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores of every labelled track at every k it reaches, plus full."""
    labelled = batch.label >= 0
    ys, ss = [], []
    for key in K_KEYS:
        values, valid = scores_at(scores, batch.observed, key if key == "full" else int(key))
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


def _percentile(values: np.ndarray, q: float) -> float | None:
    return float(np.percentile(values, q)) if values.size else None


def evaluate_scorer(
    scores_val: np.ndarray,
    val: TrackBatch,
    scores_test: np.ndarray,
    test: TrackBatch,
    test_meta: TrackMeta,
    fallback_threshold: float | None = None,
) -> dict[str, Any]:
    """One scorer's section of the report (see ``build_report``)."""
    y_val, s_val = _pooled(scores_val, val)
    threshold = best_f1_threshold(y_val, s_val)
    if threshold is None:
        threshold = fallback_threshold
    labelled = test.label >= 0
    positive = test.label == 1

    # Each k gets its own operating point, chosen on validation at that k: a single pooled
    # threshold sits above 3 observations for count-based baselines, which would hand them
    # F1 = 0 at k <= 3 and flatter any competitor there.
    by_k = {}
    for key in K_KEYS:
        step = key if key == "full" else int(key)
        val_values, val_valid = scores_at(scores_val, val.observed, step)
        val_valid &= val.label >= 0
        threshold_k = best_f1_threshold(val.label[val_valid] == 1, val_values[val_valid])
        if threshold_k is None:
            threshold_k = threshold
        values, valid = scores_at(scores_test, test.observed, step)
        valid &= labelled
        by_k[key] = {
            **binary_metrics(positive[valid], values[valid], threshold_k),
            "threshold": threshold_k,
        }

    full_values, full_valid = scores_at(scores_test, test.observed, "full")
    full_valid &= labelled
    by_video_type = {}
    for video_type in sorted({str(x) for x in test_meta.video_type}):
        sel = full_valid & (test_meta.video_type == video_type)
        by_video_type[video_type] = binary_metrics(positive[sel], full_values[sel], threshold)

    confirmed, obs_at, frames_at = confirmation(scores_test, test.observed, threshold)
    by_negative_kind = {}
    for name, kind in NEGATIVE_KINDS.items():
        negatives = full_valid & (test.label == 0) & (test_meta.kind == kind)
        both = negatives | (full_valid & positive)
        n_neg = int(negatives.sum())
        by_negative_kind[name] = {
            "n": n_neg,
            "fpr_full": _ratio(int(np.sum(full_values[negatives] >= threshold)), n_neg)
            if threshold is not None
            else None,
            "ever_confirmed": _ratio(int(confirmed[negatives].sum()), n_neg)
            if threshold is not None
            else None,
            "roc_auc": binary_metrics(positive[both], full_values[both], None)["roc_auc"],
        }

    persistent = positive & test.observed.any(axis=1)
    latency_obs = obs_at[persistent & confirmed]
    latency_frames = frames_at[persistent & confirmed]
    n_persistent = int(persistent.sum())
    latency = {
        "unit": "observations",
        "median": _percentile(latency_obs, 50),
        "p90": _percentile(latency_obs, 90),
        "median_frames": _percentile(latency_frames, 50),
        "p90_frames": _percentile(latency_frames, 90),
        "never": _ratio(int(np.sum(persistent & ~confirmed)), n_persistent)
        if threshold is not None
        else None,
        "n": n_persistent,
    }
    false_confirmed = int(np.sum(confirmed & (test.label == 0)))
    return {
        "threshold": threshold,
        "k": by_k,
        "by_video_type": by_video_type,
        "by_negative_kind": by_negative_kind,
        "latency": latency,
        "false_confirmed_per_video": _ratio(false_confirmed, test_meta.n_videos)
        if threshold is not None
        else None,
    }


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _checked_scores(scorer: PersistenceScorer, batch: TrackBatch) -> np.ndarray:
    scores = np.asarray(scorer.score(batch), dtype=np.float64)
    if scores.shape != batch.observed.shape:
        raise ValueError(
            f"scorer {scorer.name!r} returned shape {scores.shape}, "
            f"expected (tracks, frames) = {batch.observed.shape}"
        )
    return scores


def build_report(
    scorers: Sequence[PersistenceScorer],
    val: TrackBatch,
    test: TrackBatch,
    val_meta: TrackMeta,
    test_meta: TrackMeta,
    tracker_quality: dict[str, Any] | None,
    split: str = "test",
) -> dict[str, Any]:
    """The evaluation report (JSON-safe): tracker quality and, per scorer, metrics by k.

    tracker_quality: {"mota", "idf1"} or the summed counts of ``labels.QUALITY_COUNTS``.
    ``val_meta`` is accepted for symmetry (the threshold uses labels only).
    """
    del val_meta
    if tracker_quality and "num_gt" in tracker_quality:
        tracker_quality = summarize_quality(tracker_quality)
    tracker_quality = tracker_quality or {}
    report: dict[str, Any] = {
        "split": split,
        "n_tracks": len(test),
        "n_videos": test_meta.n_videos,
        "tracker": {"mota": tracker_quality.get("mota"), "idf1": tracker_quality.get("idf1")},
        "scorers": {},
    }
    for scorer in scorers:
        fallback = getattr(scorer, "threshold", None)
        scores_val, scores_test = (_checked_scores(scorer, batch) for batch in (val, test))
        report["scorers"][scorer.name] = evaluate_scorer(
            scores_val,
            val,
            scores_test,
            test,
            test_meta,
            fallback_threshold=float(fallback) if fallback is not None else None,
        )
    return _json_safe(report)


def format_table(report: dict[str, Any]) -> str:
    """Aligned text: one row per scorer, one column per k, for F1 and ROC-AUC."""
    names = list(report.get("scorers", {}))
    width = max([len("scorer")] + [len(n) for n in names]) + 2
    header = "scorer".ljust(width) + "".join(f"{'k=' + k if k != 'full' else k:>7}" for k in K_KEYS)
    lines = []
    tracker = report.get("tracker", {})
    lines.append(
        f"split={report.get('split')}  tracks={report.get('n_tracks')}  "
        f"MOTA={_fmt(tracker.get('mota'))}  IDF1={_fmt(tracker.get('idf1'))}"
    )
    for metric, title in (("f1", "F1 at the validation threshold"), ("roc_auc", "ROC-AUC")):
        lines += ["", title, header]
        for name in names:
            per_k = report["scorers"][name]["k"]
            cells = "".join(f"{_fmt(per_k.get(k, {}).get(metric)):>7}" for k in K_KEYS)
            lines.append(name.ljust(width) + cells)
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def mean_roc_auc_by_k(scores: np.ndarray, batch: TrackBatch) -> float:
    """Mean ROC-AUC over the decision points of ``K_KEYS`` where both classes occur (NaN if
    none): the ranking objective parameters are tuned on (``tuning.grid_search``)."""
    aucs = []
    labelled = batch.label >= 0
    for key in K_KEYS:
        values, valid = scores_at(scores, batch.observed, key if key == "full" else int(key))
        valid &= labelled
        auc = binary_metrics(batch.label[valid] == 1, values[valid], None)["roc_auc"]
        if auc is not None:
            aucs.append(auc)
    return float(np.mean(aucs)) if aucs else math.nan


def pooled_log_loss(scores: np.ndarray, batch: TrackBatch) -> float:
    """Log-loss of probabilities over every labelled decision point (NaN without any)."""
    labels, probabilities = _pooled(scores, batch)
    if labels.size == 0:
        return math.nan
    p = np.clip(probabilities, 1e-12, 1 - 1e-12)
    return float(-np.mean(np.where(labels, np.log(p), np.log1p(-p))))
