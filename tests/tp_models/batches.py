"""The one TrackBatch builder of the tests: a test names only the inputs it is about."""

from __future__ import annotations

from typing import Any

import numpy as np

from tp_models.core.batch import TrackBatch


def track_batch(
    observed: Any,
    position: Any = None,
    area: Any = None,
    color: Any = None,
    loglik: Any = None,
    label: Any = None,
    video: Any = None,
) -> TrackBatch:
    """A batch of B tracks over T frames from `observed` (B, T), truthy where seen.

    Each per-frame input (`position` (B, T, 2), `area` (B, T), `color` (B, T, 3), `loglik`
    (B, T)) is one of: None, NaN everywhere; a number, that value where observed and NaN
    elsewhere (as the tracker writes them); an array, taken as given (broadcast to its shape).
    `label` (default 0: not persistent) and `video` (default 0) are one value or one per track.
    """
    observed = np.asarray(observed, bool)
    b, t = observed.shape
    return TrackBatch(
        position=_per_frame(position, observed, (b, t, 2)),
        observed=observed,
        area=_per_frame(area, observed, (b, t)),
        color=_per_frame(color, observed, (b, t, 3)),
        loglik=_per_frame(loglik, observed, (b, t)),
        label=np.broadcast_to(np.asarray(0 if label is None else label, np.int8), (b,)).copy(),
        video=np.broadcast_to(np.asarray(0 if video is None else video, np.int64), (b,)).copy(),
    )


def _per_frame(value: Any, observed: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if value is None:
        return np.full(shape, np.nan, np.float32)
    if np.ndim(value) == 0:
        seen = observed.reshape(observed.shape + (1,) * (len(shape) - 2))
        return np.broadcast_to(np.where(seen, value, np.nan), shape).astype(np.float32)
    return np.broadcast_to(np.asarray(value, np.float32), shape).copy()
