"""The contest baselines on hand-made tracks whose answer is known: clutter map, motion gate,
IPDA, gradient boosting, the parameter oracle, and pure M-of-N under their true names."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.tp_models.batches import track_batch
from tp_models.core.batch import TrackBatch
from tp_models.core.scorer import FittableScorer, fit_scorers
from tp_models.evaluation.metrics import pooled_log_loss
from tp_models.perception.tracker import TrackerConfig
from tp_models.scorers.boosting import GradientBoostingScorer, NotFittedError, life_features
from tp_models.scorers.clutter_map import (
    FRAME_AREA,
    ClutterMapScore,
    StreamingClutterMap,
    kept_through_misses,
)
from tp_models.scorers.counting import MOfN, MotionGate, PureMOfN
from tp_models.scorers.existence import (
    AdaptiveIPDA,
    IPDAExistence,
    OracleIPDA,
    OracleTrackScore,
    existence_probability,
    innovation_loglik,
    scene_defaults,
)
from tp_models.scorers.roster import classical_baselines, default_baselines
from tp_models.scorers.track_score import TrackScore, log_likelihood_ratio
from tp_models.scorers.tuning import grid_search
from tp_models.tracks.arrays import arrays_to_batch, extract_and_label
from tp_models.tracks.features import (
    HANDMADE_FEATURES,
    handmade_features,
    handmade_scene_features,
    past_detections_nearby,
    with_scene_features,
)
from tp_models.tracks.lives import LifeBuckets
from tp_models.world.config import SceneConfig
from tp_models.world.simulate import simulate

FRAMES = 12


def tracks(
    paths: list[np.ndarray], videos: list[int], labels: list[int] | None = None, area=20.0
) -> TrackBatch:
    """A batch from per-track (T, 2) positions (NaN row = not observed); loglik -3 per update."""
    position = np.stack(paths).astype(np.float32)
    observed = np.isfinite(position[..., 0])
    first = observed & (np.cumsum(observed, axis=1) == 1)
    return track_batch(
        observed,
        position=position,
        area=np.where(observed, np.reshape(area, (-1, 1)), np.nan),
        color=100.0,
        loglik=np.where(observed & ~first, -3.0, np.nan),
        label=labels,
        video=videos,
    )


def path(start: tuple[float, float], frames: range, velocity=(0.0, 0.0)) -> np.ndarray:
    """(FRAMES, 2) positions observed in ``frames``, moving at ``velocity`` px/frame."""
    out = np.full((FRAMES, 2), np.nan)
    for t in frames:
        out[t] = (start[0] + velocity[0] * t, start[1] + velocity[1] * t)
    return out


def test_clutter_map_scores_a_track_in_a_busy_cell_lower_than_elsewhere():
    # Video 0: five one-frame detections at (50, 50) in frames 0..4, then two identical
    # 3-hit tracks born at frame 6: one in that cell, one at (100, 100).
    blips = [path((50.0, 50.0), range(t, t + 1)) for t in range(5)]
    busy = path((50.0, 50.0), range(6, 9))
    quiet = path((100.0, 100.0), range(6, 9))
    batch = tracks([*blips, busy, quiet], [0] * 7)
    counts = past_detections_nearby(batch, radius=4.0)
    assert counts[5, 6:9].tolist() == [5, 5, 5]  # the five blips, never itself
    assert counts[6, 6:9].tolist() == [0, 0, 0]
    assert counts[4, 4] == 4  # blip 4 sees the four earlier blips, not same-frame ones
    scorer = ClutterMapScore(radius=4.0, prior_frames=5.0)
    scores = scorer.score(batch)
    assert np.all(scores[5, 6:9] < scores[6, 6:9])
    # Hand computation of the busy track's birth term: ln(P_D beta_NT / beta_FA), with
    # beta_FA = (prior * area * 5 + 5) / (area * (5 + 6)) after 6 frames seen.
    area = math.pi * 16
    beta = (TrackScore().false_alarm_density * area * 5 + 5) / (area * 11)
    expected = math.log(0.9) + math.log(TrackScore().new_target_density) - math.log(beta)
    assert scores[5, 6] == pytest.approx(expected, rel=1e-9)
    # The quiet track at an empty place scores like the plain track score there (prior
    # density), up to the prior's dilution over the frames seen.
    assert scores[6, 6] > TrackScore().score(batch)[6, 6]


def test_streaming_clutter_map_raises_beta_fa_in_a_busy_scene_by_its_birth_rate():
    # Video 0: five one-frame blips far apart (frames 0..4), then a 3-hit track at frame 6
    # far from all of them; video 1: the same track alone. Only the scene's rate differs.
    blips = [path((10.0 + 20 * t, 10.0), range(t, t + 1)) for t in range(5)]
    busy, alone = path((100.0, 100.0), range(6, 9)), path((100.0, 100.0), range(6, 9))
    batch = tracks([*blips, busy, alone], [0] * 6 + [1])
    plain, scene = StreamingClutterMap(), StreamingClutterMap(scene_weight=1.0)
    np.testing.assert_allclose(plain.score(batch)[5], plain.score(batch)[6], equal_nan=True)
    assert scene.score(batch)[6, 6] == plain.score(batch)[6, 6]  # no other birth, no rise
    # Busy: five births in the 6 frames before its first, decayed: beta_FA grows by
    # ~5 / 6 births per frame over the frame's area.
    rise = plain.score(batch)[5, 6] - scene.score(batch)[5, 6]
    expected = math.log(1.0 + (5.0 / 6.0) / FRAME_AREA / plain.false_alarm_density)
    assert rise == pytest.approx(expected, rel=0.02)


def test_streaming_clutter_map_turns_off_a_local_count_that_misleads():
    # One video: one-frame clutter blips in one corner (frames 0..5), then two real tracks
    # born in that corner and two false ones elsewhere with as many hits at first, the real
    # ones lasting longer. The local count only ever doubts the real tracks, so the tuning
    # turns it off and keeps the plain track score (the dense Stone Soup point's case).
    blips = [path((50.0 + t % 2, 50.0), range(t, t + 1)) for t in range(6)]
    real = [path((50.0, 51.0 + i), range(6, 12)) for i in range(2)]
    false = [path((100.0 + 10 * i, 100.0), range(6, 9)) for i in range(2)]
    batch = tracks([*blips, *real, *false], [0] * 10, labels=[0] * 6 + [1, 1] + [0, 0])
    scorer = StreamingClutterMap()
    scorer.fit(batch, None)
    assert scorer.fitted["weight"] == 0.0
    assert scorer.fitted["scene_weight"] == scorer.fitted["p_detect_weight"] == 0.0
    plain = TrackScore(p_detect=scorer.p_detect, false_alarm_density=scorer.false_alarm_density)
    np.testing.assert_allclose(scorer.score(batch), plain.score(batch), equal_nan=True)


def test_clutter_map_is_per_video_and_can_include_the_own_track():
    blips = [path((50.0, 50.0), range(t, t + 1)) for t in range(5)]
    same_place_other_video = path((50.0, 50.0), range(6, 9))
    batch = tracks([*blips, same_place_other_video], [0] * 5 + [1])
    assert past_detections_nearby(batch, 4.0)[5, 6:9].tolist() == [0, 0, 0]
    static = tracks([path((20.0, 20.0), range(0, 4))], [0])
    assert past_detections_nearby(static, 4.0)[0, :4].tolist() == [0, 0, 0, 0]
    own = past_detections_nearby(static, 4.0, include_own_track=True)
    assert own[0, :4].tolist() == [0, 1, 2, 3]


def test_motion_gate_refuses_a_static_track_and_confirms_a_mover():
    static = path((30.0, 30.0), range(FRAMES))
    mover = path((30.0, 60.0), range(FRAMES), velocity=(2.0, 0.0))
    gate = MotionGate(m=2, n=3, threshold=1.0)
    scores = gate.score(tracks([static, mover], [0, 0]))
    assert not np.any(scores[0] >= gate.threshold)  # 12 hits, never moved: never confirmed
    assert scores[0, 0] == -1.0  # 1 hit of the 2 needed
    assert not scores[1, 0] >= 1.0 and scores[1, 1] == pytest.approx(2.0)  # 2nd hit, moved 2 px
    assert gate.rule(1.5) == "2-of-3 and net displacement >= 1.50 px"
    assert gate.name == "motion_gate_2_3"
    with pytest.raises(ValueError, match="threshold"):
        MotionGate(threshold=0.0)


def test_pure_m_of_n_names_and_decisions():
    rows = [path((10.0, 10.0), [0, 2, 3])]
    scores = PureMOfN(2, 3).score(tracks(rows, [0]))[0]
    # hits 1 0 1 1 0 0 ...: window of 3 counts 1 1 2 2 2 1 0 ...
    np.testing.assert_array_equal(scores[:7], [0, 0, 1, 1, 1, 0, 0])
    scorer = PureMOfN(2, 3)
    assert scorer.name == "m_of_n_2_3" and scorer.threshold == 1.0
    assert (scorer.rule(1.0), scorer.rule(0.0), scorer.rule(1.5)) == (
        "2-of-3",
        "confirm every track",
        "confirm no track",
    )
    tie_broken = MOfN(2, 3)
    assert tie_broken.name == "m_of_n_2_3+length"
    # A validation threshold of 3.0 on the tie-broken score is the 3-of-3 rule.
    assert tie_broken.rule(3.0) == "3-of-3"
    assert tie_broken.rule(2.5).startswith("3-of-3, or 2-of-3 with observations")
    assert tie_broken.rule(3.2).startswith("3-of-3 with observations/(T+1) >= 0.200")


def test_ipda_existence_rises_with_hits_and_falls_with_misses():
    observed = np.array([[1, 1, 1, 1, 0, 0, 0, 1]], bool)
    loglik = np.where(observed, -2.0, np.nan)
    loglik[0, 0] = np.nan
    p = existence_probability(observed, loglik, 0.9, 1e-3, 0.98, 0.5, 0.99)[0]
    assert p[0] == pytest.approx(0.5)
    assert np.all(np.diff(p[:4]) > 0) and np.all(np.diff(p[3:7]) < 0) and p[7] > p[6]
    assert np.all((p >= 0) & (p <= 1))
    # Hand computation of the second frame: P- = 0.98 * 0.5, delta = P_D P_G - P_D g / rho.
    prior = 0.98 * 0.5
    delta = 0.9 * 0.99 - 0.9 * math.exp(-2.0) / 1e-3
    assert p[1] == pytest.approx((1 - delta) * prior / (1 - delta * prior), rel=1e-9)
    # A poorly fitting detection (g << rho) lowers existence like a miss does.
    bad = np.where(observed, -30.0, np.nan)
    assert existence_probability(observed, bad, 0.9, 1e-3, 0.98, 0.5, 0.99)[0, 1] < 0.5


def test_ipda_fit_tunes_on_train_only():
    rng = np.random.default_rng(0)
    good = [path((20.0, 10.0 * i), range(FRAMES), (1.0, 0.0)) for i in range(1, 9)]
    bad = [path((90.0, 10.0 * i), rng.choice(FRAMES, 4, replace=False)) for i in range(1, 9)]
    train = tracks([*good, *bad], list(range(16)), [1] * 8 + [0] * 8)
    empty_val = train.select(np.zeros(16, bool))
    scorer = IPDAExistence(grid={"p_detect": (0.5, 0.95), "clutter_density": (1e-4,)})
    assert isinstance(scorer, FittableScorer) and not isinstance(TrackScore(), FittableScorer)
    fit_scorers([scorer, TrackScore()], train, empty_val)
    # Always-detected true tracks and sparse false ones: a high P_D explains them better.
    assert scorer.fitted == {"p_detect": 0.95, "clutter_density": 1e-4}
    assert scorer.p_detect == 0.95


def test_adaptive_ipda_doubts_a_hit_in_a_busy_scene_by_its_birth_rate():
    # As for the streaming clutter map: the same 3-hit track after five blips elsewhere in
    # its video, and alone in another video.
    blips = [path((10.0 + 20 * t, 10.0), range(t, t + 1)) for t in range(5)]
    busy, alone = path((100.0, 100.0), range(6, 9)), path((100.0, 100.0), range(6, 9))
    batch = tracks([*blips, busy, alone], [0] * 6 + [1])
    off, scene = AdaptiveIPDA(), AdaptiveIPDA(scene_weight=1.0)
    np.testing.assert_array_equal(off.score(batch), IPDAExistence().score(batch))
    assert scene.score(batch)[6, 7] == off.score(batch)[6, 7]  # no other birth: as plain
    # Busy: clutter density raised by ~5/6 births per frame over the frame's area, so each
    # later hit raises existence less.
    assert scene.score(batch)[5, 6] == off.score(batch)[5, 6]  # the first observation
    assert scene.score(batch)[5, 7] < off.score(batch)[5, 7]
    density = scene.frame_clutter_density(handmade_scene_features(batch))
    assert density[5, 7] == pytest.approx(
        scene.clutter_density + (5.0 / 7.0) / FRAME_AREA, rel=0.05
    )


def test_adaptive_ipda_reads_p_detect_from_the_scene_s_established_tracks():
    """A sensor that never misses in one video and misses every other frame in another: the
    same new track's miss counts against it more where misses are rare."""
    sure = path((20.0, 20.0), range(FRAMES), (1.0, 0.0))
    flaky = path((20.0, 20.0), range(0, FRAMES, 2), (1.0, 0.0))
    new = path((100.0, 100.0), (7, 8, 10))  # missed at frame 9
    batch = tracks([sure, new, flaky, new], [0, 0, 1, 1])
    off, scene = AdaptiveIPDA(p_detect=0.8), AdaptiveIPDA(p_detect=0.8, p_detect_weight=1.0)
    np.testing.assert_array_equal(off.score(batch), IPDAExistence(p_detect=0.8).score(batch))
    at_detections = scene.frame_p_detect(handmade_scene_features(batch))
    p_detect = kept_through_misses(at_detections, batch.observed)
    # By frame 7, with the prior worth one chance: (0.8 + 4 hits) / (1 + 4 chances) from
    # frames 3..6 in one video, (0.8 + 1) / (1 + 2) from frame 6 (missed 5) in the other.
    assert p_detect[1, 7] > 0.9 > 0.7 > p_detect[3, 7]
    assert p_detect[1, 9] == p_detect[1, 8]  # a miss keeps the latest estimate
    after_miss = scene.score(batch)[[1, 3], 9]
    np.testing.assert_array_equal(off.score(batch)[1], off.score(batch)[3])
    assert after_miss[0] < after_miss[1]


def test_adaptive_ipda_tunes_as_ipda_then_weighs_the_scene():
    """Stage one is IPDA's own tuning; the scene's weight is then taken where busy videos
    hold the false tracks."""
    rng = np.random.default_rng(1)
    quiet = [path((20.0, 10.0 * i), range(FRAMES), (1.0, 0.0)) for i in range(1, 7)]
    false = [
        path((90.0, 10.0 * i), sorted(rng.choice(FRAMES, 6, replace=False))) for i in range(1, 7)
    ]
    blips = [path((5.0 + 9 * t, 120.0), range(t, t + 1)) for t in range(6)]
    paths = [*quiet, *false, *[b for _ in range(6) for b in blips]]
    videos = [*range(6), *range(6, 12), *[v for v in range(6, 12) for _ in blips]]
    labels = [1] * 6 + [0] * 6 + [0] * 36
    train = tracks(paths, videos, labels)
    grid = {"p_detect": (0.9, 0.5), "clutter_density": (1e-3, 1e-2), "survival": (0.98,)}
    plain = IPDAExistence(grid=grid)
    scene_grid = {"weight": (0.0, 1.0), "scene_weight": (0.0, 3.0), "p_detect_weight": (0.0,)}
    adaptive = AdaptiveIPDA(grid={**grid, **scene_grid})
    plain.fit(train, train)
    adaptive.fit(train, train)
    assert {k: adaptive.fitted[k] for k in grid} == plain.fitted
    assert adaptive.scene_weight == 3.0
    assert pooled_log_loss(adaptive.score(train), train) < pooled_log_loss(
        plain.score(train), train
    )
    with pytest.raises(ValueError, match="scene_weight"):
        AdaptiveIPDA(scene_weight=-1.0)


def scattered_lives(
    rng: np.random.Generator, n: int, frames: int, longest_brief: int
) -> tuple[np.ndarray, np.ndarray]:
    """(observed, label) of n tracks scattered over ``frames``: 30 % persistent, living 5
    frames or more and seen 90 % of them, the rest brief (1 to ``longest_brief`` frames,
    seen half of them); every track seen at its first frame."""
    observed = np.zeros((n, frames), bool)
    label = (rng.random(n) < 0.3).astype(np.int8)
    for i in range(n):
        start = rng.integers(0, frames - 5)
        life = (
            rng.integers(5, frames - start + 1) if label[i] else rng.integers(1, longest_brief + 1)
        )
        observed[i, start : start + life] = rng.random(life) < (0.9 if label[i] else 0.5)
        observed[i, start] = True
    return observed, label


def test_ipda_tuned_on_lives_alone_as_on_whole_frames():
    """Short tracks scattered over a long sequence: scored on their lives (``LifeBuckets``),
    every frame of every life has the same value, and the grid search picks the same point
    with the same objective."""
    rng = np.random.default_rng(3)
    n, frames = 300, 60
    observed, label = scattered_lives(rng, n, frames, longest_brief=4)
    observed[0] = False  # a track never seen: no life, no value
    loglik = np.where(observed, rng.normal(-6, 2, observed.shape), np.nan)
    batch = track_batch(observed, position=10.0, loglik=loglik, label=label)
    scorer = IPDAExistence()
    lives = LifeBuckets(batch)
    assert len(lives.buckets) > 2
    whole, packed = scorer.score(batch), lives.score(scorer)
    seen = np.logical_or.accumulate(observed, axis=1)
    in_life = seen & np.logical_or.accumulate(observed[:, ::-1], axis=1)[:, ::-1]
    np.testing.assert_array_equal(packed[in_life], whole[in_life])
    assert np.isnan(packed[~in_life]).all()
    grid = {"p_detect": (0.9, 0.5, 0.95), "clutter_density": (1e-4, 1e-3), "survival": (0.98, 0.9)}
    tuned = [IPDAExistence(grid=grid) for _ in range(2)]
    points = [
        grid_search(t, grid, batch, "log_loss", per_track=p)
        for t, p in zip(tuned, (False, True), strict=True)
    ]
    assert points[0] == points[1] and points[0] != {}
    losses = [pooled_log_loss(t.score(batch), batch) for t in tuned]
    assert losses[0] == losses[1]
    # The streaming clutter map too, once its scene features are made on whole videos.
    batch.video[:] = np.arange(n) % 7
    with_scene = with_scene_features(batch)
    maps = [StreamingClutterMap() for _ in range(2)]
    grid = {"p_detect": (0.9, 0.5), "weight": (1.0, 10.0), "scene_weight": (0.0, 3.0)}
    points = [
        grid_search(m, grid, with_scene, "roc_auc", per_track=p)
        for m, p in zip(maps, (False, True), strict=True)
    ]
    assert points[0] == points[1] and points[0] != {}
    np.testing.assert_array_equal(maps[0].score(batch), maps[1].score(batch))
    packed = LifeBuckets(with_scene).score(maps[0])
    np.testing.assert_array_equal(packed[in_life], maps[0].score(with_scene)[in_life])


def test_gradient_boosting_reads_lives_alone_as_whole_frames():
    """Its features made on the tracks' lives (``life_features``) are those of the whole
    batch at every frame of every life, in the same order (so the fit sees the same rows),
    and it scores every life frame as the whole batch's features predict."""
    rng = np.random.default_rng(5)
    n, frames = 200, 80
    observed, label = scattered_lives(rng, n, frames, longest_brief=5)
    position = np.cumsum(rng.normal(0, 1, (n, frames, 2)), axis=1) + 60.0
    loglik = np.where(observed, rng.normal(-6, 2, observed.shape), np.nan)
    batch = track_batch(observed, position, 20.0, 100.0, loglik, label, np.arange(n) % 5)
    seen = np.logical_or.accumulate(observed, axis=1)
    in_life = seen & np.logical_or.accumulate(observed[:, ::-1], axis=1)[:, ::-1]
    track, frame, features = life_features(batch)
    np.testing.assert_array_equal(np.column_stack([track, frame]), np.argwhere(in_life))
    np.testing.assert_array_equal(features, handmade_features(batch)[in_life])
    scorer = GradientBoostingScorer(max_iter=20)
    scorer.fit(batch, batch)
    scores = scorer.score(batch)
    np.testing.assert_array_equal(scores[in_life], scorer.predict(features))
    assert np.isnan(scores[~in_life]).all()


def test_gradient_boosting_learns_a_separable_toy():
    rng = np.random.default_rng(1)
    paths = [path((20.0 + 5 * i, 30.0), range(FRAMES), (1.5, 0.0)) for i in range(20)]
    paths += [path((20.0 + 5 * i, 90.0), range(FRAMES)) for i in range(20)]
    labels = [1] * 20 + [0] * 20
    areas = np.concatenate([rng.uniform(15, 25, 20), rng.uniform(15, 25, 20)])
    train = tracks(paths, list(range(40)), labels, areas)
    scorer = GradientBoostingScorer(max_iter=30)
    with pytest.raises(NotFittedError, match="fit"):
        scorer.score(train)
    scorer.fit(train, train)
    test = tracks(
        [path((40.0, 50.0), range(3, 9), (1.5, 0.0)), path((40.0, 70.0), range(3, 9))],
        [0, 1],
        [1, 0],
    )
    scores = scorer.score(test)
    life = scores[:, 3:9]  # frames 3-8: every score outside lives is NaN
    assert np.isnan(np.delete(scores, np.s_[3:9], axis=1)).all() and np.isfinite(life).all()
    assert np.all((life >= 0) & (life <= 1))
    # From the 2nd observation on the mover is persistent, the static one is not.
    assert np.all(scores[0, 4:9] > 0.5) and np.all(scores[1, 4:9] < 0.5)
    assert scorer.probabilistic


def test_handmade_features_are_causal_and_named():
    batch = tracks([path((10.0, 10.0), [1, 2, 5], (1.0, 0.0))], [0])
    features = handmade_features(batch)
    assert features.shape == (1, FRAMES, len(HANDMADE_FEATURES))
    assert np.isnan(features[0, 0]).all()
    f = dict(zip(HANDMADE_FEATURES, features[0, 5], strict=True))
    assert (f["hits"], f["misses"], f["frames_since_hit"]) == (3, 2, 0)
    assert f["net_displacement"] == pytest.approx(4.0) and f["speed"] == pytest.approx(1.0)
    assert f["loglik_mean"] == pytest.approx(-3.0)
    later = tracks([path((10.0, 10.0), [1, 2, 5, 6, 7], (1.0, 0.0))], [0])
    np.testing.assert_array_equal(handmade_features(later)[0, :6], features[0, :6])


def test_oracle_reads_true_parameters_from_extras_or_falls_back():
    mover = path((30.0, 30.0), range(2, 10), velocity=(1.0, 0.5))
    batch = tracks([mover, mover], [0, 1])
    scene = SceneConfig()
    fallback = OracleTrackScore(scene=scene).score(batch)
    defaults = scene_defaults(scene)
    batch.extras = {key: np.full(2, value) for key, value in defaults.items()}
    np.testing.assert_allclose(OracleTrackScore(scene=scene).score(batch), fallback)
    batch.extras["op_p_detect"] = np.array([0.5, 0.95])
    batch.extras["op_clutter_density"] = np.array([1e-3, 1e-4])
    scores = OracleTrackScore().score(batch)
    birth = math.log(TrackScore().new_target_density)
    assert scores[0, 2] == pytest.approx(math.log(0.5) + birth - math.log(1e-3))
    assert scores[1, 2] == pytest.approx(math.log(0.95) + birth - math.log(1e-4))
    existence = OracleIPDA().score(batch)
    assert existence[1, 9] > existence[0, 9]  # same track: the cleaner world trusts it more
    assert OracleIPDA().probabilistic and not OracleTrackScore().probabilistic


def test_oracle_kalman_reproduces_the_trackers_innovation_likelihood():
    config = TrackerConfig()
    scenes = simulate(SceneConfig(), np.array([3, 3]), np.array([0, 1]), seed=5)
    arrays, _ = extract_and_label(scenes.videos, scenes.masks, scenes.kind, config)
    batch = arrays_to_batch(arrays)
    again = innovation_loglik(
        batch.position, batch.observed, np.full(len(batch), config.process_noise), config
    )
    assert np.isfinite(batch.loglik).sum() > 20
    np.testing.assert_array_equal(np.isfinite(again), np.isfinite(batch.loglik))
    np.testing.assert_allclose(again, batch.loglik, rtol=1e-4, atol=1e-4, equal_nan=True)


def test_contest_factories():
    names = [s.name for s in classical_baselines()]
    assert len(set(names)) == len(names)
    assert set(names) - {s.name for s in default_baselines()} == {"gradient_boosting"}
    assert {"m_of_n_2_3", "m_of_n_2_3+length", "clutter_map", "ipda", "oracle_ipda"} <= set(names)
    probabilistic = {s.name for s in classical_baselines() if s.probabilistic}
    assert probabilistic == {"ipda", "ipda_adaptive", "oracle_ipda", "gradient_boosting"}


def test_oracle_reads_each_frames_truth_and_the_tracks_own_likelihoods_when_imported():
    mover = path((30.0, 30.0), range(2, 10), velocity=(1.0, 0.5))
    batch = tracks([mover, mover], [0, 1])
    frames = batch.frames
    p_detect = np.linspace(0.6, 0.95, frames)[None].repeat(2, axis=0)
    density = np.geomspace(1e-3, 1e-5, frames)[None].repeat(2, axis=0)
    p_detect[1, 5:] = 0.99  # the second track's sensor improves halfway
    batch.extras = {"op_p_detect": p_detect, "op_clutter_density": density}
    batch.frame_size = np.full((2, 2), 1000.0)  # imported: its own innovation likelihoods
    batch.loglik = np.where(batch.observed, -2.0, np.nan).astype(np.float32)
    scores = OracleTrackScore().score(batch)
    expected = log_likelihood_ratio(
        batch.observed,
        batch.loglik,
        p_detect=p_detect,
        log_false_alarm=np.log(density),
        log_new_target=math.log(TrackScore().new_target_density),
        delete_threshold=TrackScore().delete_threshold,
    )
    np.testing.assert_allclose(scores, expected, equal_nan=True)
    assert scores[0, 2] == pytest.approx(
        math.log(p_detect[0, 2])
        + math.log(TrackScore().new_target_density)
        - math.log(density[0, 2])
    )
    existence = OracleIPDA().score(batch)
    again = existence_probability(
        batch.observed, batch.loglik, p_detect, density, 0.98, 0.5, TrackerConfig().gate_probability
    )
    np.testing.assert_allclose(existence, again, equal_nan=True)
    # Equal until the second sensor improves, then it trusts each hit more.
    np.testing.assert_allclose(existence[0, :5], existence[1, :5], equal_nan=True)
    assert existence[1, 9] > existence[0, 9]
