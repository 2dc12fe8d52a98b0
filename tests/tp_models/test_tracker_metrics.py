"""The numbers a tracking engineer trusts, against hand computations: TOC with intervals,
time to confirm, calibration error, per-bin breakdown, seed spread, fitting in the report."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import beta, binomtest

from tests.tp_models.test_metrics import AreaScorer, make_batch, split
from tp_models.core.batch import TrackMeta
from tp_models.evaluation.metrics import (
    confirmation_rates,
    expected_calibration_error,
    fcr_threshold,
    life_max,
    proportion_ci,
    toc_point,
)
from tp_models.evaluation.plots import plot_reliability
from tp_models.evaluation.report import aggregate_reports, build_report, format_table


class AreaProbability(AreaScorer):
    """Area / 10 as a 'probability' (areas 0..10 in these tests)."""

    name = "area_probability"
    probabilistic = True

    def score(self, batch):
        return batch.area.astype(np.float64) / 10.0


class FittedOffset(AreaScorer):
    """Fittable: learns the mean train area and subtracts it (records what it saw)."""

    name = "fitted_offset"

    def __init__(self):
        self.offset = None
        self.fitted = None

    def fit(self, train, val):
        self.offset = float(np.nanmean(train.area))
        self.fitted = {"offset": self.offset, "train_tracks": len(train)}

    def score(self, batch):
        return batch.area.astype(np.float64) - self.offset


def clopper_pearson(x: int, n: int) -> list[float]:
    lo = 0.0 if x == 0 else beta.ppf(0.025, x, n - x + 1)
    hi = 1.0 if x == n else beta.ppf(0.975, x + 1, n - x)
    return [lo, hi]


def test_fcr_threshold_lets_through_at_most_the_target_share():
    negatives = np.arange(200) / 200.0  # 0.000 .. 0.995
    threshold = fcr_threshold(negatives, 0.01)  # 2 of 200 may pass: 0.99 and 0.995
    assert 0.985 < threshold <= 0.99
    assert np.sum(negatives >= threshold) == 2
    assert np.sum(negatives >= fcr_threshold(negatives, 0.001)) == 0  # 0.2 of a track: none
    assert fcr_threshold(np.array([0.3, 0.3, 0.3]), 0.5) > 0.3  # ties stay refused together
    assert fcr_threshold(np.zeros(0), 0.01) is None


def test_toc_on_a_tiny_score_set_against_a_hand_computation():
    # Validation: 100 false tracks scoring 0..99 -> at 1 %, exactly 1 may pass (99): the
    # threshold is just above 98. Test: 50 false tracks 0, 2, .., 98; 10 true 90..99.
    val_labels = np.r_[np.zeros(100, bool), np.ones(5, bool)]
    val_scores = np.r_[np.arange(100.0), np.full(5, 200.0)]
    test_labels = np.r_[np.zeros(50, bool), np.ones(10, bool)]
    test_scores = np.r_[np.arange(50.0) * 2, 90.0 + np.arange(10)]  # false: 0,2,..,98
    point = toc_point(val_labels, val_scores, test_labels, test_scores, 0.01)
    assert 98 < point["threshold"] <= 99
    # True tracks >= 99: only the one scoring 99 -> P_D 1/10; false >= 99: none -> FCR 0.
    assert point["p_d"] == pytest.approx(0.1) and point["fcr"] == 0.0
    np.testing.assert_allclose(point["p_d_ci"], clopper_pearson(1, 10), rtol=1e-6)
    np.testing.assert_allclose(point["fcr_ci"], clopper_pearson(0, 50), rtol=1e-6)
    assert (point["n_true"], point["n_false"], point["resolvable"]) == (10, 50, True)
    assert point["threshold_source"] == "validation"
    # Read off the test TOC: 50 false tracks at 1 % -> none may pass: threshold above 98,
    # the same P_D here.
    assert point["test_toc"]["p_d"] == pytest.approx(0.1)
    assert not toc_point(val_labels, val_scores, test_labels, test_scores, 0.001)["resolvable"]


def test_confirmation_rates_and_interval():
    rates = confirmation_rates(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 5.0]), 2.5)
    assert (rates["p_d"], rates["fcr"]) == (0.5, 0.5)
    np.testing.assert_allclose(rates["p_d_ci"], clopper_pearson(2, 4), rtol=1e-6)
    assert proportion_ci(0, 0) is None
    for x, n in ((0, 7), (3, 10), (40, 40), (5, 2000)):
        exact = binomtest(x, n).proportion_ci(0.95, method="exact")
        np.testing.assert_allclose(proportion_ci(x, n), [exact.low, exact.high], atol=1e-9)


def test_life_max_reads_only_the_track_life():
    observed = np.array([[0, 1, 0, 1, 0], [0, 0, 0, 0, 0]], bool)
    scores = np.array([[9.0, 1.0, 4.0, 2.0, 9.0], [1.0, 1.0, 1.0, 1.0, 1.0]])
    assert life_max(scores, observed).tolist() == [4.0, -np.inf]


def test_ece_against_a_hand_computation():
    labels = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.3, 0.6, 0.9])
    out = expected_calibration_error(labels, p, n_bins=2)
    # Bins {0.1, 0.3}: mean 0.2, frequency 0; {0.6, 0.9}: mean 0.75, frequency 1.
    assert out["ece"] == pytest.approx(0.5 * 0.2 + 0.5 * 0.25)
    assert out["bins"][1] == {"predicted": pytest.approx(0.75), "observed": 1.0, "n": 2}
    perfect = expected_calibration_error(np.array([0, 1, 0, 1]), np.array([0.5] * 4), 1)
    assert perfect["ece"] == 0.0
    with pytest.raises(ValueError, match="probabilities"):
        expected_calibration_error(labels, p * 3)


def test_report_toc_time_to_confirm_and_calibration(tmp_path):
    val, val_meta = split(0.0)
    test, test_meta = split(1.0)
    report = build_report([AreaScorer(), AreaProbability()], val, test, val_meta, test_meta, None)
    json.dumps(report, allow_nan=False)
    section = report["scorers"]["area"]
    # Online: validation false tracks' highest scores in life: brief 4, clutter 5 -> at 1 %
    # none may pass: threshold just above 5. Test: true highs 8 and 6, false 4 and 6.
    online = section["toc"]["online"]["fcr_0.01"]
    assert 5 < online["threshold"] < 5.001
    assert (online["p_d"], online["fcr"]) == (1.0, 0.5)
    # Time to confirm: track 0 (areas 5 6 7 8) passes at its 2nd observation, track 1
    # (observed areas 6 6) at its 1st -> median 1.5, p90 1.9.
    ttc = section["time_to_confirm"]
    assert (ttc["median"], ttc["p90"], ttc["never"]) == (1.5, pytest.approx(1.9), 0.0)
    # Per k: k = 1 validation false scores 4 and 2 -> threshold just above 4; test k = 1:
    # true 5, 6 pass, false 4, 2 do not.
    k1 = section["toc"]["1"]["fcr_0.01"]
    assert (k1["p_d"], k1["fcr"]) == (1.0, 0.0)
    assert "calibration" not in section and section["probabilistic"] is False
    calibration = report["scorers"]["area_probability"]["calibration"]
    assert calibration["binning"].startswith("equal-mass")
    assert 0 <= calibration["pooled"]["ece"] <= 1 and set(calibration["k"]) >= {"1", "full"}
    figure = plot_reliability(report, tmp_path / "reliability.png")
    assert figure is not None and figure.stat().st_size > 1000
    only_rules = build_report([AreaScorer()], val, test, val_meta, test_meta, None)
    assert plot_reliability(only_rules, tmp_path / "none.png") is None


def test_report_per_bin_breakdown():
    val, val_meta = split(0.0)
    test, test_meta = split(1.0)
    test_meta.bin = np.array(["low_pd", "high_pd", "low_pd", "high_pd"], dtype=object)
    report = build_report([AreaScorer()], val, test, val_meta, test_meta, None)
    by_bin = report["scorers"]["area"]["by_bin"]
    assert set(by_bin) == {"low_pd", "high_pd"}
    assert by_bin["low_pd"]["n_tracks"] == 2 and by_bin["high_pd"]["n_tracks"] == 2
    # high_pd holds the second true track (areas 6 6) and the clutter track (6 at its 2nd
    # hit): at k = 2 with the validation threshold 5, both are confirmed.
    k2 = by_bin["high_pd"]["k"]["2"]
    assert k2["n"] == 2 and k2["precision"] == 0.5 and k2["recall"] == 1.0
    assert by_bin["low_pd"]["k"]["online"]["p_d_at_fcr_0.01"] == 1.0
    assert (
        "by_bin"
        not in build_report([AreaScorer()], val, test, val_meta, val_meta, None)["scorers"]["area"]
    )


def test_build_report_fits_fittable_scorers_on_train_only():
    val, val_meta = split(0.0)
    test, test_meta = split(1.0)
    train = make_batch([[1, 1, 0, 0]], [[100, 300, 0, 0]], [1], [9])
    scorer = FittedOffset()
    report = build_report([scorer], val, test, val_meta, test_meta, None, train=train)
    assert report["scorers"]["fitted_offset"]["fitted"] == {"offset": 100.0, "train_tracks": 1}


def test_aggregate_reports_mean_and_sd_and_table():
    val, meta = split(0.0)
    first = build_report([AreaScorer()], val, val, meta, meta, None)
    second = json.loads(json.dumps(first))
    first["scorers"]["area"]["k"]["1"]["f1"] = 0.8
    second["scorers"]["area"]["k"]["1"]["f1"] = 0.9
    second["scorers"]["area"]["k"]["2"]["f1"] = None
    merged = aggregate_reports([first, second])
    f1 = merged["scorers"]["area"]["k"]["1"]["f1"]
    assert f1["mean"] == pytest.approx(0.85) and f1["sd"] == pytest.approx(0.0707107, rel=1e-5)
    assert f1["n"] == 2
    assert merged["scorers"]["area"]["k"]["2"]["f1"]["n"] == 1  # None skipped
    assert merged["scorers"]["area"]["k"]["2"]["f1"]["sd"] is None
    assert merged["split"] == "test"  # equal strings kept
    table = format_table(merged, ("f1", "roc_auc", "p_d_at_fcr_0.01"))
    assert "0.850±0.071" in table
    rows = [line for line in table.splitlines() if line.startswith(("area", "scorer"))]
    assert len(rows) == 6 and len({len(row) for row in rows}) == 1
    with pytest.raises(ValueError, match="format_table metrics"):
        format_table(first, ("f2",))


def test_bin_meta_default_keeps_old_constructors_working():
    meta = TrackMeta(np.zeros(0, dtype=object), np.zeros(0, np.int8), n_videos=0)
    assert meta.bin is None
