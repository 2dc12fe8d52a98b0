"""Flow `extract-tracks`: detect and track objects in an existing store's videos, on Dask."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from prefect import flow, get_run_logger
from prefect_dask import DaskTaskRunner

from flows.params import TracksParams
from flows.runner import dask_runner, run_all, split
from storage.dataset import open_dataset
from storage.tracks import open_or_create_tracks, split_quality
from tasks.tracks import extract_track_chunks
from tp_models.labels import summarize_quality

TASKS_PER_WORKER = 4
DEFAULTS = TracksParams()


def track_store(runner: DaskTaskRunner, params: TracksParams) -> dict[str, Any]:
    """Track every unfinished chunk on `runner`; shared by this flow and generate-data."""
    logger = get_run_logger()
    began = time.perf_counter()
    dataset = open_dataset(params.store)
    tracks = open_or_create_tracks(params.store, dataset, params.tracker(), params.overwrite)
    calls = [
        {"store": params.store, "tracker": params.tracker(), "chunks": part}
        for part in split(list(range(tracks.n_chunks)), params.n_workers() * TASKS_PER_WORKER)
    ]
    redone = [
        c for chunks in run_all(runner, extract_track_chunks, calls, "tracks") for c in chunks
    ]
    seconds = time.perf_counter() - began
    tracks.finalize()
    _, quality = split_quality(
        {n: tracks.read(n) for n in tracks.array_names if n.startswith("quality_")}
    )
    totals = {name: int(np.sum(values)) for name, values in quality.items()}
    n_tracks = int(tracks.read("n_tracks").sum())
    dropped = int(tracks.read("n_dropped").sum())
    if dropped:
        logger.warning(
            "%d tracks dropped: videos over the capacity of %d tracks",
            dropped,
            tracks.config["capacity"],
        )
    videos = sum(stop - start for start, stop in map(tracks.bounds, redone))
    summary = {
        "tracks_group": tracks.group.path,
        "tracks": n_tracks,
        "tracks_dropped": dropped,
        "chunks_redone": len(redone),
        "seconds": round(seconds, 3),
        "videos_tracked": videos,
        "videos_per_s": round(videos / max(seconds, 1e-9), 1),
        **summarize_quality(totals),
    }
    tracks.group.attrs.update({"quality": summary})
    logger.info("extract-tracks done: %s", summary)
    return summary


@flow(name="extract-tracks", log_prints=True)
def extract_tracks(params: TracksParams = DEFAULTS) -> dict[str, Any]:
    """Run detection + tracking on a store made by generate-data (videos are not regenerated)."""
    with dask_runner(params.n_workers(), params.dask_address) as runner:
        return track_store(runner, params)
