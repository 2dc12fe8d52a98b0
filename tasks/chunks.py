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
from typing import Any

import numpy as np
from prefect import get_run_logger, task

from storage.chunked import ChunkedGroup
from storage.errors import UserError
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
        """Once per task: load what every chunk needs, return chunk index -> arrays.

        Chunks of other groups are read with `read_chunk`, which verifies their checksums.
        """

    def parent(self, store: Store) -> ChunkedGroup | None:
        """The group whose chunk `c` chunk `c` of the output is computed from (None: none)."""
        return None


@dataclass(frozen=True)
class ChunkResult:
    chunk: int
    items: int
    seconds: float
    skipped: bool  # done and intact before this run


def _retry_unless_user_error(task: Any, task_run: Any, state: Any) -> bool:
    """A damaged input or a missing store stays so on retry: fail at once, with its sentence."""
    try:
        state.result()
    except UserError:
        return False
    except Exception:
        return True
    return True


@task(name="chunks", retries=2, retry_delay_seconds=1, retry_condition_fn=_retry_unless_user_error)
def run_chunks(stage: ChunkStage, store_url: str, chunks: list[int]) -> list[ChunkResult]:
    """Compute and write `chunks` of the stage's group; done and intact chunks are skipped."""
    logger = get_run_logger()
    store = Store.open_during_run(store_url)
    group = stage.output(store)
    parent = stage.parent(store)
    compute: Callable[[int], ChunkArrays] | None = None  # prepared only if there is work
    results = []
    for chunk in chunks:
        start, stop = group.bounds(chunk)
        # The parent's checksum before reading it: `compute` verifies the data against it.
        source = None if parent is None else parent.stored_checksum(chunk)
        current = parent is None or group.recorded_parent_checksum(chunk) == source
        if current and group.verify_chunk(chunk):
            results.append(ChunkResult(chunk, stop - start, 0.0, skipped=True))
            continue
        began = time.perf_counter()
        compute = compute or stage.prepare(store)
        group.write_chunk(chunk, compute(chunk), parent_checksum=source)
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
