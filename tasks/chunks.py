"""The one chunk loop behind every chunked stage (generate, tracks, features).

A stage says which group it writes and how one chunk's arrays are computed; `run_chunks`
owns the rest: open the store once per task, skip chunks that are done and verify, compute,
write the chunk, then its checksum (the done marker). So resuming, checksums and logging
behave the same in every stage, and a stage is only its science.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from prefect import get_run_logger, task

from storage.chunked import ChunkedGroup
from storage.store import Store

ChunkArrays = Mapping[str, np.ndarray]


class ChunkStage(ABC):
    """One chunked stage. Instances are small and picklable: they travel to Dask workers."""

    label: str  # names the Prefect task and the progress bar

    @abstractmethod
    def output(self, store: Store) -> ChunkedGroup:
        """The group this stage writes (created beforehand by the coordinating flow)."""

    @abstractmethod
    def prepare(self, store: Store) -> Callable[[int], ChunkArrays]:
        """Once per task: load what every chunk needs, return chunk index -> arrays."""


@dataclass(frozen=True)
class ChunkResult:
    chunk: int
    items: int
    seconds: float
    skipped: bool  # done and intact before this run


@task(name="chunks", retries=2, retry_delay_seconds=1)
def run_chunks(stage: ChunkStage, store_url: str, chunks: list[int]) -> list[ChunkResult]:
    """Compute and write `chunks` of the stage's group; done and intact chunks are skipped."""
    logger = get_run_logger()
    store = Store.open(store_url)
    group = stage.output(store)
    compute: Callable[[int], ChunkArrays] | None = None  # prepared only if there is work
    results = []
    for chunk in chunks:
        start, stop = group.bounds(chunk)
        if group.verify_chunk(chunk):
            results.append(ChunkResult(chunk, stop - start, 0.0, skipped=True))
            continue
        began = time.perf_counter()
        compute = compute or stage.prepare(store)
        group.write_chunk(chunk, compute(chunk))
        seconds = time.perf_counter() - began
        results.append(ChunkResult(chunk, stop - start, seconds, skipped=False))
        logger.info(
            "%s chunk %d/%d (items %d-%d) written in %.2f s",
            stage.label,
            chunk + 1,
            group.n_chunks,
            start,
            stop - 1,
            seconds,
        )
    return results
