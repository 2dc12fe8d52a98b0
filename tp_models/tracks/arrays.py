"""Fixed-capacity padded track arrays (one row per video), and back to a flat TrackBatch.

The store keeps every per-video table as a padded array chunked by whole videos, so a chunk
of videos can be written by one task. A video holds at most ``capacity`` tracks; if the
tracker produced more, the ones with the most observations are kept (persistent objects make
long tracks, so overflow drops short brief/noise tracks first) and ``n_dropped`` counts the
rest. Kept tracks stay in birth order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tp_models.core.batch import TrackBatch, TrackMeta
from tp_models.perception.detect import detect
from tp_models.perception.labels import (
    KIND_EMPTY,
    NO_OBJECT,
    QUALITY_COUNTS,
    TrackLabels,
    detection_objects,
    label_tracks,
    tracking_counts,
)
from tp_models.perception.tracker import TrackerConfig, VideoTracks, track_detections
from tp_models.world.config import length_units

# Simulated videos of the default length rarely hold more than 16 objects; blinking clutter
# and misses split objects into several tracks, and noise adds short ones. 64 leaves ample
# room (overflow is counted); longer videos get as many per 25 frames (track_capacity).
MAX_TRACKS = 64


def track_capacity(frames: int) -> int:
    """Track slots per video of ``frames`` frames: MAX_TRACKS per default length begun."""
    return MAX_TRACKS * length_units(frames)


@dataclass
class LabelledVideo:
    """Tracks of one video with their ground truth (None when the video has none)."""

    tracks: VideoTracks
    labels: TrackLabels | None = None


def empty_track_arrays(n_videos: int, capacity: int, frames: int) -> dict[str, np.ndarray]:
    """All-padding arrays: NaN for floats, False for masks, -1 for ids, 0 for counts."""
    shape = (n_videos, capacity)
    return {
        "position": np.full(shape + (frames, 2), np.nan, dtype=np.float32),
        "observed": np.zeros(shape + (frames,), dtype=bool),
        "area": np.full(shape + (frames,), np.nan, dtype=np.float32),
        "color": np.full(shape + (frames, 3), np.nan, dtype=np.float32),
        "loglik": np.full(shape + (frames,), np.nan, dtype=np.float32),
        "object": np.full(shape, NO_OBJECT, dtype=np.int16),
        "purity": np.full(shape, np.nan, dtype=np.float32),
        "kind": np.full(shape, KIND_EMPTY, dtype=np.int8),
        "label": np.full(shape, -1, dtype=np.int8),
        "n_tracks": np.zeros(n_videos, dtype=np.int16),
        "n_dropped": np.zeros(n_videos, dtype=np.int16),
    }


def _kept_tracks(tracks: VideoTracks, capacity: int) -> np.ndarray:
    n_obs = tracks.observed.sum(axis=1)
    if n_obs.size <= capacity:
        return np.arange(n_obs.size)
    # Stable sort: among equally long tracks the earlier born wins.
    longest = np.argsort(-n_obs, kind="stable")[:capacity]
    return np.sort(longest)


def tracks_to_arrays(
    results: Sequence[LabelledVideo], capacity: int = MAX_TRACKS, frames: int | None = None
) -> dict[str, np.ndarray]:
    """Pad the tracks of N videos into arrays with first axis = video (see module doc).

    Shapes: position (N,M,T,2) f32, observed (N,M,T) bool, area (N,M,T) f32,
    color (N,M,T,3) f32, loglik (N,M,T) f32, object (N,M) int16, purity (N,M) f32,
    kind (N,M) int8, label (N,M) int8, n_tracks (N,) int16, n_dropped (N,) int16.
    Empty slots: NaN / False / -1. Unlabelled videos keep object -1, kind -1, label -1 and
    purity NaN in their valid slots; valid slots are always ``m < n_tracks``.
    """
    if frames is None:
        if not results:
            raise ValueError("tracks_to_arrays needs `frames` when there are no results")
        frames = results[0].tracks.frames
    arrays = empty_track_arrays(len(results), capacity, frames)
    for v, result in enumerate(results):
        tracks = result.tracks
        if tracks.frames != frames:
            raise ValueError(f"video {v} has {tracks.frames} frames, expected {frames}")
        keep = _kept_tracks(tracks, capacity)
        m = keep.size
        arrays["n_tracks"][v] = m
        arrays["n_dropped"][v] = len(tracks) - m
        arrays["position"][v, :m] = tracks.position[keep]
        arrays["observed"][v, :m] = tracks.observed[keep]
        arrays["area"][v, :m] = tracks.area[keep]
        arrays["color"][v, :m] = tracks.color[keep]
        arrays["loglik"][v, :m] = tracks.loglik[keep]
        if result.labels is not None:
            arrays["object"][v, :m] = result.labels.object[keep]
            arrays["purity"][v, :m] = result.labels.purity[keep]
            arrays["kind"][v, :m] = result.labels.kind[keep]
            arrays["label"][v, :m] = result.labels.label[keep]
    return arrays


def _valid_slots(arrays: dict[str, np.ndarray]) -> np.ndarray:
    n_videos, capacity = arrays["label"].shape
    return np.arange(capacity)[None, :] < arrays["n_tracks"][:, None].astype(np.int64)


def arrays_to_batch(arrays: dict[str, np.ndarray], video_offset: int = 0) -> TrackBatch:
    """Flatten the valid slots (m < n_tracks) of padded arrays into a TrackBatch.

    ``video`` is ``video_offset`` + the row index, i.e. the video's index in the store when
    the arrays are a slice starting at ``video_offset``. Unlabelled tracks get label -1.
    """
    valid = _valid_slots(arrays)
    video_index = np.nonzero(valid)[0]
    return TrackBatch(
        position=arrays["position"][valid],
        observed=arrays["observed"][valid],
        area=arrays["area"][valid],
        color=arrays["color"][valid],
        loglik=arrays["loglik"][valid],
        label=arrays["label"][valid].astype(np.int8),
        video=(video_index + video_offset).astype(np.int64),
    )


def arrays_to_meta(
    arrays: dict[str, np.ndarray],
    video_types: np.ndarray,
    type_names: Sequence[str] | None = None,
) -> TrackMeta:
    """Per-track evaluation meta (same track order as ``arrays_to_batch``).

    video_types: (N,) the type of each video of ``arrays``; integer codes are mapped through
    ``type_names`` when given (e.g. ``world.config.VIDEO_TYPES``), anything else is shown as str.
    """
    valid = _valid_slots(arrays)
    video_index = np.nonzero(valid)[0]
    video_types = np.asarray(video_types)
    if type_names is not None:
        video_types = np.asarray(type_names, dtype=object)[video_types.astype(np.int64)]
    return TrackMeta(
        video_type=np.asarray([str(x) for x in video_types[video_index]], dtype=object),
        kind=arrays["kind"][valid].astype(np.int8),
        n_videos=int(valid.shape[0]),
    )


def label_video(
    tracks: VideoTracks, mask: np.ndarray, kinds: np.ndarray
) -> tuple[TrackLabels, dict[str, int]]:
    """Ground-truth labels and tracking-quality counts of one tracked video."""
    det_objects = detection_objects(tracks.detections, mask)
    labels = label_tracks(tracks, det_objects, kinds)
    counts = tracking_counts(tracks, det_objects, mask, n_objects=int(kinds.shape[0]))
    return labels, counts


def extract_and_label(
    videos: np.ndarray,
    masks: np.ndarray | None,
    kinds: np.ndarray | None,
    config: TrackerConfig,
    capacity: int = MAX_TRACKS,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Detect, track and label a chunk of videos (N, T, H, W, 3) -> (arrays, quality).

    quality maps each of ``QUALITY_COUNTS`` to a per-video (N,) int64 array, so chunks can
    be concatenated or summed and passed to ``labels.summarize_quality``. Without ground
    truth (masks or kinds None) the tracks are unlabelled and quality is empty.
    """
    n_videos, frames = videos.shape[:2]
    labelled = masks is not None and kinds is not None
    quality = (
        {key: np.zeros(n_videos, dtype=np.int64) for key in QUALITY_COUNTS} if labelled else {}
    )
    results = []
    for v in range(n_videos):
        tracks = track_detections(detect(videos[v], config.detector), config)
        labels = None
        if labelled:
            labels, counts = label_video(tracks, masks[v], kinds[v])
            for key, value in counts.items():
                quality[key][v] = value
        results.append(LabelledVideo(tracks, labels))
    return tracks_to_arrays(results, capacity, frames), quality
