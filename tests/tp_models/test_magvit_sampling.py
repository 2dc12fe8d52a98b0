"""Sampling latents along tracks: right cell, right bilinear weights, right causal step."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tp_models.magvit.sampling import (
    forward_fill_positions,
    latent_step_for_frames,
    sample_latents_along_track,
)

STEPS, GRID, FRAME, FRAMES = 7, 16, 128, 25  # 25 frames of 128 px -> 7 steps of 16x16 (s = 8)


def coded_latents() -> torch.Tensor:
    """Channel 0 = 1000*step + 10*row + col, channel 1 = its negative."""
    step = torch.arange(STEPS).view(-1, 1, 1).float()
    row = torch.arange(GRID).view(1, -1, 1).float()
    col = torch.arange(GRID).view(1, 1, -1).float()
    value = 1000 * step + 10 * row + col
    return torch.stack([value, -value], dim=1)  # (T', 2, h, w)


def cell_centre(index: float, s: int = FRAME // GRID) -> float:
    """Pixel coordinate of latent cell ``index``'s centre (pixel centres at integers)."""
    return s * index + (s - 1) / 2


def test_time_step_rule() -> None:
    np.testing.assert_array_equal(
        latent_step_for_frames(13, time_rule="containing"), [0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]
    )
    np.testing.assert_array_equal(
        latent_step_for_frames(9, time_rule="completed"), [0, 0, 0, 0, 1, 1, 1, 1, 2]
    )
    assert all(latent_step_for_frames(25)[t] == t // 4 for t in range(25))  # causal default


# Spatial tests pin the "containing" rule so their expected steps stay simple; the causal
# default ("completed") has its own tests below.


def test_values_at_cell_centres_and_between_them() -> None:
    latents = coded_latents()
    positions = torch.full((3, FRAMES, 2), float("nan"))
    positions[0, :] = torch.tensor([cell_centre(5), cell_centre(2)])  # x = col 5, y = row 2
    positions[1, :] = torch.tensor([cell_centre(5.5), cell_centre(2)])  # halfway to col 6
    positions[2, :] = torch.tensor([cell_centre(3), cell_centre(7.25)])  # a quarter to row 8
    features = sample_latents_along_track(latents, positions, FRAME, FRAMES, time_rule="containing")
    assert features.shape == (3, FRAMES, 2)
    step = torch.tensor([math.ceil(t / 4) for t in range(FRAMES)], dtype=torch.float32)
    torch.testing.assert_close(features[0, :, 0], 1000 * step + 25)
    torch.testing.assert_close(features[1, :, 0], 1000 * step + 25.5)
    torch.testing.assert_close(features[2, :, 0], 1000 * step + 72.5 + 3)
    torch.testing.assert_close(features[..., 1], -features[..., 0])


def test_pixel_inside_a_cell_reads_mostly_that_cell() -> None:
    # Pixel (row 17, col 42) lies in cell (2, 5) for s = 8 (pixels 16..23 x 40..47). In
    # latent coordinates it is (u, v) = (42.5 / 8 - 0.5, 17.5 / 8 - 0.5) = (4.8125, 1.6875):
    # nearer to cell (2, 5)'s centre than to any other.
    latents = coded_latents()[:2]
    features = sample_latents_along_track(latents, torch.tensor([[[42.0, 17.0]] * 5]), FRAME, 5)
    torch.testing.assert_close(features[0, 0, 0], torch.tensor(10 * 1.6875 + 4.8125))


def test_borders_clamp_to_the_edge_cells() -> None:
    latents = coded_latents()
    positions = torch.tensor([[[-3.0, -3.0]], [[200.0, 127.0]]]).expand(2, 5, 2)
    features = sample_latents_along_track(latents[:2], positions, FRAME, 5, time_rule="containing")
    torch.testing.assert_close(features[0, :, 0], torch.tensor([0.0, 1000, 1000, 1000, 1000]))
    torch.testing.assert_close(features[1, 0, 0], torch.tensor(165.0))  # row 15, col 15


def test_unobserved_frames_carry_forward_and_zero_before_first_seen() -> None:
    latents = coded_latents()
    positions = torch.full((1, 9, 2), float("nan"))
    positions[0, 3] = torch.tensor([cell_centre(1), cell_centre(1)])
    positions[0, 4] = torch.tensor([cell_centre(4), cell_centre(0)])
    positions[0, 7] = torch.tensor([cell_centre(9), cell_centre(2)])
    features = sample_latents_along_track(latents[:3], positions, FRAME, 9, time_rule="containing")[
        0, :, 0
    ]
    expected = torch.tensor([0, 0, 0, 1011, 1004, 2004, 2004, 2029, 2029], dtype=torch.float32)
    torch.testing.assert_close(features, expected)
    _, started = forward_fill_positions(positions)
    assert started[0].tolist() == [False] * 3 + [True] * 6


def test_strictly_causal_rule_and_numpy_io() -> None:
    latents = coded_latents()[:3].numpy().astype(np.float16)
    positions = np.tile(np.array([cell_centre(1), cell_centre(0)], np.float32), (2, 9, 1))
    features = sample_latents_along_track(
        latents, positions, (FRAME, FRAME), 9, time_rule="completed"
    )
    assert isinstance(features, np.ndarray) and features.shape == (2, 9, 2)
    np.testing.assert_allclose(features[0, :, 0], [1, 1, 1, 1, 1001, 1001, 1001, 1001, 2001])


def test_step_count_must_match_frames() -> None:
    with pytest.raises(ValueError, match="latent steps"):
        sample_latents_along_track(coded_latents(), torch.zeros(1, 9, 2), FRAME, 9)
    with pytest.raises(ValueError, match="num_frames"):
        sample_latents_along_track(coded_latents(), torch.zeros(1, 25, 2), FRAME, 9)
