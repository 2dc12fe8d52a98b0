"""Online per-frame features of a TrackBatch: what a classical rule can read at frame t.

Every function returns (B, T) arrays whose entry t uses frames <= t of the track only, so
rules and learned baselines built on them are causal by construction. Shared by the count
rules, the motion gate and the gradient-boosting features (one definition of "net
displacement", "hits in the window", ... for all of them).
"""

from __future__ import annotations

import numpy as np


def born(observed: np.ndarray) -> np.ndarray:
    """(B, T) True from the track's first observation on."""
    return np.logical_or.accumulate(observed, axis=1)


def first_frames(observed: np.ndarray) -> np.ndarray:
    """(B, T) True only at each track's first observation."""
    alive = born(observed)
    before = np.zeros_like(alive)
    before[:, 1:] = alive[:, :-1]
    return observed & ~before


def latest_index(observed: np.ndarray) -> np.ndarray:
    """(B, T) frame of the latest observation at or before t; -1 before birth."""
    frames = np.arange(observed.shape[1])
    return np.maximum.accumulate(np.where(observed, frames, -1), axis=1)


def latest(values: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Forward fill: the value at the latest observation at or before t (NaN before birth).

    values: (B, T) or (B, T, C); the result has the same shape, float64.
    """
    index = latest_index(observed)
    safe = np.maximum(index, 0)
    if values.ndim == 3:
        out = np.take_along_axis(values.astype(np.float64), safe[..., None], axis=1)
        return np.where((index >= 0)[..., None], out, np.nan)
    out = np.take_along_axis(values.astype(np.float64), safe, axis=1)
    return np.where(index >= 0, out, np.nan)


def first_value(values: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """(B, ...) value at each track's first observation (NaN for a track never observed)."""
    index = np.argmax(observed, axis=1)
    out = values[np.arange(values.shape[0]), index].astype(np.float64)
    never = ~observed.any(axis=1)
    out[never] = np.nan
    return out


def hits_so_far(observed: np.ndarray) -> np.ndarray:
    """(B, T) observations up to and including t."""
    return np.cumsum(observed, axis=1, dtype=np.float64)


def window_hits(observed: np.ndarray, n: int) -> np.ndarray:
    """(B, T) hits in the window (t - n, t]; frames before birth are never hits anyway."""
    hits = hits_so_far(observed)
    frames = observed.shape[1]
    shifted = np.zeros_like(hits)
    if n < frames:
        shifted[:, n:] = hits[:, : frames - n]
    return hits - shifted


def net_displacement(position: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """(B, T) distance in px from the first observed position to the latest one (NaN before
    birth): the MTI cue, a static object stays near 0 whatever its detection count."""
    start = first_value(position, observed)  # (B, 2)
    now = latest(position, observed)  # (B, T, 2)
    return np.linalg.norm(now - start[:, None, :], axis=2)


def path_length(position: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """(B, T) summed distance between consecutive observations up to t (0 at birth)."""
    now = latest(position, observed)
    previous = np.full_like(now, np.nan)
    previous[:, 1:] = now[:, :-1]
    step = np.linalg.norm(now - previous, axis=2)
    step = np.where(observed & np.isfinite(step), step, 0.0)
    return np.where(born(observed), np.cumsum(step, axis=1), np.nan)
