"""Flow `generate-data`: simulate the dataset into a Zarr store, chunk by chunk, on Dask."""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, get_run_logger

from flows.extract_tracks import track_store
from flows.params import GenerateParams, TracksParams
from flows.runner import dask_runner, run_all, split
from storage.dataset import open_or_create_dataset
from tasks.generate import generate_chunks

# A few tasks per worker: balanced load and visible progress at ~60 ms overhead each.
TASKS_PER_WORKER = 4
DEFAULTS = GenerateParams()


@flow(name="generate-data", log_prints=True)
def generate_data(params: GenerateParams = DEFAULTS) -> dict[str, Any]:
    """Write (or resume) the dataset store, then extract tracks from its pixels."""
    logger = get_run_logger()
    began = time.perf_counter()
    dataset = open_or_create_dataset(
        params.store, params.data_config(), params.n_videos, params.overwrite
    )
    done_before = int(dataset.done_chunks().sum())
    logger.info(
        "store %s: %d videos in %d chunks (%d done before this run)",
        params.store,
        dataset.n_items,
        dataset.n_chunks,
        done_before,
    )
    chunks = list(range(dataset.n_chunks))
    with dask_runner(params.n_workers(), params.dask_address) as runner:
        ready = time.perf_counter()
        calls = [
            {"store": params.store, "chunks": part}
            for part in split(chunks, params.n_workers() * TASKS_PER_WORKER)
        ]
        reports = [r for batch in run_all(runner, generate_chunks, calls, "chunks") for r in batch]
        written = sum(r.videos for r in reports if not r.skipped)
        generated = time.perf_counter()
        fingerprint = dataset.finalize()
        tracked = (
            track_store(
                runner,
                TracksParams(
                    store=params.store, workers=params.workers, dask_address=params.dask_address
                ),
            )
            if params.extract_tracks
            else None
        )
    summary = {
        "store": params.store,
        "videos": dataset.n_items,
        "videos_written": written,
        "chunks_redone": sum(not r.skipped for r in reports),
        "fingerprint": fingerprint,
        "cluster_start_s": round(ready - began, 3),
        "generate_s": round(generated - ready, 3),
        "videos_per_s": round(written / max(generated - ready, 1e-9), 1),
    }
    logger.info("generate-data done: %s", summary)
    if tracked is not None:
        summary["tracks"] = tracked
    return summary
