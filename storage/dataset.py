"""The dataset group: videos, id masks and ground-truth tables, chunked by whole videos."""

from __future__ import annotations

import numpy as np

from storage.chunked import ArraySpec
from tp_models.world.config import OPERATING_POINT_DTYPES, OPERATING_POINT_PADDING, SceneConfig
from tp_models.world.simulate import SceneBatch

DATASET = "dataset"
PIXEL_DIMS = ("frame", "y", "x", "channel")
OBJECT_XY = ("object", "frame", "xy")


def video_shuffle(noise_sigma: float) -> str:
    """Blosc shuffle for uint8 frames, chosen by measurement (`tp bench generate`).

    Black frames with a few flat shapes compress best without bit-shuffling (runs of equal
    bytes survive); with sensor noise the low bits are random and bitshuffle isolates them.
    """
    return "bitshuffle" if noise_sigma > 0 else "noshuffle"


def dataset_specs(scene: SceneConfig) -> dict[str, ArraySpec]:
    frames, size, k = scene.frames, scene.size, scene.max_objects
    pixels = video_shuffle(scene.noise_sigma)
    masks = scene.mask_dtype
    return {
        "videos": ArraySpec((frames, size, size, 3), "uint8", 0, pixels, PIXEL_DIMS),
        "masks": ArraySpec((frames, size, size), masks, 0, "noshuffle", PIXEL_DIMS[:3]),
        "video_type": ArraySpec((), "int8", -1),
        "gt_kind": ArraySpec((k,), "int8", -1, dims=("object",)),
        "gt_shape": ArraySpec((k,), "int8", -1, dims=("object",)),
        "gt_radius": ArraySpec((k,), "float32", float("nan"), dims=("object",)),
        "gt_color": ArraySpec((k, 3), "uint8", 0, dims=("object", "channel")),
        "gt_position": ArraySpec((k, frames, 2), "float32", float("nan"), dims=OBJECT_XY),
        "gt_visible": ArraySpec((k, frames), "bool", False, dims=OBJECT_XY[:2]),
        **{
            name: ArraySpec(
                scene.point_frames(name),
                dtype,
                OPERATING_POINT_PADDING[dtype],
                dims=("frame",) if scene.point_frames(name) else (),
            )
            for name, dtype in OPERATING_POINT_DTYPES.items()
        },
    }


def scene_arrays(batch: SceneBatch) -> dict[str, np.ndarray]:
    """A simulated batch as the arrays of one dataset chunk."""
    return {
        "videos": batch.videos,
        "masks": batch.masks,
        "video_type": batch.video_type,
        "gt_kind": batch.kind,
        "gt_shape": batch.shape,
        "gt_radius": batch.radius,
        "gt_color": batch.color,
        "gt_position": batch.position,
        "gt_visible": batch.visible,
        **{name: getattr(batch, name) for name in OPERATING_POINT_DTYPES},
    }
