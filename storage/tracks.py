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

from storage.chunked import ArraySpec, ChunkedGroup
from storage.dataset import open_dataset
from storage.errors import StoreError
from tp_models.labels import QUALITY_COUNTS
from tp_models.track_arrays import MAX_TRACKS, empty_track_arrays

TRACKS = "tracks"
QUALITY_PREFIX = "quality_"


def tracker_key(tracker_config: Mapping[str, Any]) -> str:
    text = json.dumps(dict(tracker_config), sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


def tracks_path(tracker_config: Mapping[str, Any]) -> str:
    return f"{TRACKS}/{tracker_key(tracker_config)}"


def track_specs(frames: int, capacity: int = MAX_TRACKS) -> dict[str, ArraySpec]:
    """Specs derived from the domain's own padded arrays, so the two can never disagree."""
    specs = {
        name: ArraySpec(array.shape[1:], str(array.dtype), array.reshape(-1)[0].item())
        for name, array in empty_track_arrays(1, capacity, frames).items()
    }
    for name in QUALITY_COUNTS:
        specs[QUALITY_PREFIX + name] = ArraySpec((), "int64", 0)
    return specs


def open_or_create_tracks(
    store: str, dataset: ChunkedGroup, tracker_config: Mapping[str, Any], overwrite: bool = False
) -> ChunkedGroup:
    if not dataset.group.attrs.get("complete"):
        raise StoreError(
            f"store {store!r} is not complete (generation was interrupted); resume it with "
            "`tp generate` and the same parameters before extracting tracks."
        )
    config = {
        "tracker": dict(tracker_config),
        "capacity": MAX_TRACKS,
        "dataset_fingerprint": dataset.group.attrs.get("fingerprint"),
    }
    frames = dataset.group["videos"].shape[1]
    return ChunkedGroup.open_or_create(
        store,
        tracks_path(tracker_config),
        kind=TRACKS,
        config=config,
        n_items=dataset.n_items,
        items_per_chunk=dataset.items_per_chunk,
        specs=track_specs(frames),
        overwrite=overwrite,
    )


def open_tracks(
    store: str, tracker_config: Mapping[str, Any], complete: bool = True
) -> ChunkedGroup:
    """The tracks of this tracker config; by default only once every chunk is done."""
    path = tracks_path(tracker_config)
    open_dataset(store)  # a missing dataset is the first thing to say
    group = ChunkedGroup.find(store, path, TRACKS)
    if group is None or (complete and not group.group.attrs.get("complete")):
        raise StoreError(
            f"store {store!r} has no complete tracks for this tracker config ({path}); "
            f"run `tp tracks {store}` first."
        )
    return group


def split_quality(arrays: Mapping[str, np.ndarray]) -> tuple[dict, dict]:
    """Separate the per-video tracking-quality counts from the track arrays."""
    tracks = {k: v for k, v in arrays.items() if not k.startswith(QUALITY_PREFIX)}
    quality = {
        k[len(QUALITY_PREFIX) :]: v for k, v in arrays.items() if k.startswith(QUALITY_PREFIX)
    }
    return tracks, quality


def with_quality(tracks: Mapping[str, np.ndarray], quality: Mapping[str, np.ndarray]) -> dict:
    return {**tracks, **{QUALITY_PREFIX + k: v for k, v in quality.items()}}
