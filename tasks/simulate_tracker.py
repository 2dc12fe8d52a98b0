"""Task: simulate Stone Soup sequences and write each as tracker files with ground truth.

A sequence `i` goes to `<out>/seq-NNNN/`: `tracks.csv` (the tracker's point rows), `gt.csv`
(the targets' true positions) and `seqinfo.ini` (the area as the frame, the scans as its
length), the files `tp import-tracks ... --gt ...` reads, and `operating_point.csv` (the
sensor's P_D and clutter rate at each scan: the truth a drifting scene hides from scorers).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from tp_models.tracks.files import OPERATING_POINT_COLUMNS, write_points, write_seqinfo
from tp_models.world.stone_soup import TrackerScenario, sequence_seed, simulate_sequence

TRACKS_FILE = "tracks.csv"
TRUTH_FILE = "gt.csv"
OPERATING_POINT_FILE = "operating_point.csv"


def sequence_name(index: int) -> str:
    return f"seq-{index + 1:04d}"


@task(name="simulate-tracker-sequences", cache_policy=NO_CACHE)
def simulate_sequences(
    scenario: dict[str, Any], seed: int, indices: Sequence[int], out_dir: str
) -> list[dict[str, Any]]:
    """Simulate and write the sequences `indices`; per sequence its name and counts."""
    config = TrackerScenario.from_dict(scenario)
    side = round(config.area)
    written = []
    for index in indices:
        simulated = simulate_sequence(config, sequence_seed(seed, index))
        folder = Path(out_dir) / sequence_name(index)
        write_points(folder / TRACKS_FILE, simulated.tracks)
        write_points(folder / TRUTH_FILE, simulated.truth)
        write_seqinfo(folder, sequence_name(index), (side, side), config.scans)
        np.savetxt(
            folder / OPERATING_POINT_FILE,
            simulated.operating_point,
            fmt=("%d", "%.6f", "%.6f"),
            delimiter=",",
            header=",".join(OPERATING_POINT_COLUMNS),
            comments="",
        )
        written.append(
            {
                "sequence": sequence_name(index),
                "rows": len(simulated.tracks),
                "tracks": int(np.unique(simulated.tracks[:, 1]).size),
                "targets": int(np.unique(simulated.truth[:, 1]).size),
            }
        )
    return written
