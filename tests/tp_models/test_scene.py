"""Scene simulation: determinism, ground-truth semantics per kind, and that kinds do not leak
their label through appearance."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from tp_models.scene import (
    BRIEF,
    CLUTTER,
    MAX_OBJECTS,
    PERSISTENT,
    VIDEO_TYPES,
    SceneBatch,
    SceneConfig,
    assign_video_types,
    simulate,
)

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
    expected = {
        0: (config.persistent_count, (0, 0), (0, 0)),
        1: ((0, 0), config.brief_count, (0, 0)),
        2: ((0, 0), (0, 0), config.clutter_count),
        3: (config.mixed_persistent_count, config.mixed_brief_count, config.mixed_clutter_count),
    }
    for i, vtype in enumerate(big_batch.video_type):
        kinds = big_batch.kind[i]
        for kind, (lo, hi) in enumerate(expected[int(vtype)]):
            assert lo <= (kinds == kind).sum() <= hi, (i, VIDEO_TYPES[vtype], kinds)
        used = kinds >= 0
        assert np.all(big_batch.shape[i][used] >= 0) and np.all(big_batch.shape[i][~used] == -1)
        assert np.all(np.isfinite(big_batch.radius[i][used]))
        assert np.all(np.isnan(big_batch.radius[i][~used]))
        assert np.all(np.isnan(big_batch.position[i][~used]))
        assert not big_batch.visible[i][~used].any()
    # every range is actually reached, not just respected
    persistent_videos = big_batch.kind[big_batch.video_type == 0]
    assert set((persistent_videos == PERSISTENT).sum(axis=1)) == {1, 2, 3}


def test_visible_implies_existing_and_centre_inside(big_batch: SceneBatch) -> None:
    exists = np.isfinite(big_batch.position[..., 0])
    assert np.array_equal(exists, np.isfinite(big_batch.position[..., 1]))
    assert not (big_batch.visible & ~exists).any()
    pos = big_batch.position[big_batch.visible]
    assert np.all((pos >= -0.5) & (pos < 128 - 0.5))


def test_brief_objects_visible_one_to_three_consecutive_frames(big_batch: SceneBatch) -> None:
    brief = big_batch.kind == BRIEF
    visible = big_batch.visible[brief]
    exists = np.isfinite(big_batch.position[brief][..., 0])
    assert np.array_equal(visible, exists)
    n_visible = visible.sum(axis=1)
    assert n_visible.min() == 1 and n_visible.max() == 3
    first = visible.argmax(axis=1)
    last = visible.shape[1] - 1 - visible[:, ::-1].argmax(axis=1)
    assert np.array_equal(last - first + 1, n_visible)  # consecutive
    # some move, some do not, in about equal share
    multi = n_visible > 1
    moves = np.abs(np.diff(big_batch.position[brief][multi], axis=1))
    moving_share = (np.nanmax(moves, axis=(1, 2)) > 1e-6).mean()
    assert 0.3 < moving_share < 0.7


def test_clutter_is_nearly_fixed_and_flickers(big_batch: SceneBatch) -> None:
    clutter = big_batch.kind == CLUTTER
    pos = big_batch.position[clutter]
    assert np.isfinite(pos).all()  # exists over the whole video
    assert np.nanmax(pos.std(axis=1)) < 1.0
    on = big_batch.visible[clutter].mean()
    assert abs(on - SceneConfig().clutter_on_prob) < 0.05
    assert big_batch.visible[clutter].sum(axis=1).max() >= 12  # long, intermittent tracks


def test_persistent_objects_move_smoothly_and_are_sometimes_missed(big_batch: SceneBatch) -> None:
    config = SceneConfig()
    persistent = big_batch.kind == PERSISTENT
    pos = big_batch.position[persistent].astype(np.float64)
    exists = np.isfinite(pos[..., 0])
    first = exists.argmax(axis=1)
    last = exists.shape[1] - 1 - exists[:, ::-1].argmax(axis=1)
    assert np.array_equal(last - first + 1, exists.sum(axis=1))  # one contiguous stretch
    assert exists.sum(axis=1).min() >= config.frames // 3
    step = np.sqrt((np.diff(pos, axis=1) ** 2).sum(axis=2))
    assert np.nanmax(step) <= config.speed_range[1] + 1e-3
    mean_speed = np.nanmean(step, axis=1)
    assert (mean_speed < 0.5).any() and (mean_speed > 2.0).any()
    # late entries / early exits at roughly the configured rates
    assert 0.15 < (first > 0).mean() < 0.35
    assert 0.15 < (last < config.frames - 1).mean() < 0.35
    missed = exists & ~big_batch.visible[persistent]
    inside = np.all((pos >= -0.5) & (pos < config.size - 0.5), axis=2)
    assert abs(missed[inside].mean() - config.p_miss) < 0.03


def test_late_entries_come_through_the_border(big_batch: SceneBatch) -> None:
    config = SceneConfig()
    persistent = big_batch.kind == PERSISTENT
    pos = big_batch.position[persistent]
    exists = np.isfinite(pos[..., 0])
    first = exists.argmax(axis=1)
    late = first > 0
    start = pos[np.flatnonzero(late), first[late]]
    outside = np.any((start < -0.5) | (start >= config.size - 0.5), axis=1)
    assert outside.all()  # first existing frame: centre just outside, then it comes in
    nearest_border = np.minimum(start, config.size - 1 - start).min(axis=1)
    assert nearest_border.min() >= -0.5 - config.speed_range[1] - 1e-3


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
        ({"speed_range": (0.0, 30.0)}, "speed_range maximum 30.0 px/frame is too fast"),
        ({"p_miss": 1.5}, "p_miss must be a probability in [0, 1] (got 1.5)"),
        ({"clutter_on_prob": -0.1}, "clutter_on_prob must be a probability"),
        ({"brief_count": (1, 20)}, "brief_count allows 20 objects per video"),
        ({"brief_frames": (1, 30)}, "brief_frames maximum 30 must be at most frames (25)"),
        ({"noise_sigma": -1.0}, "noise_sigma must be a finite number >= 0"),
        ({"value_range": (0.1, 1.0)}, "value_range minimum must be at least 0.3"),
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
    config = SceneConfig(frames=9, size=64, p_miss=0.2, radius_range=(2.5, 5.0))
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
    config = SceneConfig(frames=6, size=64, clutter_count=(MAX_OBJECTS, MAX_OBJECTS))
    batch = simulate(config, np.array([2], np.int8), np.array([0]), seed=0)
    assert (batch.kind[0] == CLUTTER).sum() == MAX_OBJECTS
    drawn = np.unique(batch.masks)
    assert drawn.max() <= MAX_OBJECTS and len(drawn) > 1
