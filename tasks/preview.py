"""Preview images of a store: people look before they read."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from storage.store import Store
from tp_models.evaluation.visualize import contact_sheet, draw_positions, save_gif, save_png
from tp_models.world.config import OBJECT_KINDS, VIDEO_TYPES

KIND_COLORS = {0: (60, 255, 60), 1: (255, 200, 40), 2: (255, 60, 60)}  # persistent, brief, clutter


def write_preview(store: str, out: str | Path, videos_per_type: int = 6) -> list[Path]:
    """A contact sheet per video type and a GIF per type with ground-truth overlays.

    Overlay rings are coloured by object kind (green persistent, amber brief, red clutter).
    """
    if videos_per_type < 1:
        raise ValueError(f"videos must be at least 1 (got {videos_per_type}).")
    dataset = Store.open(store).dataset
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    types = dataset.read("video_type")
    written = []
    for code, name in enumerate(VIDEO_TYPES):
        index = np.flatnonzero(types == code)[:videos_per_type]
        if index.size == 0:
            continue
        videos = np.stack([dataset.read("videos", i, i + 1)[0] for i in index])
        labels = [f"{name} #{i}" for i in index]
        written.append(save_png(contact_sheet(videos, labels=labels), out / f"sheet_{name}.png"))
        first = int(index[0])
        kind = dataset.read("gt_kind", first, first + 1)[0]
        slots = np.flatnonzero(kind >= 0)
        overlay = draw_positions(
            videos[0],
            dataset.read("gt_position", first, first + 1)[0][slots],
            colors=[KIND_COLORS[int(k)] for k in kind[slots]],
            visible=dataset.read("gt_visible", first, first + 1)[0][slots],
            scale=4,
        )
        written.append(save_gif(overlay, out / f"video_{name}_{first}.gif"))
    legend = ", ".join(f"{OBJECT_KINDS[k]}={c}" for k, c in KIND_COLORS.items())
    (out / "README.txt").write_text(f"GIF ring colours by object kind: {legend}\n")
    return written
