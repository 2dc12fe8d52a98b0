"""Scene simulation: determinism, operating points, ground-truth semantics per kind, and that
kinds do not leak their label through appearance, start or position."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from scipy import stats

from tp_models.world.config import (
    BRIEF,
    CLUTTER,
    MAX_OBJECTS,
    OPERATING_POINT_DTYPES,
    PERSISTENT,
    VIDEO_TYPES,
    SceneConfig,
)
from tp_models.world.simulate import SceneBatch, assign_video_types, simulate

SMALL = SceneConfig(frames=12, size=64)


@pytest.fixture(scope="module")
def big_batch() -> SceneBatch:
    """400 default-config videos, 100 of each type (ground truth checks need many objects)."""
    types = np.repeat(np.arange(4, dtype=np.int8), 100)
    return simulate(SceneConfig(), types, np.arange(400), seed=7)


def _fields(batch: SceneBatch) -> dict[str, np.ndarray]:
    return dict(vars(batch))


def test_same_seed_gives_identical_bytes() -> None:
    types = np.array([0, 1, 2, 3], np.int8)
    a = simulate(SMALL, types, np.arange(4), seed=3)
    b = simulate(SMALL, types, np.arange(4), seed=3)
    for name, value in _fields(a).items():
        np.testing.assert_array_equal(value, _fields(b)[name], err_msg=name)
    c = simulate(SMALL, types, np.arange(4), seed=4)
    assert not np.array_equal(a.videos, c.videos)


@pytest.mark.parametrize("noise_sigma", [0.0, 6.0])
def test_video_bytes_do_not_depend_on_batching(noise_sigma: float) -> None:
    config = SceneConfig(frames=12, size=64, noise_sigma=noise_sigma)
    alone = simulate(config, np.array([3], np.int8), np.array([41]), seed=11)
    batch = simulate(config, np.array([0, 3, 2], np.int8), np.array([7, 41, 1000]), seed=11)
    for name, value in _fields(alone).items():
        np.testing.assert_array_equal(value[0], _fields(batch)[name][1], err_msg=name)


def test_object_counts_per_video_type(big_batch: SceneBatch) -> None:
    config = SceneConfig()
    persistent_range = {0: config.persistent_count, 3: config.mixed_persistent_count}
    for i, vtype in enumerate(big_batch.video_type):
        kinds = big_batch.kind[i]
        lo, hi = persistent_range.get(int(vtype), (0, 0))
        assert lo <= (kinds == PERSISTENT).sum() <= hi, (i, VIDEO_TYPES[vtype], kinds)
        if vtype == 0:  # background clutter in every type: brief and clutter objects too
            assert (kinds == PERSISTENT).sum() >= 1
        if vtype == 1:
            assert set(kinds[kinds >= 0].tolist()) == {BRIEF}
        if vtype == 2:
            assert set(kinds[kinds >= 0].tolist()) == {CLUTTER}
        used = kinds >= 0
        assert np.all(big_batch.shape[i][used] >= 0) and np.all(big_batch.shape[i][~used] == -1)
        assert np.all(np.isfinite(big_batch.radius[i][used]))
        assert np.all(np.isnan(big_batch.radius[i][~used]))
        assert np.all(np.isnan(big_batch.position[i][~used]))
        assert not big_batch.visible[i][~used].any()
    # every range is actually reached, not just respected
    persistent_videos = big_batch.kind[big_batch.video_type == 0]
    assert set((persistent_videos == PERSISTENT).sum(axis=1)) == {1, 2, 3}
    for real_and_false in (0, 3):  # persistent and mixed videos hold both false kinds
        held = big_batch.kind[big_batch.video_type == real_and_false]
        assert ((held == BRIEF).any(axis=1) & (held == CLUTTER).any(axis=1)).mean() > 0.5


def _visible_false_per_frame(batch: SceneBatch) -> np.ndarray:
    false = (batch.kind == BRIEF) | (batch.kind == CLUTTER)
    return (batch.visible & false[..., None]).sum(axis=(1, 2)) / batch.visible.shape[2]


def test_clutter_density_is_the_false_objects_seen_per_pixel_and_frame(
    big_batch: SceneBatch,
) -> None:
    """The oracle reads op_clutter_density as beta_FA: it must match what the video shows."""
    size = big_batch.masks.shape[-1]
    seen = _visible_false_per_frame(big_batch) / size**2
    density = big_batch.op_clutter_density.astype(np.float64)
    assert np.all(density > 0)  # every video type holds false objects
    # noise videos are left out: they hold at least one clutter object, so at the lowest
    # densities they show more than asked for (documented in SceneConfig)
    here = big_batch.video_type != VIDEO_TYPES.index("noise")
    ratio = seen[here].sum() / density[here].sum()
    assert 0.85 < ratio < 1.15, ratio
    # denser videos really show more false objects
    assert stats.spearmanr(density, seen).statistic > 0.6


def test_operating_points_lie_in_their_ranges_and_follow_the_seed(big_batch: SceneBatch) -> None:
    config = SceneConfig()
    for name, field in (
        ("op_p_detect", "p_detect_range"),
        ("op_motion_noise", "motion_noise_range"),
        ("op_clutter_drift", "clutter_drift_range"),
        ("op_brief_motion", "brief_motion_range"),
        ("op_speed_max", "speed_max_range"),
        ("op_position_noise", "position_noise_range"),
        ("op_brief_max_frames", "brief_frames"),
    ):
        lo, hi = getattr(config, field)
        values = getattr(big_batch, name).astype(np.float64)
        assert values.dtype.kind == "f" and np.all((values >= lo) & (values <= hi)), name
        assert values.max() - values.min() > 0.8 * (hi - lo), name  # the range is explored
    lo, hi = config.clutter_density_range
    density = big_batch.op_clutter_density
    assert np.all((density >= lo * (1 - 1e-6)) & (density <= hi * (1 + 1e-6)))
    assert np.all(big_batch.op_noise_sigma == 0)
    held = [
        config.in_heldout_region(p, d)
        for p, d in zip(big_batch.op_p_detect, big_batch.op_clutter_density, strict=True)
    ]
    assert np.array_equal(big_batch.op_heldout, held) and 0.03 < np.mean(held) < 0.15
    # the sensor misses every kind at the video's own P_D
    detected = big_batch.visible.sum() - 0
    exists = np.isfinite(big_batch.position[..., 0])
    not_clutter = (big_batch.kind != CLUTTER)[..., None] & exists
    p_d = np.broadcast_to(big_batch.op_p_detect[:, None, None], exists.shape)
    assert abs(big_batch.visible[not_clutter].mean() - p_d[not_clutter].mean()) < 0.02
    assert detected > 0
    again = simulate(config, big_batch.video_type[:8], np.arange(8), seed=7)
    other = simulate(config, big_batch.video_type[:8], np.arange(8), seed=8)
    for name in OPERATING_POINT_DTYPES:
        np.testing.assert_array_equal(getattr(again, name), getattr(big_batch, name)[:8])
    assert not np.array_equal(other.op_p_detect, again.op_p_detect)


def test_noise_goes_to_the_configured_share_of_videos() -> None:
    config = SceneConfig(frames=6, size=64, noise_sigma=4.0, noisy_video_share=0.25)
    batch = simulate(config, np.zeros(80, np.int8), np.arange(80), seed=2)
    noisy = batch.op_noise_sigma > 0
    assert set(np.unique(batch.op_noise_sigma).tolist()) == {0.0, 4.0}
    assert 0.1 < noisy.mean() < 0.4
    background = batch.masks == 0
    assert not batch.videos[~noisy][background[~noisy]].any()
    assert batch.videos[noisy][background[noisy]].any()


def test_visible_implies_existing_and_centre_inside(big_batch: SceneBatch) -> None:
    exists = np.isfinite(big_batch.position[..., 0])
    assert np.array_equal(exists, np.isfinite(big_batch.position[..., 1]))
    assert not (big_batch.visible & ~exists).any()
    pos = big_batch.position[exists]
    assert np.all((pos >= 0) & (pos <= 128 - 1))


def _existence(batch: SceneBatch, kind: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    exists = np.isfinite(batch.position[batch.kind == kind][..., 0])
    first = exists.argmax(axis=1)
    last = exists.shape[1] - 1 - exists[:, ::-1].argmax(axis=1)
    assert np.array_equal(last - first + 1, exists.sum(axis=1))  # one contiguous stretch
    return exists, first, last


def test_every_kind_starts_by_the_same_law(big_batch: SceneBatch) -> None:
    """Steady-state start: the share present at frame 0 is p_present_at_start for every kind,
    and later appearances are spread over the video alike."""
    config = SceneConfig()
    for kind in (PERSISTENT, BRIEF, CLUTTER):
        _, first, _ = _existence(big_batch, kind)
        assert abs((first == 0).mean() - config.p_present_at_start) < 0.06, kind
        later = first[first > 0]
        assert stats.kstest(later, stats.randint(1, config.frames).cdf).pvalue > 1e-3, kind


def test_objects_present_at_the_start_are_in_mid_life(big_batch: SceneBatch) -> None:
    """Burn-in: a brief object there at frame 0 has often only part of its life left, and a
    persistent one may vanish inside the video."""
    _, first, last = _existence(big_batch, BRIEF)
    lengths = last - first + 1
    brief_max = np.broadcast_to(big_batch.op_brief_max_frames[:, None], big_batch.kind.shape)
    brief_max = brief_max[big_batch.kind == BRIEF]
    assert np.all(lengths <= brief_max)
    at_start = first == 0
    assert lengths[at_start].mean() < lengths[~at_start & (last < 20)].mean() - 0.3
    _, first, last = _existence(big_batch, PERSISTENT)
    assert 0.05 < (last[first == 0] < SceneConfig().frames - 1).mean() < 0.5


def test_brief_objects_move_from_static_to_like_real_ones(big_batch: SceneBatch) -> None:
    brief = big_batch.kind == BRIEF
    motion = np.broadcast_to(big_batch.op_brief_motion[:, None], brief.shape)[brief]
    pos = big_batch.position[brief].astype(np.float64)
    net = np.nanmax(pos, axis=1) - np.nanmin(pos, axis=1)
    long = np.isfinite(pos[..., 0]).sum(axis=1) >= 4
    net = np.hypot(*net[long].T)
    assert stats.spearmanr(motion[long], net).statistic > 0.3


def test_clutter_flickers_and_drifts_slowly(big_batch: SceneBatch) -> None:
    config = SceneConfig()
    clutter = big_batch.kind == CLUTTER
    exists = np.isfinite(big_batch.position[clutter][..., 0])
    on = big_batch.visible[clutter][exists].mean()
    p_d = np.broadcast_to(big_batch.op_p_detect[:, None, None], big_batch.visible.shape)
    assert abs(on - config.clutter_on_prob * p_d[clutter][exists].mean()) < 0.04
    steps = np.diff(big_batch.position[clutter].astype(np.float64), axis=1)
    drift = np.broadcast_to(big_batch.op_clutter_drift[:, None], clutter.shape)[clutter]
    noise = np.broadcast_to(big_batch.op_position_noise[:, None], clutter.shape)[clutter]
    long = np.isfinite(steps[..., 0]).sum(axis=1) >= 20
    mean_step = np.nanmean(steps[long], axis=1)  # the noise averages out, the drift does not
    assert np.max(np.hypot(*mean_step.T) - drift[long]) < 0.15
    assert stats.spearmanr(np.hypot(*mean_step.T), drift[long]).statistic > 0.5
    # a step's noise is the difference of two frames' position noise: sqrt(2) * its std
    step_noise = np.nanstd(steps[long], axis=1).mean(axis=1) / noise[long]
    assert 1.2 < np.median(step_noise) < 1.6


def test_persistent_objects_move_smoothly_within_the_top_speed(big_batch: SceneBatch) -> None:
    persistent = big_batch.kind == PERSISTENT
    pos = big_batch.position[persistent].astype(np.float64)
    step = np.sqrt((np.diff(pos, axis=1) ** 2).sum(axis=2))
    top = np.broadcast_to(big_batch.op_speed_max[:, None], persistent.shape)[persistent]
    noise = np.broadcast_to(big_batch.op_position_noise[:, None], persistent.shape)[persistent]
    moved = np.isfinite(step).any(axis=1)  # objects seen in two or more frames
    assert np.all(np.nanmax(step[moved], axis=1) <= (top + 6 * noise + 1e-3)[moved])
    mean_speed = np.nanmean(step[moved], axis=1)
    assert (mean_speed < 0.7).any() and (mean_speed > 2.0).any()


def test_every_kind_reaches_the_border_and_never_sits_exactly_still(big_batch: SceneBatch) -> None:
    for kind in (PERSISTENT, BRIEF, CLUTTER):
        pos = big_batch.position[big_batch.kind == kind].astype(np.float64)
        start = pos[np.arange(len(pos)), np.isfinite(pos[..., 0]).argmax(axis=1)]
        near = np.minimum(start, 127 - start).min(axis=1) < 3.0
        assert 0.03 < near.mean() < 0.15, kind
        steps = np.abs(np.diff(pos, axis=1))
        assert not (steps[np.isfinite(steps)] == 0).any(), kind


def test_kinds_share_shape_size_and_colour_distributions(big_batch: SceneBatch) -> None:
    kinds = big_batch.kind
    radius = {k: big_batch.radius[kinds == k] for k in (PERSISTENT, BRIEF, CLUTTER)}
    brightness = {k: big_batch.color[kinds == k].max(axis=1) for k in radius}
    for other in (BRIEF, CLUTTER):
        assert stats.ks_2samp(radius[PERSISTENT], radius[other]).pvalue > 1e-3
        assert stats.ks_2samp(brightness[PERSISTENT], brightness[other]).pvalue > 1e-3
        shape_table = np.array(
            [np.bincount(big_batch.shape[kinds == k], minlength=3) for k in (PERSISTENT, other)]
        )
        assert stats.chi2_contingency(shape_table).pvalue > 1e-3
    config = SceneConfig()
    all_radii = big_batch.radius[kinds >= 0]
    assert config.radius_range[0] <= all_radii.min() and all_radii.max() <= config.radius_range[1]
    assert big_batch.color[kinds >= 0].max(axis=1).min() >= 0.75 * 255 - 1


def test_slot_order_carries_no_kind_information(big_batch: SceneBatch) -> None:
    mixed = big_batch.kind[big_batch.video_type == 3]
    assert len(set(mixed[:, 0].tolist()) - {-1}) == 3


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"frames": 1}, "frames must be at least 2 (got 1)"),
        ({"size": 16}, "size must be at least 32 (got 16)"),
        ({"size": 40}, "size 40 is too small for radius_range"),
        ({"radius_range": (5.0, 3.0)}, "radius_range minimum must not exceed its maximum"),
        ({"speed_max_range": (0.0, 30.0)}, "speed_max_range maximum 30.0 px/frame is too fast"),
        ({"p_detect_range": (0.9, 0.7)}, "p_detect_range minimum must not exceed its maximum"),
        ({"p_detect_range": ()}, "p_detect_range must be a (min, max) pair"),
        ({"p_detect_range": (0.5, 1.2)}, "p_detect_range must lie within [0, 1]"),
        ({"p_detect_range": (0.0, 0.9)}, "p_detect_range minimum must be above 0"),
        ({"brief_motion_range": (-0.1, 1.0)}, "brief_motion_range must lie within [0, 1]"),
        ({"clutter_density_range": (4e-5, 1e-5)}, "clutter_density_range minimum must not"),
        ({"clutter_density_range": (-1e-5, 1e-5)}, "clutter_density_range minimum must be >= 0"),
        ({"motion_noise_range": (0.1, float("nan"))}, "motion_noise_range must be finite"),
        ({"p_present_at_start": 1.5}, "p_present_at_start must be a probability in [0, 1]"),
        ({"noisy_video_share": -0.1}, "noisy_video_share must be a probability in [0, 1]"),
        ({"clutter_on_prob": 0.0}, "clutter_on_prob must be a probability in (0, 1]"),
        ({"persistent_count": (1, 40)}, "persistent_count allows 40 objects per video"),
        ({"brief_frames": (1, 30)}, "brief_frames maximum 30 must be below persistent_frames"),
        ({"clutter_frames": (0, 10)}, "clutter_frames must be whole numbers >= 1"),
        ({"noise_sigma": -1.0}, "noise_sigma must be a finite number >= 0"),
        ({"value_range": (0.1, 1.0)}, "value_range minimum must be at least 0.3"),
        ({"heldout_p_detect_below": 0.75}, "heldout_p_detect_below 0.75 holds out no video"),
        ({"heldout_clutter_density_above": 6e-5}, "heldout_clutter_density_above 6e-05 holds"),
        (
            {"heldout_p_detect_below": 1.0, "heldout_clutter_density_above": 1e-6},
            "holds out every video with false objects",
        ),
    ],
)
def test_validate_names_the_parameter(changes: dict, message: str) -> None:
    config = SceneConfig(**changes)
    with pytest.raises(ValueError) as err:
        config.validate()
    assert message in str(err.value)
    with pytest.raises(ValueError):
        simulate(config, np.array([0], np.int8), np.array([0]), seed=0)


def test_config_round_trips_through_json() -> None:
    config = SceneConfig(frames=9, size=64, p_detect_range=(0.6, 0.9), radius_range=(2.5, 5.0))
    config.validate()
    back = SceneConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert back == config
    with pytest.raises(ValueError, match="unknown SceneConfig field"):
        SceneConfig.from_dict({"frame": 3})


def test_assign_video_types_counts_determinism_and_mix() -> None:
    counts = (1000, 1000, 250, 250)
    types = assign_video_types(counts, seed=5)
    assert types.dtype == np.int8
    assert np.bincount(types, minlength=4).tolist() == list(counts)
    assert np.array_equal(types, assign_video_types(counts, seed=5))
    assert not np.array_equal(types, assign_video_types(counts, seed=6))
    for chunk in types.reshape(-1, 50):  # every chunk holds every type in about its share
        per_type = np.bincount(chunk, minlength=4)
        assert per_type[0] >= 17 and per_type[1] >= 17
        assert per_type[2] >= 3 and per_type[3] >= 3
    assert assign_video_types((0, 3, 0, 0), seed=1).tolist() == [1, 1, 1]


def test_max_objects_capacity_is_respected() -> None:
    config = SceneConfig(
        frames=6,
        size=64,
        clutter_density_range=(5e-3, 5e-3),
        heldout_clutter_density_above=4e-3,
    )
    batch = simulate(config, np.array([1], np.int8), np.array([0]), seed=0)
    assert (batch.kind[0] == BRIEF).sum() == MAX_OBJECTS
    drawn = np.unique(batch.masks)
    assert drawn.max() <= MAX_OBJECTS and len(drawn) > 1


# --- Long streams: capacities that grow with a video's length, a drifting operating point.

LONG = SceneConfig(frames=300, size=64, persistent_count=(3, 10), mixed_persistent_count=(3, 6))
DRIFTING = dataclasses.replace(LONG, operating_point_drift=0.05)


def test_a_long_video_gets_object_slots_for_its_length() -> None:
    """At 300 frames the 32 slots of a 25-frame video would cap the false objects far below
    the configured density; the video gets 32 per 25 frames, and ids past 255 need uint16."""
    config = SceneConfig(
        frames=300,
        size=64,
        clutter_density_range=(2e-3, 2e-3),
        heldout_clutter_density_above=1e-3,
    )
    assert (config.max_objects, config.mask_dtype) == (12 * MAX_OBJECTS, "uint16")
    assert (SceneConfig().max_objects, SceneConfig().mask_dtype) == (MAX_OBJECTS, "uint8")
    batch = simulate(config, np.array([1], np.int8), np.array([0]), seed=0)
    n_brief = int((batch.kind[0] == BRIEF).sum())
    assert n_brief == config.max_objects  # the top density fills them all
    assert batch.masks.dtype == np.uint16 and batch.masks.max() > 255
    drawn = np.unique(batch.masks)[1:] - 1  # every id drawn names a filled slot
    assert np.all(batch.kind[0, drawn] == BRIEF)


def test_a_drifting_operating_point_walks_inside_its_ranges_from_the_drawn_point() -> None:
    types = assign_video_types((4, 4, 2, 2), seed=1)
    still = simulate(LONG, types, np.arange(12), seed=1)
    drifting = simulate(DRIFTING, types, np.arange(12), seed=1)
    assert still.op_p_detect.shape == (12,)
    for name, (lo, hi) in (
        ("op_p_detect", LONG.p_detect_range),
        ("op_clutter_density", LONG.clutter_density_range),
    ):
        walk = getattr(drifting, name)
        assert walk.shape == (12, 300) and walk.dtype == np.float32
        np.testing.assert_array_equal(walk[:, 0], getattr(still, name))  # starts at the draw
        assert np.all((walk >= np.float32(lo)) & (walk <= np.float32(hi)))
        log_steps = np.abs(np.diff(np.log(walk), axis=1))
        assert 0 < np.median(log_steps) < 0.05  # slow: one small step a frame
        assert np.all(walk.max(axis=1) / walk.min(axis=1) > 1.05)  # and it does wander
    for name in ("op_motion_noise", "op_speed_max", "op_heldout", "video_type"):
        np.testing.assert_array_equal(getattr(drifting, name), getattr(still, name))


def test_a_drifting_scene_is_seen_with_its_p_detect_and_cluttered_with_its_density() -> None:
    types = assign_video_types((30, 30, 0, 0), seed=2)
    batch = simulate(DRIFTING, types, np.arange(60), seed=2)
    exists = np.isfinite(batch.position[..., 0])
    p_detect = np.broadcast_to(batch.op_p_detect[:, None, :], exists.shape)
    persistent = exists & (batch.kind == PERSISTENT)[..., None]
    drawn = np.broadcast_to(batch.op_p_detect[:, None, :1], exists.shape)
    low = p_detect < drawn  # frames where the walk took P_D below the video's drawn point
    rates = [batch.visible[persistent & side].mean() for side in (low, ~low)]
    expected = [p_detect[persistent & side].mean() for side in (low, ~low)]
    np.testing.assert_allclose(rates, expected, atol=0.01)  # each frame at its own P_D
    # A P_D constant over each video would see these frames at the drawn points instead.
    drawn_means = [drawn[persistent & side].mean() for side in (low, ~low)]
    assert np.all(np.abs(np.subtract(drawn_means, expected)) > 0.02)
    # False objects in view match the density over the videos, and are born where it is: the
    # brief ones (which live a few frames, where clutter lasts 15-100) follow it frame by frame.
    density = batch.op_clutter_density
    false_seen = (batch.visible & (batch.kind != PERSISTENT)[..., None]).sum(axis=1)
    assert false_seen.sum() == pytest.approx(density.sum() * DRIFTING.size**2, rel=0.1)
    brief_seen = (batch.visible & (batch.kind == BRIEF)[..., None]).sum(axis=1)
    dense = density > np.median(density, axis=1)[:, None]
    density_ratio = density[dense].mean() / density[~dense].mean()
    assert density_ratio > 1.3
    assert brief_seen[dense].mean() / brief_seen[~dense].mean() > 0.9 * density_ratio


def test_operating_point_drift_is_checked_and_written_only_when_set() -> None:
    assert "operating_point_drift" not in SceneConfig().to_dict()  # earlier stores' config
    assert SceneConfig.from_dict(DRIFTING.to_dict()) == DRIFTING
    for bad in ({"operating_point_drift": -0.1}, {"operating_point_drift": float("nan")}):
        with pytest.raises(ValueError, match="operating_point_drift"):
            SceneConfig(**bad).validate()
    with pytest.raises(ValueError, match="p_detect_range maximum below 1"):
        SceneConfig(operating_point_drift=0.05, p_detect_range=(0.8, 1.0)).validate()
