"""The dataset group of a store of imported tracks: no videos, one item per sequence.

An item is a sequence read from a tracker file, or a window of `window` frames of one
(so a single long sequence still splits into train, validation and test items). Per item:
its type (from the labels), its own frame size, which source file and which first frame it
came from, and where operating-point files were given its sensor's P_D and clutter density
at every frame. The group's config records the source files' hashes, the matching rule, the
window, the padded length (`frames`) and the model frame (`frame_size`) every item's
positions are mapped into, so `train`, `evaluate` and `evaluate-baselines` read it as they
read a generated store.
"""

from __future__ import annotations

from storage.chunked import ArraySpec
from tp_models.scorers.existence import ORACLE_NEEDS

IMPORTED = "imported"  # dataset config key: True for a store of imported tracks
ITEM_FRAME_SIZE = "frame_size"
# What an item holds, by its tracks' labels (splits are stratified by it).
IMPORTED_TYPES = ("persistent", "false", "mixed", "unlabelled")


# Given operating-point files, per item and frame (`tasks.import_tracks.item_operating_points`):
# the sensor's P_D and clutter density, under the names of the generator's per-video draws,
# so the parameter oracle reads both kinds of store alike.
ITEM_OPERATING_POINTS = ORACLE_NEEDS


def imported_specs(frames: int, operating_points: bool) -> dict[str, ArraySpec]:
    per_frame = (
        {
            name: ArraySpec((frames,), "float32", float("nan"), dims=("frame",))
            for name in ITEM_OPERATING_POINTS
        }
        if operating_points
        else {}
    )
    return {
        "video_type": ArraySpec((), "int8", -1),
        ITEM_FRAME_SIZE: ArraySpec((2,), "float32", float("nan")),
        "source": ArraySpec((), "int32", -1),
        "first_frame": ArraySpec((), "int32", -1),
        **per_frame,
    }
