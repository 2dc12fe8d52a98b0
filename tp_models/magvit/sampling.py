"""Read a video's latents along object tracks: one feature vector per track and frame.

Conventions:

* Positions are pixel coordinates ``(x, y)`` with ``x`` = column and ``y`` = row, and pixel
  ``(r, c)``'s centre at ``(x, y) = (c, r)`` (numpy indexing; the pixel spans
  ``[c - 0.5, c + 0.5)``). ``NaN`` marks an unobserved frame.
* Space: latent cell ``(i, j)`` of a ``(h, w)`` grid covers pixels
  ``[s_y*i, s_y*(i+1)) x [s_x*j, s_x*(j+1))`` with ``s = frame_size / grid_size`` (the
  encoder's downsamplings have kernel == stride), so its centre sits at pixel coordinate
  ``s*j + (s - 1) / 2``. A position maps to the continuous latent coordinate
  ``u = (x + 0.5) / s - 0.5`` and is sampled bilinearly between the four nearest cell
  centres; outside the outermost centres the border cell's value is used.
* Time: frame ``t`` reads latent step ``ceil(t / k)`` (``k`` = temporal downsampling, 4):
  frame 0 -> step 0, frames 1..4 -> step 1, 5..8 -> step 2. That step is the one whose
  frames include ``t``. NOTE: step ``ceil(t/k)`` has also seen frames up to ``k*ceil(t/k)``,
  i.e. up to ``k - 1`` frames after ``t``. For strictly online use (the score after frame
  ``t`` may only use frames ``<= t``) pass ``time_rule="completed"``: step ``floor(t / k)``,
  the latest step whose frames all lie at or before ``t``.
* Unobserved frames carry the last observed position forward (the object is assumed to
  stay where it was last seen); frames before the first observation get zero features.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor
TimeRule = Literal["containing", "completed"]


def latent_step_for_frames(
    num_frames: int, temporal_downsample: int = 4, time_rule: TimeRule = "completed"
) -> np.ndarray:
    """Latent step each frame reads, ``(num_frames,)`` int64 (see module docstring)."""
    t = np.arange(num_frames)
    if time_rule == "containing":
        return -(-t // temporal_downsample)  # ceil division
    if time_rule == "completed":
        return t // temporal_downsample
    raise ValueError(f"time_rule must be 'containing' or 'completed', got {time_rule!r}.")


def forward_fill_positions(positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Carry the last observed position forward along time.

    ``positions``: ``(M, T, 2)`` with NaN rows where unobserved. Returns the filled
    positions (zeros where nothing was observed yet) and a bool mask ``(M, T)`` that is
    True from the first observation on.
    """
    observed = ~torch.isnan(positions).any(dim=-1)
    frame_index = torch.arange(positions.shape[1], device=positions.device).expand_as(observed)
    last_seen = torch.where(observed, frame_index, torch.full_like(frame_index, -1))
    last_seen = torch.cummax(last_seen, dim=1).values
    started = last_seen >= 0
    gathered = torch.gather(
        positions, 1, last_seen.clamp(min=0).unsqueeze(-1).expand(-1, -1, positions.shape[2])
    )
    filled = torch.where(started.unsqueeze(-1), gathered, torch.zeros_like(gathered))
    return filled, started


def _as_size(frame_size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(frame_size, int):
        return frame_size, frame_size
    height, width = frame_size
    return int(height), int(width)


def sample_latents_along_track(
    latents: ArrayLike,
    positions: ArrayLike,
    frame_size: int | tuple[int, int] = 128,
    num_frames: int | None = None,
    temporal_downsample: int = 4,
    time_rule: TimeRule = "completed",
) -> ArrayLike:
    """Sample one video's latents along ``M`` tracks.

    Args:
        latents: ``(T', C, h, w)`` latents of one video (torch or numpy, any float dtype).
        positions: ``(M, T, 2)`` pixel coordinates ``(x=column, y=row)``, NaN = unobserved.
        frame_size: the video's ``H`` (and ``W``), or ``(H, W)``, in pixels.
        num_frames: ``T``; checked against ``positions`` and ``latents`` if given.
        temporal_downsample: frames per latent step after the first (4).
        time_rule: ``"containing"`` (step ``ceil(t/4)``) or ``"completed"`` (``floor(t/4)``,
            strictly causal); see the module docstring.

    Returns:
        ``(M, T, C)`` features, float32, of the same kind (torch/numpy) as ``latents``;
        zeros before each track's first observation.
    """
    as_numpy = isinstance(latents, np.ndarray)
    lat = torch.as_tensor(latents)
    pos = torch.as_tensor(positions, device=lat.device)
    if lat.ndim != 4:
        raise ValueError(f"latents must be (T', C, h, w), got shape {tuple(lat.shape)}.")
    if pos.ndim != 3 or pos.shape[-1] != 2:
        raise ValueError(f"positions must be (M, T, 2), got shape {tuple(pos.shape)}.")
    steps, channels, grid_h, grid_w = lat.shape
    tracks, frames = pos.shape[0], pos.shape[1]
    if num_frames is not None and num_frames != frames:
        raise ValueError(f"positions cover {frames} frames but num_frames={num_frames}.")
    expected_steps = 1 + (frames - 1) // temporal_downsample
    if (frames - 1) % temporal_downsample or steps != expected_steps:
        raise ValueError(
            f"{frames} frames need 1 + (T - 1) / {temporal_downsample} latent steps "
            f"(T = 1 + {temporal_downsample}*n), but latents have {steps} steps."
        )
    height, width = _as_size(frame_size)

    lat = lat.float()
    filled, started = forward_fill_positions(pos.float())

    # Pixel-centre coordinates -> continuous latent-cell coordinates (cell centres at ints).
    u = (filled[..., 0] + 0.5) * (grid_w / width) - 0.5
    v = (filled[..., 1] + 0.5) * (grid_h / height) - 0.5
    u = u.clamp(0, grid_w - 1)
    v = v.clamp(0, grid_h - 1)
    u0 = u.floor().long()
    v0 = v.floor().long()
    u1 = (u0 + 1).clamp(max=grid_w - 1)
    v1 = (v0 + 1).clamp(max=grid_h - 1)
    wu = (u - u0).unsqueeze(-1)
    wv = (v - v0).unsqueeze(-1)

    step = torch.as_tensor(
        latent_step_for_frames(frames, temporal_downsample, time_rule), device=lat.device
    ).expand(tracks, frames)
    table = lat.permute(0, 2, 3, 1)  # (T', h, w, C): one gather yields whole feature vectors

    def corner(vi: torch.Tensor, ui: torch.Tensor) -> torch.Tensor:
        return table[step, vi, ui]  # (M, T, C)

    top = corner(v0, u0) * (1 - wu) + corner(v0, u1) * wu
    bottom = corner(v1, u0) * (1 - wu) + corner(v1, u1) * wu
    features = top * (1 - wv) + bottom * wv
    features = features * started.unsqueeze(-1)
    assert features.shape == (tracks, frames, channels)
    return features.cpu().numpy() if as_numpy else features
