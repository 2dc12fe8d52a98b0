"""Flow `generate-data`: simulate the dataset into a Zarr store, chunk by chunk, on Dask."""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, get_run_logger

from flows.artifacts import publish_store_summary
from flows.extract_tracks import track_store
from flows.runner import dask_runner, map_chunks
from storage.inspect import describe, format_info
from storage.store import Store, replacing
from tasks.generate import SimulateVideos
from tasks.specs import GenerateSpec


def check(spec: GenerateSpec) -> None:
    """Refuse, before any service starts, a store these parameters may not write to."""
    Store.check_create(spec.store, spec.data_config(), spec.overwrite)


@flow(name="generate-data", log_prints=True)
def generate_data(spec: GenerateSpec = GenerateSpec()) -> dict[str, Any]:
    """Write (or resume) the dataset store, then extract tracks from its pixels."""
    logger = get_run_logger()
    began = time.perf_counter()
    with dask_runner(spec.compute) as runner:
        ready = time.perf_counter()
        # The old store goes only once every chunk of the new one is written (moved back
        # if the run fails before its first chunk).
        with replacing(spec.store, spec.overwrite):
            store = Store.create(spec.store, spec.data_config(), spec.n_videos, False)
            dataset = store.dataset
            logger.info(
                "store %s: %d videos in %d chunks (%d done before this run)",
                spec.store,
                dataset.n_items,
                dataset.n_chunks,
                int(dataset.done_chunks().sum()),
            )
            results = map_chunks(
                runner, SimulateVideos(), store, range(dataset.n_chunks), spec.compute.n_workers()
            )
        generated = time.perf_counter()
        fingerprint = dataset.finalize()
        store.consolidate()
        tracked = track_store(runner, store, spec.tracks()) if spec.extract_tracks else None
    written = sum(r.items for r in results if not r.skipped)
    summary: dict[str, Any] = {
        "store": spec.store,
        "videos": dataset.n_items,
        "videos_written": written,
        "chunks_redone": sum(not r.skipped for r in results),
        "fingerprint": fingerprint,
        "cluster_start_s": round(ready - began, 3),
        "generate_s": round(generated - ready, 3),
        "videos_per_s": round(written / max(generated - ready, 1e-9), 1),
    }
    logger.info("generate-data done: %s", summary)
    publish_store_summary(format_info(describe(spec.store)), fingerprint)
    if tracked is not None:
        summary["tracks"] = tracked
    return summary
