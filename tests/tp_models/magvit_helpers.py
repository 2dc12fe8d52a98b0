"""Tiny tokenizer config and synthetic videos shared by the MagVit tests."""

from __future__ import annotations

import numpy as np

from tp_models.magvit import TokenizerConfig

TINY = TokenizerConfig(
    channels=(8, 16, 16),
    decoder_channels=(8, 16, 16),
    latent_dim=32,
    codebook_size=64,
    spatial_downsample=8,
)


def moving_squares(n: int, frames: int, size: int, seed: int = 0) -> np.ndarray:
    """Black videos with one coloured square per video moving linearly."""
    rng = np.random.default_rng(seed)
    videos = np.zeros((n, frames, size, size, 3), np.uint8)
    for i in range(n):
        pos = rng.uniform(4, size - 10, 2)
        vel = rng.uniform(-1.5, 1.5, 2)
        colour = rng.integers(80, 256, 3)
        for t in range(frames):
            x, y = np.clip(pos + t * vel, 0, size - 6).astype(int)
            videos[i, t, y : y + 6, x : x + 6] = colour
    return videos
