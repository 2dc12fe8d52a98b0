"""Metrics against hand-computed confusion matrices, the report shape, and degenerate inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.tp_models.batches import track_batch
from tp_models.core.batch import TrackBatch, TrackMeta
from tp_models.evaluation.metrics import (
    K_KEYS,
    DecisionPoints,
    best_f1_threshold,
    binary_metrics,
    confirmation,
    decision_frames,
    mean_roc_auc_by_k,
    pooled_log_loss,
    scores_at,
)
from tp_models.evaluation.report import build_report, format_table
from tp_models.scorers.counting import TrackLength


class AreaScorer:
    """Scores a track by its area in that frame: lets a test choose every score by hand."""

    name = "area"

    def score(self, batch: TrackBatch) -> np.ndarray:
        return batch.area.astype(np.float64)


def make_batch(observed, area, label, video) -> TrackBatch:
    """Tracks whose scores (their areas, see AreaScorer) a test writes by hand."""
    return track_batch(observed, area=area, label=label, video=video)


def test_decision_frames_per_k_and_full():
    observed = np.array([[0, 1, 0, 1, 1], [1, 0, 0, 0, 0]], bool)
    np.testing.assert_array_equal(decision_frames(observed, 1), ([1, 0], [True, True]))
    frame, valid = decision_frames(observed, 2)
    assert frame[0] == 3 and valid.tolist() == [True, False]
    frame, valid = decision_frames(observed, 3)
    assert frame[0] == 4 and valid.tolist() == [True, False]
    assert not decision_frames(observed, 4)[1].any()
    np.testing.assert_array_equal(decision_frames(observed, "full"), ([4, 0], [True, True]))
    scores = np.arange(10, dtype=float).reshape(2, 5)
    values, valid = scores_at(scores, observed, 2)
    assert values[0] == 3 and valid.tolist() == [True, False]


def test_decision_points_found_once_read_the_same_as_scores_at():
    rng = np.random.default_rng(3)
    observed = rng.random((40, 12)) < 0.4
    label = rng.integers(-1, 2, 40).astype(np.int8)
    batch = track_batch(observed, label=label, video=np.zeros(40, np.int64))
    scores = rng.random((40, 12))
    points = DecisionPoints(observed)
    for key in K_KEYS:
        expected = scores_at(scores, observed, key)
        for got, wanted in zip(points.scores_at(scores, key), expected, strict=True):
            np.testing.assert_array_equal(got, wanted)
    assert mean_roc_auc_by_k(scores, batch, points) == mean_roc_auc_by_k(scores, batch)
    auc_by_k = [
        binary_metrics(label[v & (label >= 0)] == 1, s[v & (label >= 0)], None)["roc_auc"]
        for s, v in (scores_at(scores, observed, key) for key in K_KEYS)
    ]
    assert mean_roc_auc_by_k(scores, batch) == pytest.approx(
        np.mean([auc for auc in auc_by_k if auc is not None])
    )
    assert pooled_log_loss(scores, batch, points) == pooled_log_loss(scores, batch)


def test_binary_metrics_hand_computed_confusion_matrix():
    labels = np.array([1, 1, 1, 0, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.3, 0.7, 0.2, 0.1, 0.05])
    m = binary_metrics(labels, scores, 0.5)  # TP 2, FP 1, FN 1, TN 3
    assert m["n"] == 7
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["roc_auc"] == pytest.approx(11 / 12)  # 11 of 12 (pos, neg) pairs ordered right
    assert m["pr_auc"] == pytest.approx((1 + 1 + 3 / 4) / 3)
    strict = binary_metrics(labels, scores, 0.85)  # TP 1, FP 0, FN 2
    assert (strict["precision"], strict["recall"]) == (1.0, pytest.approx(1 / 3))
    assert strict["f1"] == pytest.approx(2 / 4)


def test_binary_metrics_degenerate_inputs_are_none_not_nan():
    empty = binary_metrics(np.zeros(0), np.zeros(0), 0.5)
    assert empty == {
        "precision": None,
        "recall": None,
        "f1": None,
        "roc_auc": None,
        "pr_auc": None,
        "n": 0,
    }
    negatives = binary_metrics(np.zeros(3), np.array([0.1, 0.2, 0.9]), 0.5)
    assert negatives["roc_auc"] is None and negatives["pr_auc"] is None
    assert negatives["recall"] is None and negatives["precision"] == 0.0
    none_predicted = binary_metrics(np.array([1, 0]), np.array([0.1, 0.2]), 0.5)
    assert none_predicted["precision"] is None and none_predicted["f1"] == 0.0


def test_best_f1_threshold_hand_computed():
    # thresholds: 0.9 -> F1 .667, 0.5 -> .5, 0.4 -> .8, 0.1 -> .667
    assert best_f1_threshold(np.array([1, 1, 0, 0]), np.array([0.9, 0.4, 0.5, 0.1])) == 0.4
    assert best_f1_threshold(np.array([0, 0]), np.array([0.9, 0.4])) is None


def test_confirmation_latency_within_the_track_life():
    observed = np.array([[0, 1, 1, 0, 1, 0], [1, 1, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0]], bool)
    scores = np.array(
        [
            [9, 0, 0, 0, 5, 9],  # >= 5 first at frame 4 (before birth and after end ignored)
            [1, 2, 9, 9, 9, 9],  # only after its last observation: never
            [0, 0, 7, 0, 0, 0],  # at its only observation
        ],
        float,
    )
    confirmed, n_obs, frames = confirmation(scores, observed, 5.0)
    assert confirmed.tolist() == [True, False, True]
    assert n_obs.tolist() == [3, 0, 1]
    assert frames.tolist() == [4, 0, 1]


def split(seed_shift: float):
    """Four tracks, T = 4: two persistent (label 1), a brief and a clutter negative."""
    observed = [[1, 1, 1, 1], [0, 1, 1, 0], [1, 0, 0, 0], [1, 0, 1, 1]]
    area = [
        [5, 6, 7, 8],
        [3, 6, 6, 0],
        [4, 0, 0, 0],
        [2, 2, 5 + seed_shift, 3],
    ]
    batch = make_batch(observed, area, [1, 1, 0, 0], [0, 0, 1, 2])
    meta = TrackMeta(
        video_type=np.array(["persistent", "persistent", "brief", "mixed"], dtype=object),
        kind=np.array([0, 0, 1, 2], np.int8),
        n_videos=4,
    )
    return batch, meta


def test_report_hand_computed():
    val, val_meta = split(0.0)
    test, test_meta = split(1.0)
    report = build_report(
        [AreaScorer()], val, test, val_meta, test_meta, {"mota": 0.9, "idf1": 0.8}
    )
    json.dumps(report, allow_nan=False)
    section = report["scorers"]["area"]
    # Validation decision points (label: scores): positives k=1..4 of track 0: 5 6 7 8, of
    # track 1: 6 6, full: 8 6; negatives brief: 4, full 4; clutter: 2 5 3, full 3.
    # Threshold 5: TP 8, FP 1, FN 0 -> F1 16/17, the best (6: TP 7, FP 0, FN 1 -> 14/15).
    assert section["threshold"] == 5.0
    k1 = section["k"]["1"]  # test k=1: pos 5, 6; neg 4, 2 -> all right
    assert k1["n"] == 4
    assert (k1["precision"], k1["recall"], k1["f1"], k1["roc_auc"]) == (1.0, 1.0, 1.0, 1.0)
    k2 = section["k"]["2"]  # test k=2: pos 6, 6; neg 6 (clutter) -> TP 2, FP 1, FN 0
    assert k2["n"] == 3
    assert k2["precision"] == pytest.approx(2 / 3) and k2["recall"] == 1.0
    assert k2["f1"] == pytest.approx(0.8)
    assert k2["roc_auc"] == pytest.approx(0.5)  # all tied
    k3 = section["k"]["3"]  # test: pos 7, neg 3 (the clutter's 3rd hit)
    assert k3["n"] == 2 and k3["f1"] == 1.0
    assert section["k"]["5"]["n"] == 0 and section["k"]["5"]["f1"] is None
    assert section["k"]["full"]["n"] == 4
    assert set(section["k"]) == set(K_KEYS)
    # The clutter track reaches 6 >= 5 at its 2nd observation: confirmed once in 4 videos.
    assert section["false_confirmed_per_video"] == pytest.approx(1 / 4)
    assert section["by_negative_kind"]["clutter"]["ever_confirmed"] == 1.0
    assert section["by_negative_kind"]["clutter"]["fpr_full"] == 0.0
    assert section["by_negative_kind"]["brief"]["n"] == 1
    # Persistent latency: both confirmed at their 1st observation.
    assert section["latency"]["median"] == 1.0 and section["latency"]["never"] == 0.0
    assert section["by_video_type"]["brief"]["roc_auc"] is None
    assert report["tracker"] == {"mota": 0.9, "idf1": 0.8}


def test_report_on_empty_and_one_class_inputs_is_valid_json():
    empty = make_batch(np.zeros((0, 5)), np.zeros((0, 5)), [], [])
    meta = TrackMeta(np.zeros(0, dtype=object), np.zeros(0, np.int8), n_videos=0)
    report = build_report([TrackLength(), AreaScorer()], empty, empty, meta, meta, None)
    json.dumps(report, allow_nan=False)
    section = report["scorers"]["track_length"]
    assert section["threshold"] == 3.0  # no validation positives: canonical threshold
    assert section["k"]["1"]["n"] == 0 and section["k"]["1"]["f1"] is None
    assert section["false_confirmed_per_video"] is None
    assert report["scorers"]["area"]["threshold"] is None
    assert report["tracker"] == {"mota": None, "idf1": None}

    negatives = make_batch([[1, 1, 0]], [[1, 2, 0]], [0], [0])
    one_meta = TrackMeta(np.array(["noise"], dtype=object), np.array([2], np.int8), n_videos=1)
    report = build_report([TrackLength()], negatives, negatives, one_meta, one_meta, None)
    json.dumps(report, allow_nan=False)
    assert report["scorers"]["track_length"]["k"]["full"]["roc_auc"] is None
    assert report["scorers"]["track_length"]["latency"]["median"] is None


def test_format_table_is_aligned():
    val, meta = split(0.0)
    report = build_report([AreaScorer(), TrackLength()], val, val, meta, meta, None)
    table = format_table(report)
    lines = table.splitlines()
    rows = [line for line in lines if line.startswith(("area", "track_length", "scorer"))]
    assert len(rows) == 9  # three tables (F1, ROC-AUC, P_D at 1 %), header + 2 scorers each
    assert len({len(row) for row in rows}) == 1
    assert "k=10" in table and "full" in table
