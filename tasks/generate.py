"""Task: simulate and write whole chunks of the dataset group."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from prefect import get_run_logger, task

from storage.dataset import open_dataset, scene_arrays
from tp_models.scene import SceneConfig, assign_video_types, simulate


@dataclass(frozen=True)
class ChunkReport:
    chunk: int
    videos: int
    seconds: float
    skipped: bool


@task(name="generate-chunks", retries=2, retry_delay_seconds=1)
def generate_chunks(store: str, chunks: list[int]) -> list[ChunkReport]:
    """Write the given chunks; a chunk already written and intact is left alone (resume)."""
    logger = get_run_logger()
    dataset = open_dataset(store)
    config = dataset.config
    scene = SceneConfig.from_dict(config["scene"])
    video_types = assign_video_types(config["counts"], config["seed"])
    reports = []
    for chunk in chunks:
        began = time.perf_counter()
        start, stop = dataset.bounds(chunk)
        if dataset.verify_chunk(chunk):
            reports.append(ChunkReport(chunk, stop - start, 0.0, skipped=True))
            continue
        batch = simulate(scene, video_types[start:stop], np.arange(start, stop), config["seed"])
        dataset.write_chunk(chunk, scene_arrays(batch))
        seconds = time.perf_counter() - began
        reports.append(ChunkReport(chunk, stop - start, seconds, skipped=False))
        logger.info(
            "chunk %d/%d: videos %d-%d written in %.2f s",
            chunk + 1,
            dataset.n_chunks,
            start,
            stop - 1,
            seconds,
        )
    return reports
