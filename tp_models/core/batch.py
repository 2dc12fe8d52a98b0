"""The track batch every scorer reads, and what evaluation knows beyond it.

``TrackBatch`` holds B tracks over the T frames of their videos; ``TrackMeta`` holds what
only evaluation may see (video type, object kind, bins), never shown to a scorer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class TrackBatch:
    """A batch of B tracks over the T frames of their videos (frame-aligned, not start-aligned).

    position  (B, T, 2) float32  detection centroid (x = column, y = row); NaN where unobserved
    observed  (B, T)    bool     a detection was assigned to the track in that frame
    area      (B, T)    float32  detection area in pixels; NaN where unobserved
    color     (B, T, 3) float32  mean RGB (0..255) of the detection; NaN where unobserved
    loglik    (B, T)    float32  Kalman innovation log-likelihood of the update; NaN where none
    label     (B,)      int8     1 persistent, 0 brief or clutter, -1 unknown
    video     (B,)      int64    index of the track's video in the store
    extras             dict      optional per-track inputs of richer scorers, first axis B
                                 (e.g. cached video latents sampled along the track)
    frame_size (B, 2)   float    (height, width) in px of each track's frames, or None: the
                                 model config's frame size. Imported tracks come from videos
                                 of any size; positions are normalised by their own frames.
    """

    position: np.ndarray
    observed: np.ndarray
    area: np.ndarray
    color: np.ndarray
    loglik: np.ndarray
    label: np.ndarray
    video: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    frame_size: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.observed.shape[0])

    @property
    def frames(self) -> int:
        return int(self.observed.shape[1])

    def select(self, index: np.ndarray, frames: np.ndarray | None = None) -> TrackBatch:
        """The sub-batch of the given track indices (or boolean mask); with ``frames``
        (n, L) frame indices, the n selected tracks' values at those frames only (per-frame
        fields and extras), so a cut never copies the whole span first."""
        rows = None
        if frames is not None:
            rows = np.flatnonzero(index) if np.asarray(index).dtype == bool else np.asarray(index)

        def per_track(values: np.ndarray) -> np.ndarray:
            return values[index] if rows is None else values[rows]

        def at_frames(values: np.ndarray) -> np.ndarray:
            return values[index] if rows is None else values[rows[:, None], frames]

        shape = self.observed.shape
        return TrackBatch(
            position=at_frames(self.position),
            observed=at_frames(self.observed),
            area=at_frames(self.area),
            color=at_frames(self.color),
            loglik=at_frames(self.loglik),
            label=per_track(self.label),
            video=per_track(self.video),
            extras={
                k: at_frames(v) if v.shape[:2] == shape else per_track(v)
                for k, v in self.extras.items()
            },
            frame_size=None if self.frame_size is None else per_track(self.frame_size),
        )


@dataclass
class TrackMeta:
    """What evaluation needs beyond the TrackBatch (never shown to scorers).

    video_type (B,) str   type of the track's video (persistent, brief, noise, mixed, ...)
    kind       (B,) int8  kind of the track's object: 0 persistent, 1 brief, 2 clutter,
                          -1 no object
    n_videos   int        videos in the split (including videos without any track)
    bin        (B,) str   optional label of the track's bin (e.g. its video's operating-point
                          bin); the report then breaks every scorer's numbers down by bin
    """

    video_type: np.ndarray
    kind: np.ndarray
    n_videos: int
    bin: np.ndarray | None = None
