"""Classical baselines against hand-computed small cases, causality and empty input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.tp_models.batches import track_batch
from tp_models.core.batch import TrackBatch
from tp_models.core.scorer import PersistenceScorer
from tp_models.scorers.counting import MOfN, TrackLength
from tp_models.scorers.roster import default_baselines
from tp_models.scorers.track_score import TrackScore


def batch_of(observed: list[list[int]], loglik: list[list[float]] | None = None) -> TrackBatch:
    return track_batch(observed, position=10.0, area=20.0, color=100.0, loglik=loglik)


def test_track_length_counts_observations_and_is_nan_before_birth():
    scores = TrackLength().score(batch_of([[0, 1, 1, 0, 1]]))
    np.testing.assert_array_equal(scores, [[np.nan, 1, 2, 2, 3]])


def test_m_of_n_window_hits_plus_length_tiebreak():
    observed = [[1, 0, 1, 1, 0, 0]]
    scorer = MOfN(2, 3)
    scores = scorer.score(batch_of(observed))
    window = np.array([1, 1, 2, 2, 2, 1])
    so_far = np.array([1, 1, 2, 3, 3, 3])
    np.testing.assert_allclose(scores[0], window + so_far / 7)
    # The canonical operating point is exactly the M-of-N rule.
    assert scorer.threshold == 2.0
    np.testing.assert_array_equal(scores[0] >= scorer.threshold, window >= 2)
    assert scorer.name == "m_of_n_2_3+length"  # not pure M-of-N: named for what it does


def test_m_of_n_window_longer_than_video():
    scores = MOfN(3, 10).score(batch_of([[0, 1, 1, 1]]))
    np.testing.assert_allclose(scores[0, 1:], np.array([1, 2, 3]) + np.array([1, 2, 3]) / 5)


def test_m_of_n_rejects_bad_parameters():
    with pytest.raises(ValueError):
        MOfN(4, 3)


def test_track_score_hand_computed():
    scorer = TrackScore(p_detect=0.9, false_alarm_density=0.01, new_target_density=0.01)
    batch = batch_of([[0, 1, 1, 0, 1]], [[np.nan, np.nan, -2.0, np.nan, -3.0]])
    scores = scorer.score(batch)[0]
    l1 = math.log(0.9)  # first hit: ln(P_D * beta_NT / beta_FA)
    l2 = l1 + math.log(0.9) - math.log(0.01) - 2.0
    l3 = l2 + math.log(0.1)  # miss: ln(1 - P_D)
    l4 = l3 + math.log(0.9) - math.log(0.01) - 3.0
    assert np.isnan(scores[0])
    np.testing.assert_allclose(scores[1:], [l1, l2, l3, l4], rtol=1e-6)
    assert scorer.threshold == pytest.approx(math.log(0.99 / 0.01))
    assert scorer.delete_threshold == pytest.approx(math.log(0.01 / 0.99))


def test_track_score_deletion_is_final():
    scorer = TrackScore(p_detect=0.9, false_alarm_density=0.01, new_target_density=0.01)
    # Born at 0, then two misses: ln .9 + 2 ln .1 = -4.71 <= B = -4.60 -> deleted at frame 2.
    batch = batch_of([[1, 0, 0, 1, 1]], [[np.nan, np.nan, np.nan, -1.0, -1.0]])
    scores = scorer.score(batch)[0]
    deleted_at = math.log(0.9) + 2 * math.log(0.1)
    np.testing.assert_allclose(scores[2:], [deleted_at] * 3, rtol=1e-6)
    assert np.all(scores[2:] < scorer.delete_threshold)


@pytest.mark.parametrize("scorer", default_baselines(), ids=lambda s: s.name)
def test_scores_are_causal(scorer: PersistenceScorer):
    rng = np.random.default_rng(1)
    b, t = 40, 12
    observed = rng.random((b, t)) < 0.6
    batch = batch_of(observed.astype(int).tolist(), rng.normal(-3, 1, (b, t)).tolist())
    reference = scorer.score(batch)
    assert reference.shape == (b, t)
    for cut in range(t - 1):
        changed = batch_of(observed.astype(int).tolist(), batch.loglik.tolist())
        changed.observed[:, cut + 1 :] = rng.random((b, t - cut - 1)) < 0.5
        changed.loglik[:, cut + 1 :] = rng.normal(5, 3, (b, t - cut - 1))
        changed.area[:, cut + 1 :] = 999.0
        np.testing.assert_array_equal(scorer.score(changed)[:, : cut + 1], reference[:, : cut + 1])
    # The test can fail: changing the past does change the score.
    flipped = batch_of((~observed).astype(int).tolist(), batch.loglik.tolist())
    assert not np.array_equal(
        np.nan_to_num(scorer.score(flipped), nan=-1), np.nan_to_num(reference, nan=-1)
    )


@pytest.mark.parametrize("scorer", default_baselines(), ids=lambda s: s.name)
def test_empty_batch_and_protocol(scorer: PersistenceScorer):
    assert isinstance(scorer, PersistenceScorer)
    empty = track_batch(np.zeros((0, 7), bool))
    assert scorer.score(empty).shape == (0, 7)


def test_default_baselines_have_distinct_parameter_names():
    names = [s.name for s in default_baselines()]
    assert len(set(names)) == len(names)
    assert {"m_of_n_3_5", "track_score", "track_length"} <= set(names)


def test_gradient_boosting_fits_tracks_without_boxes():
    """Point tracks (radar, Stone Soup) have no box, so the area features have no value at
    all: scikit-learn's binning failed on such a column ("window shape cannot be larger")."""
    from tp_models.scorers.boosting import GradientBoostingScorer

    rng = np.random.default_rng(0)
    observed = rng.random((40, 12)) < 0.8
    observed[:, 0] = True
    position = rng.random((40, 12, 2)) * 100
    batch = track_batch(observed, position=position, label=np.repeat([0, 1], 20))
    scorer = GradientBoostingScorer(max_iter=5)
    scorer.fit(batch, batch)
    scores = scorer.score(batch)
    assert np.isfinite(scores[observed]).all()
