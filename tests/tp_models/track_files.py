"""Small track tables and the TUD-Campus files shipped in the motmetrics 1.4.0 wheel."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import numpy as np
import pytest

from tp_models.tracks.table import TrackRows

# MOTChallenge's seqinfo.ini for TUD-Campus (the wheel ships the tracks without it).
TUD_CAMPUS_FRAME_SIZE = (480, 640)


def tud_campus(name: str) -> Path:
    """``gt`` or ``test`` of TUD-Campus, read from the installed distribution's files (its
    Python code is never imported: it breaks on numpy 2)."""
    try:
        dist = distribution("motmetrics")
    except PackageNotFoundError:
        pytest.skip("motmetrics==1.4.0 (dev extra) is not installed")
    return Path(dist.locate_file(f"motmetrics/data/TUD-Campus/{name}.txt"))


def random_rows(seed: int = 0, n_tracks: int = 12, frame_size=(480, 640)) -> TrackRows:
    """Noisy constant-velocity boxes with missed frames, rows shuffled."""
    rng = np.random.default_rng(seed)
    rows = []
    for track in range(n_tracks):
        start, life = rng.integers(1, 20), rng.integers(1, 40)
        origin, velocity = rng.random(2) * 400 + 50, rng.normal(0, 3, 2)
        for frame in range(start, start + life):
            if rng.random() < 0.8:
                x, y = origin + velocity * (frame - start) + rng.normal(0, 1, 2)
                rows.append((frame, track + 1, x, y, 30 + 5 * rng.random(), 60.0))
    return rows_from_table(np.array(rows)[rng.permutation(len(rows))], frame_size)


def rows_from_table(table: np.ndarray, frame_size, n_frames: int | None = None) -> TrackRows:
    """TrackRows of a (N, 6) table of frame, id, x, y, w, h (no confidences)."""
    return TrackRows(
        frame=table[:, 0].astype(np.int64),
        track_id=table[:, 1].astype(np.int64),
        x=table[:, 2],
        y=table[:, 3],
        w=table[:, 4],
        h=table[:, 5],
        conf=np.full(len(table), np.nan),
        frame_size=frame_size,
        n_frames=int(table[:, 0].max()) if n_frames is None else n_frames,
    )
