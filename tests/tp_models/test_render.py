"""Rendering: pixels and mask agree with the ground truth, overlaps resolve to the topmost
object, and sensor noise is reproducible."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tp_models.world.config import SceneConfig
from tp_models.world.render import SHAPE_EXTENT, render, render_video
from tp_models.world.simulate import SceneBatch, simulate


@pytest.fixture(scope="module")
def batch() -> SceneBatch:
    types = np.tile(np.arange(4, dtype=np.int8), 15)
    return simulate(SceneConfig(frames=15), types, np.arange(60), seed=21)


def _one_object(shape: int, radius: float, x: float, y: float, frames: int = 3):
    position = np.full((1, frames, 2), np.nan, np.float32)
    position[0, :] = (x, y)
    return (
        np.array([shape], np.int8),
        np.array([radius], np.float32),
        np.array([[200, 40, 10]], np.uint8),
        position,
        np.ones((1, frames), bool),
    )


def test_pixels_are_non_zero_exactly_where_the_mask_is(batch: SceneBatch) -> None:
    lit = batch.videos.any(axis=-1)
    assert np.array_equal(lit, batch.masks > 0)
    assert lit.mean() < 0.05  # mostly black background: the store compresses


def test_mask_pixels_carry_the_object_colour_and_lie_near_its_position(batch: SceneBatch) -> None:
    rows, cols = np.mgrid[0 : batch.masks.shape[2], 0 : batch.masks.shape[3]]
    checked = 0
    for b in range(len(batch)):
        for k in np.flatnonzero(batch.kind[b] >= 0):
            reach = batch.radius[b, k] * SHAPE_EXTENT[batch.shape[b, k]] + 1.0
            for t in range(batch.masks.shape[1]):
                here = batch.masks[b, t] == k + 1
                if not batch.visible[b, k, t]:
                    assert not here.any(), (b, k, t)
                    continue
                x, y = batch.position[b, k, t]
                dist = np.hypot(cols[here] - x, rows[here] - y)
                assert dist.size == 0 or dist.max() <= reach
                assert np.all(batch.videos[b, t][here] == batch.color[b, k])
                checked += 1
    assert checked > 500


def test_every_visible_object_is_drawn(batch: SceneBatch) -> None:
    """Each visible object covers pixels when drawn alone (overlap may hide it in the video)."""
    hidden = 0
    for b in range(len(batch)):
        for k in np.flatnonzero(batch.kind[b] >= 0):
            sl = slice(k, k + 1)
            _, mask = render(
                batch.shape[b, sl],
                batch.radius[b, sl],
                batch.color[b, sl],
                batch.position[b, sl],
                batch.visible[b, sl],
                size=batch.masks.shape[-1],
            )
            drawn = mask.any(axis=(1, 2))
            assert np.array_equal(drawn, batch.visible[b, k]), (b, k)
            hidden += int(((batch.masks[b] == k + 1).any(axis=(1, 2)) != drawn).sum())
    n_visible = int(batch.visible.sum())
    assert hidden <= 0.05 * n_visible  # objects are mostly not overlapping


@pytest.mark.parametrize("shape", [0, 1, 2])
@pytest.mark.parametrize("radius", [3.0, 5.5, 7.0])
def test_shapes_have_the_area_of_their_circle(shape: int, radius: float) -> None:
    video, mask = render(*_one_object(shape, radius, 30.3, 31.7), size=64)
    area = (mask[0] == 1).sum()
    assert abs(area - math.pi * radius**2) <= 0.2 * math.pi * radius**2
    rows, cols = np.nonzero(mask[0])
    assert abs(cols.mean() - 30.3) < 0.6 and abs(rows.mean() - 31.7) < 0.6
    assert np.all(video[0][mask[0] == 1] == (200, 40, 10))


def test_topmost_object_wins_where_objects_overlap() -> None:
    shape = np.array([0, 1], np.int8)
    radius = np.array([6.0, 6.0], np.float32)
    color = np.array([[255, 0, 0], [0, 0, 255]], np.uint8)
    position = np.array([[[20.0, 20.0]], [[25.0, 20.0]]], np.float32)
    video, mask = render(shape, radius, color, position, np.ones((2, 1), bool), size=48)
    alone0 = render(shape[:1], radius[:1], color[:1], position[:1], np.ones((1, 1), bool), 48)[1]
    alone1 = render(shape[1:], radius[1:], color[1:], position[1:], np.ones((1, 1), bool), 48)[1]
    overlap = (alone0[0] > 0) & (alone1[0] > 0)
    assert overlap.sum() > 10
    assert np.all(mask[0][overlap] == 2)
    assert np.all(video[0][overlap] == (0, 0, 255))
    assert np.all(mask[0][(alone0[0] > 0) & ~overlap] == 1)


def test_objects_across_the_border_are_clipped() -> None:
    video, mask = render(*_one_object(0, 6.0, 0.2, 63.4), size=64)
    area = (mask[0] == 1).sum()
    assert 0 < area < 0.5 * math.pi * 36
    assert mask[0, 63, 0] == 1


def test_render_video_skips_empty_slots_and_invisible_frames() -> None:
    shape, radius, color, position, visible = _one_object(2, 4.0, 16.0, 16.0, frames=4)
    visible[0, 1] = False
    shape = np.concatenate([np.array([-1], np.int8), shape])
    radius = np.concatenate([np.array([np.nan], np.float32), radius])
    color = np.concatenate([np.zeros((1, 3), np.uint8), color])
    position = np.concatenate([np.full((1, 4, 2), np.nan, np.float32), position])
    visible = np.concatenate([np.zeros((1, 4), bool), visible])
    video = np.zeros((4, 32, 32, 3), np.uint8)
    mask = np.zeros((4, 32, 32), np.uint8)
    render_video(video, mask, shape, radius, color, position, visible)
    assert mask.any(axis=(1, 2)).tolist() == [True, False, True, True]
    assert set(np.unique(mask).tolist()) == {0, 2}


def test_sensor_noise_is_reproducible_and_has_the_configured_size() -> None:
    config = SceneConfig(frames=6, size=64, noise_sigma=8.0)
    a = simulate(config, np.array([2], np.int8), np.array([3]), seed=1)
    b = simulate(config, np.array([2], np.int8), np.array([3]), seed=1)
    assert np.array_equal(a.videos, b.videos)
    background = a.videos[a.masks == 0].astype(np.float64)
    # clipping at 0 keeps only the positive half of the noise: mean sigma / sqrt(2 pi)
    assert abs(background.mean() - 8.0 / math.sqrt(2 * math.pi)) < 0.3
    clean = simulate(SceneConfig(frames=6, size=64), np.array([2], np.int8), np.array([3]), 1)
    assert np.array_equal(clean.masks, a.masks)  # noise does not change the ground truth
    objects = a.masks > 0
    diff = a.videos[objects].astype(int) - clean.videos[objects].astype(int)
    assert 5.0 < diff.std() < 10.0
