"""Blob detection: threshold the brightest channel, then connected components per frame.

The detector never reads ground truth. It returns, besides the per-detection table, the
component-label volume so that the labeller (``labels.py``) can look up each detection's
pixels in the id mask afterwards.

Touching or overlapping objects form one connected component and therefore ONE detection
(centroid between them, area the sum, colour the mix). Splitting them would need colour or
shape priors; the tracker simply sees a missed frame for one of the two objects.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated, Literal

import numpy as np
from annotated_types import Ge, Interval, doc
from scipy import ndimage

from tp_models.core.config import known_fields

# Frames are labelled all at once as a (T, H, W) volume; this structure connects pixels
# within a frame only (8-neighbourhood), never across frames.
_STRUCTURE_8 = np.zeros((3, 3, 3), dtype=bool)
_STRUCTURE_8[1] = True
_STRUCTURE_4 = np.zeros((3, 3, 3), dtype=bool)
_STRUCTURE_4[1] = ndimage.generate_binary_structure(2, 1)


@dataclass(frozen=True)
class DetectorConfig:
    """How pixels become detections.

    threshold: a pixel is foreground when its brightest channel exceeds this (0..255). The
        background is black; with Gaussian sensor noise of sigma 5, 40 is 8 sigma, so noise
        alone practically never passes, while objects are bright saturated colours (>= ~120).
    min_area: components smaller than this many pixels are dropped (isolated noise spikes,
        slivers of objects at the image border).
    connectivity: 8 or 4 neighbourhood inside a frame. 8 keeps thin triangle tips attached.
    """

    threshold: Annotated[float, Interval(ge=0, lt=255), doc("foreground threshold (0-255)")] = 40.0
    min_area: Annotated[int, Ge(1), doc("smallest detection in pixels")] = 4
    connectivity: Annotated[Literal[4, 8], doc("pixel neighbourhood of a component")] = 8

    def __post_init__(self) -> None:
        if self.connectivity not in (4, 8):
            raise ValueError(f"DetectorConfig.connectivity must be 4 or 8, got {self.connectivity}")
        if self.min_area < 1:
            raise ValueError(f"DetectorConfig.min_area must be >= 1, got {self.min_area}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DetectorConfig:
        return cls(**known_fields(cls, data))


@dataclass
class Detections:
    """All detections of one video, ordered by frame (then raster order of the blob).

    frame     (D,)      int32    frame index
    centroid  (D, 2)    float32  pixel-mean centroid, (x = column, y = row), pixel centres
                                 at integer coordinates
    area      (D,)      float32  pixels in the component
    color     (D, 3)    float32  mean RGB over the component's pixels
    bbox      (D, 4)    int32    (x0, y0, x1, y1), x1/y1 exclusive
    labels    (T, H, W) int32    d + 1 on the pixels of detection d, 0 elsewhere
    frame_start (T + 1,) int64   detections of frame t are frame_start[t]:frame_start[t + 1]
    """

    frame: np.ndarray
    centroid: np.ndarray
    area: np.ndarray
    color: np.ndarray
    bbox: np.ndarray
    labels: np.ndarray
    frame_start: np.ndarray

    def __len__(self) -> int:
        return int(self.frame.shape[0])

    @property
    def frames(self) -> int:
        return int(self.labels.shape[0])


def detect(video: np.ndarray, config: DetectorConfig | None = None) -> Detections:
    """Detect bright blobs in every frame of one video (T, H, W, 3) uint8."""
    config = config or DetectorConfig()
    if video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"video must have shape (T, H, W, 3), got {video.shape}")
    n_frames, height, width, _ = video.shape
    # Channel-wise maximum by hand: numpy's reduction over a length-3 last axis is ~15x slower.
    brightest = np.maximum(np.maximum(video[..., 0], video[..., 1]), video[..., 2])
    foreground = brightest > config.threshold
    structure = _STRUCTURE_8 if config.connectivity == 8 else _STRUCTURE_4
    labels, n_components = ndimage.label(foreground, structure=structure)
    labels = labels.astype(np.int32, copy=False)

    # Per-component sums over foreground pixels only, with bincount (much faster than the
    # generic ndimage reducers for a handful of statistics).
    flat_index = np.flatnonzero(foreground)
    component = labels.ravel()[flat_index]
    size = n_components + 1
    area = np.bincount(component, minlength=size)[1:].astype(np.float64)
    pixel_in_frame = flat_index % (height * width)
    rows, cols = np.divmod(pixel_in_frame, width)
    sum_x = np.bincount(component, weights=cols, minlength=size)[1:]
    sum_y = np.bincount(component, weights=rows, minlength=size)[1:]
    pixels = video.reshape(-1, 3)[flat_index]
    sum_rgb = np.stack(
        [np.bincount(component, weights=pixels[:, c], minlength=size)[1:] for c in range(3)],
        axis=1,
    )
    slices = ndimage.find_objects(labels, max_label=n_components)

    keep = area >= config.min_area
    kept = np.flatnonzero(keep)
    if kept.size < n_components:
        # Renumber so that labels keep meaning "detection index + 1".
        lookup = np.zeros(size, dtype=np.int32)
        lookup[kept + 1] = np.arange(1, kept.size + 1, dtype=np.int32)
        labels = lookup[labels]

    safe_area = np.maximum(area[kept], 1.0)
    frame = np.array([slices[i][0].start for i in kept], dtype=np.int32)
    bbox = np.array(
        [
            (slices[i][2].start, slices[i][1].start, slices[i][2].stop, slices[i][1].stop)
            for i in kept
        ],
        dtype=np.int32,
    ).reshape(-1, 4)
    centroid = np.stack([sum_x[kept] / safe_area, sum_y[kept] / safe_area], axis=1)
    color = sum_rgb[kept] / safe_area[:, None]
    frame_start = np.searchsorted(frame, np.arange(n_frames + 1), side="left").astype(np.int64)
    return Detections(
        frame=frame,
        centroid=centroid.astype(np.float32).reshape(-1, 2),
        area=area[kept].astype(np.float32),
        color=color.astype(np.float32).reshape(-1, 3),
        bbox=bbox,
        labels=labels,
        frame_start=frame_start,
    )
