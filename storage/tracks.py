"""Track groups: `tracks/<key>` holds one tracker config's tracks, aligned with the video chunks.

The key is a hash of the tracker config, so tracks from different configs live side by
side and a config always finds its own tracks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from storage.chunked import ArraySpec
from tp_models.perception.labels import QUALITY_COUNTS
from tp_models.tracks.arrays import MAX_TRACKS, empty_track_arrays

TRACKS = "tracks"
QUALITY_PREFIX = "quality_"
# Axes after the video axis, by array (else by rank: slot = a track's place in its video).
TRACK_DIMS = {"position": ("slot", "frame", "xy"), "color": ("slot", "frame", "channel")}
DIMS_BY_RANK = {0: (), 1: ("slot",), 2: ("slot", "frame")}


def tracker_key(tracker_config: Mapping[str, Any]) -> str:
    text = json.dumps(dict(tracker_config), sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


def track_specs(frames: int, capacity: int = MAX_TRACKS) -> dict[str, ArraySpec]:
    """Specs derived from the domain's own padded arrays, so the two can never disagree."""
    specs = {
        name: ArraySpec(
            array.shape[1:],
            str(array.dtype),
            array.reshape(-1)[0].item(),
            dims=TRACK_DIMS.get(name) or DIMS_BY_RANK[array.ndim - 1],
        )
        for name, array in empty_track_arrays(1, capacity, frames).items()
    }
    for name in QUALITY_COUNTS:
        specs[QUALITY_PREFIX + name] = ArraySpec((), "int64", 0)
    return specs


def split_quality(arrays: Mapping[str, np.ndarray]) -> tuple[dict, dict]:
    """Separate the per-video tracking-quality counts from the track arrays."""
    tracks = {k: v for k, v in arrays.items() if not k.startswith(QUALITY_PREFIX)}
    quality = {
        k[len(QUALITY_PREFIX) :]: v for k, v in arrays.items() if k.startswith(QUALITY_PREFIX)
    }
    return tracks, quality


def with_quality(tracks: Mapping[str, np.ndarray], quality: Mapping[str, np.ndarray]) -> dict:
    return {**tracks, **{QUALITY_PREFIX + k: v for k, v in quality.items()}}
