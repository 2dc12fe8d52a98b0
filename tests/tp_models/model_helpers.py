"""Small track data and a small model for the training tests."""

from __future__ import annotations

import numpy as np

from tests.tp_models.batches import track_batch
from tp_models.core.batch import TrackBatch
from tp_models.model import ModelConfig

T = 25
MODEL = ModelConfig(
    d_model=32,
    n_heads=2,
    n_layers=2,
    ff_dim=64,
    feature_dim=32,
    extractor_hidden_dim=32,
    head_hidden_dim=32,
)


def toy_tracks(n: int, seed: int) -> TrackBatch:
    """Persistent tracks move smoothly and are seen most frames; negatives are brief
    (1-3 observations, moving like real ones) or clutter that jitters in place."""
    rng = np.random.default_rng(seed)
    position = np.full((n, T, 2), np.nan, np.float32)
    observed = np.zeros((n, T), bool)
    label = (np.arange(n) % 2).astype(np.int8)
    frames = np.arange(T)
    for i in range(n):
        start = rng.integers(0, 8)
        centre = rng.uniform(30, 98, size=2)
        velocity = rng.uniform(-2, 2, size=2)
        if label[i] == 1:
            seen = (frames >= start) & (frames <= rng.integers(17, T)) & (rng.random(T) < 0.9)
            path = centre + np.outer(frames - start, velocity) + rng.normal(0, 0.3, (T, 2))
        elif i % 4 == 0:
            start = rng.integers(0, T - 3)
            seen = (frames >= start) & (frames < start + rng.integers(1, 4))
            path = centre + np.outer(frames - start, velocity)
        else:
            seen = (frames >= start) & (rng.random(T) < 0.5)
            path = centre + rng.normal(0, 8, (T, 2))
        seen[start] = True
        observed[i] = seen
        position[i, seen] = path[seen]
    return track_batch(observed, position=position, label=label)
