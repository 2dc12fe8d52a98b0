"""Online evaluation of persistence scorers: the score after k observations, per track.

For k = 1..10 a track is evaluated at the frame of its k-th observation (tracks with fewer
observations are left out at that k; ``n`` says how many remain); "full" evaluates it at its
last observation. Each k entry uses its own threshold, the one maximising F1 on the
validation split at that k. One more "operating" threshold per scorer, maximising F1 over
all validation decision points pooled (every track at every k it reaches, plus full), is
what an online system would run with: it decides latency, false confirmations and the
breakdowns by video type. Undefined metrics (no tracks, one class only) are None, never
NaN, so the report is valid JSON.

What a tracking engineer reads besides F1 (see ``tracker_numbers``):

- the tracker operating characteristic (TOC): P_D, the share of true tracks confirmed,
  when 1 % and 0.1 % of false tracks are (``FCR_TARGETS``), at every k and "online" (a
  track counts as confirmed if its score ever reaches the threshold during its life). The
  threshold is chosen on validation (the lowest one letting at most that share of
  validation false tracks through) and the achieved test false-confirmation rate is
  reported next to P_D, both with exact (Clopper-Pearson) 95 % intervals; the P_D read off
  the test TOC itself (threshold chosen on test: optimistic) is given as ``test_toc``.
  Below 1 / n_false validation tracks the target cannot be resolved (``resolvable``).
- time to confirm: median and p90 observations to confirmation at the online 1 %
  operating point.
- calibration of probabilistic scorers (``probabilistic = True``): expected calibration
  error over ``CALIBRATION_BINS`` equal-mass bins (each bin holds the same number of
  decision points, so no bin is empty or rests on a handful of points), per k and pooled,
  with the reliability-diagram points.
- per-bin breakdown when ``TrackMeta.bin`` labels tracks (e.g. operating-point bins).

Fittable scorers (``core.scorer.FittableScorer``) are fitted inside ``build_report`` when a
train batch is given, before any score is read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tp_models.core.batch import TrackBatch, TrackMeta
from tp_models.core.scorer import PersistenceScorer, fit_scorers
from tp_models.evaluation.glossary import METRICS
from tp_models.evaluation.metrics import (
    CALIBRATION_BINS,
    FCR_TARGETS,
    K_KEYS,
    best_f1_threshold,
    binary_metrics,
    confirmation,
    confirmation_rates,
    expected_calibration_error,
    fcr_key,
    life_max,
    percentile,
    pooled_decisions,
    ratio,
    scores_at,
    toc_point,
)
from tp_models.perception.labels import KIND_BRIEF, KIND_CLUTTER, KIND_EMPTY, summarize_quality

NEGATIVE_KINDS = {"brief": KIND_BRIEF, "clutter": KIND_CLUTTER, "no_object": KIND_EMPTY}


def tracker_numbers(
    scores_val: np.ndarray,
    val: TrackBatch,
    scores_test: np.ndarray,
    test: TrackBatch,
    test_meta: TrackMeta,
    probabilistic: bool,
) -> dict[str, Any]:
    """TOC per k and online, time to confirm, calibration and per-bin P_D (module doc)."""
    toc: dict[str, Any] = {}
    for key in (*K_KEYS, "online"):
        y_val, s_val = _at_key(scores_val, val, key)
        y_test, s_test = _at_key(scores_test, test, key)
        toc[key] = {
            fcr_key(target): toc_point(y_val, s_val, y_test, s_test, target)
            for target in FCR_TARGETS
        }
    operating = toc["online"][fcr_key(FCR_TARGETS[0])]
    persistent = (test.label == 1) & test.observed.any(axis=1)
    confirmed, obs_at, frames_at = confirmation(scores_test, test.observed, operating["threshold"])
    out: dict[str, Any] = {
        "toc": toc,
        "time_to_confirm": {
            "target_fcr": FCR_TARGETS[0],
            "threshold": operating["threshold"],
            **_latency(confirmed, obs_at, frames_at, persistent, operating["threshold"]),
        },
    }
    if probabilistic:
        labels, probabilities = pooled_decisions(scores_test, test)
        out["calibration"] = {
            "binning": f"equal-mass, {CALIBRATION_BINS} bins",
            "pooled": expected_calibration_error(labels, probabilities),
            "k": {
                key: expected_calibration_error(*_at_key(scores_test, test, key))["ece"]
                for key in K_KEYS
            },
        }
    return out


def _by_bin(
    scores_test: np.ndarray,
    test: TrackBatch,
    test_meta: TrackMeta,
    thresholds: dict[str, float | None],
    toc: dict[str, Any],
) -> dict[str, Any]:
    """Per-bin F1/ROC-AUC at the per-k validation thresholds and P_D / FCR at the
    validation 1 % operating point of each k (thresholds are never re-chosen per bin)."""
    out: dict[str, Any] = {}
    key_1pct = fcr_key(FCR_TARGETS[0])
    bins = np.asarray(test_meta.bin).astype(str)
    for name in sorted(set(bins.tolist())):
        mine = test.select(bins == name)
        per_k = {}
        for key in (*K_KEYS, "online"):
            labels, values = _at_key(scores_test[bins == name], mine, key)
            entry: dict[str, Any] = {}
            if key != "online":
                entry.update(binary_metrics(labels, values, thresholds[key]))
            rates = confirmation_rates(
                values[labels], values[~labels], toc[key][key_1pct]["threshold"]
            )
            entry[f"p_d_at_{key_1pct}"] = rates["p_d"]
            entry[f"p_d_at_{key_1pct}_ci"] = rates["p_d_ci"]
            entry[f"achieved_{key_1pct}"] = rates["fcr"]
            per_k[key] = entry
        out[name] = {"n_tracks": int(np.sum(bins == name)), "k": per_k}
    return out


def scorer_report(
    scores_val: np.ndarray,
    val: TrackBatch,
    scores_test: np.ndarray,
    test: TrackBatch,
    test_meta: TrackMeta,
    fallback_threshold: float | None = None,
    probabilistic: bool = False,
    rule: Callable[[float], str] | None = None,
) -> dict[str, Any]:
    """One scorer's section of the report (see ``build_report``).

    probabilistic: the scores are probabilities, so calibration is reported too.
    rule: names the rule a threshold applies (``scorer.rule``), reported beside each one.
    """
    y_val, s_val = pooled_decisions(scores_val, val)
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
        val_values, val_valid = scores_at(scores_val, val.observed, key)
        val_valid &= val.label >= 0
        threshold_k = best_f1_threshold(val.label[val_valid] == 1, val_values[val_valid])
        if threshold_k is None:
            threshold_k = threshold
        values, valid = scores_at(scores_test, test.observed, key)
        valid &= labelled
        by_k[key] = {
            **binary_metrics(positive[valid], values[valid], threshold_k),
            "threshold": threshold_k,
        }
        if rule is not None and threshold_k is not None:
            by_k[key]["rule"] = rule(threshold_k)

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
            "fpr_full": ratio(int(np.sum(full_values[negatives] >= threshold)), n_neg)
            if threshold is not None
            else None,
            "ever_confirmed": ratio(int(confirmed[negatives].sum()), n_neg)
            if threshold is not None
            else None,
            "roc_auc": binary_metrics(positive[both], full_values[both], None)["roc_auc"],
        }

    persistent = positive & test.observed.any(axis=1)
    latency = _latency(confirmed, obs_at, frames_at, persistent, threshold)
    false_confirmed = int(np.sum(confirmed & (test.label == 0)))
    section = {
        "threshold": threshold,
        "rule": rule(threshold) if rule is not None and threshold is not None else None,
        "probabilistic": probabilistic,
        "k": by_k,
        "by_video_type": by_video_type,
        "by_negative_kind": by_negative_kind,
        "latency": latency,
        "false_confirmed_per_video": ratio(false_confirmed, test_meta.n_videos)
        if threshold is not None
        else None,
        **tracker_numbers(scores_val, val, scores_test, test, test_meta, probabilistic),
    }
    if test_meta.bin is not None:
        thresholds = {key: by_k[key]["threshold"] for key in K_KEYS}
        thresholds["online"] = threshold
        section["by_bin"] = _by_bin(scores_test, test, test_meta, thresholds, section["toc"])
    return section


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
    train: TrackBatch | None = None,
) -> dict[str, Any]:
    """The evaluation report (JSON-safe): tracker quality and, per scorer, metrics by k.

    tracker_quality: {"mota", "idf1"} or the summed counts of ``labels.QUALITY_COUNTS``.
    ``val_meta`` is accepted for symmetry (the threshold uses labels only).
    train: when given, every ``FittableScorer`` is fitted on it first (``fit_scorers``); a
    scorer's tuned parameters (its ``fitted`` dict) are reported as ``fitted``. Without it
    scorers are used as they are (fit them beforehand, or they keep their defaults).
    """
    del val_meta
    if train is not None:
        fit_scorers(scorers, train, val)
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
        report["scorers"][scorer.name] = scorer_report(
            scores_val,
            val,
            scores_test,
            test,
            test_meta,
            fallback_threshold=float(fallback) if fallback is not None else None,
            probabilistic=bool(getattr(scorer, "probabilistic", False)),
            rule=getattr(scorer, "rule", None),
        )
        if getattr(scorer, "fitted", None) is not None:
            report["scorers"][scorer.name]["fitted"] = dict(scorer.fitted)
    return _json_safe(report)


# format_table metric name -> (title, where the value of one k sits in a scorer's section)
TABLE_METRICS: dict[str, tuple[str, Callable[[dict[str, Any], str], Any]]] = {
    "f1": ("F1 at the validation threshold", lambda sec, k: sec["k"].get(k, {}).get("f1")),
    "roc_auc": ("ROC-AUC", lambda sec, k: sec["k"].get(k, {}).get("roc_auc")),
    **{
        f"p_d_at_{fcr_key(t)}": (
            f"P_D at {t:.1%} false confirmations (threshold on validation)",
            lambda sec, k, t=t: sec.get("toc", {}).get(k, {}).get(fcr_key(t), {}).get("p_d"),
        )
        for t in FCR_TARGETS
    },
    "ece": (
        "expected calibration error (probabilistic scorers)",
        lambda sec, k: (sec.get("calibration") or {}).get("k", {}).get(k),
    ),
}


def format_table(
    report: dict[str, Any], metrics: Sequence[str] = ("f1", "roc_auc", "p_d_at_fcr_0.01")
) -> str:
    """Aligned text: one row per scorer, one column per k, for each of ``metrics`` (keys of
    ``TABLE_METRICS``). Works on ``aggregate_reports`` output too: cells read mean ± sd."""
    unknown = [m for m in metrics if m not in TABLE_METRICS]
    if unknown:
        raise ValueError(f"format_table metrics {unknown} unknown; use {sorted(TABLE_METRICS)}")
    names = list(report.get("scorers", {}))
    width = max([len("scorer")] + [len(n) for n in names]) + 2
    lines = []
    tracker = report.get("tracker", {})
    lines.append(
        f"split={_fmt(report.get('split'))}  tracks={_fmt(report.get('n_tracks'))}  "
        f"MOTA={_fmt(tracker.get('mota'))}  IDF1={_fmt(tracker.get('idf1'))}"
    )
    for metric in metrics:
        title, read = TABLE_METRICS[metric]
        rows = {
            name: [_fmt(read(report["scorers"][name], key)) for key in K_KEYS] for name in names
        }
        cell = 1 + max([6] + [len(c) for cells in rows.values() for c in cells])
        header = "scorer".ljust(width) + "".join(
            f"{'k=' + k if k != 'full' else k:>{cell}}" for k in K_KEYS
        )
        lines += ["", title, header]
        for name, cells in rows.items():
            lines.append(name.ljust(width) + "".join(f"{c:>{cell}}" for c in cells))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, dict) and "mean" in value:
        if value["mean"] is None:
            return "-"
        sd = "-" if value.get("sd") is None else f"{value['sd']:.3f}"
        return f"{value['mean']:.3f}±{sd}"
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def aggregate_reports(reports: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Reports of the same evaluation (e.g. one model trained with several seeds) merged
    into one of the same shape, every number replaced by {"mean", "sd", "n"}: sd is the
    sample standard deviation (ddof = 1, None for a single value), n counts the reports
    where the number was defined (None entries are skipped). Equal non-numbers are kept;
    differing ones become the list of values."""
    if not reports:
        raise ValueError("aggregate_reports needs at least one report")
    return _aggregate(list(reports))


def _aggregate(values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, dict) for v in present):
        keys = list(dict.fromkeys(k for v in present for k in v))
        return {k: _aggregate([v.get(k) for v in present]) for k in keys}
    lists = present and all(isinstance(v, list) for v in present)
    if lists and len({len(v) for v in present}) == 1:
        return [_aggregate(list(items)) for items in zip(*present, strict=True)]
    if present and all(_is_number(v) for v in present):
        data = np.asarray(present, dtype=np.float64)
        sd = float(np.std(data, ddof=1)) if data.size > 1 else None
        return {"mean": float(data.mean()), "sd": sd, "n": int(data.size)}
    if not present and all(v is None for v in values):
        return None
    first = present[0]
    return first if all(v == first for v in present) else present


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool)


OPERATING_POINT_COLUMNS = (
    "time_to_confirm_median",
    "time_to_confirm_p90",
    "never_confirmed",
    "ece_pooled",
)


def format_operating_point(report: dict[str, Any]) -> str:
    """Per scorer, at its validated 1 % false-confirmation threshold: observations to confirm
    a true track (median, p90), the share never confirmed, and the pooled calibration error
    of probabilistic scorers; columns named as in the glossary (``glossary.METRICS``).
    Works on ``aggregate_reports`` output too."""
    names = list(report.get("scorers", {}))
    width = max([len("scorer")] + [len(n) for n in names]) + 2
    cell = 2 + max(len(c) for c in OPERATING_POINT_COLUMNS)
    lines = [
        "At 1 % false confirmations (threshold on validation)",
        "scorer".ljust(width) + "".join(f"{c:>{cell}}" for c in OPERATING_POINT_COLUMNS),
    ]
    for name in names:
        section = report["scorers"][name]
        cells = [METRICS[column].read(section) for column in OPERATING_POINT_COLUMNS]
        lines.append(name.ljust(width) + "".join(f"{_fmt(c):>{cell}}" for c in cells))
    return "\n".join(lines)


def _latency(
    confirmed: np.ndarray,
    obs_at: np.ndarray,
    frames_at: np.ndarray,
    persistent: np.ndarray,
    threshold: float | None,
) -> dict[str, Any]:
    """Observations (and frames) to confirmation of the true tracks, and the share never."""
    latency_obs = obs_at[persistent & confirmed]
    latency_frames = frames_at[persistent & confirmed]
    n_persistent = int(persistent.sum())
    return {
        "unit": "observations",
        "median": percentile(latency_obs, 50),
        "p90": percentile(latency_obs, 90),
        "median_frames": percentile(latency_frames, 50),
        "p90_frames": percentile(latency_frames, 90),
        "never": ratio(int(np.sum(persistent & ~confirmed)), n_persistent)
        if threshold is not None
        else None,
        "n": n_persistent,
    }


def _at_key(scores: np.ndarray, batch: TrackBatch, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(labels as bool, scores) of the labelled tracks at decision point ``key``; "online"
    is each track's highest score over its life."""
    labelled = batch.label >= 0
    if key == "online":
        return batch.label[labelled] == 1, life_max(scores, batch.observed)[labelled]
    values, valid = scores_at(scores, batch.observed, key)
    valid &= labelled
    return batch.label[valid] == 1, values[valid]
