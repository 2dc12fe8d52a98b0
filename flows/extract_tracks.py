"""Flow `extract-tracks`: detect and track objects in an existing store's videos, on Dask."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from prefect import flow, get_run_logger
from prefect_dask import DaskTaskRunner

from flows.runner import dask_runner, map_chunks
from storage.store import Store
from storage.tracks import split_quality
from tasks.specs import TracksSpec
from tasks.tracks import ExtractTracks
from tp_models.perception.labels import summarize_quality


def check(spec: TracksSpec) -> None:
    """Refuse a missing or unfinished store before any service starts."""
    Store.open(spec.store).fingerprint  # noqa: B018 - raises a clear error if incomplete


def track_store(runner: DaskTaskRunner, store: Store, spec: TracksSpec) -> dict[str, Any]:
    """Track every unfinished chunk on `runner`; shared by this flow and generate-data."""
    logger = get_run_logger()
    began = time.perf_counter()
    tracks = store.create_tracks(spec.tracker.to_dict(), spec.overwrite)
    stage = ExtractTracks(key=tracks.group.basename)
    results = map_chunks(runner, stage, store, range(tracks.n_chunks), spec.compute.n_workers())
    seconds = time.perf_counter() - began
    tracks.finalize()
    store.mark_last_tracks(tracks)
    _, quality = split_quality(
        {n: tracks.read(n) for n in tracks.array_names if n.startswith("quality_")}
    )
    totals = {name: int(np.sum(values)) for name, values in quality.items()}
    dropped = int(tracks.read("n_dropped").sum())
    if dropped:
        logger.warning(
            "%d tracks dropped: videos over the capacity of %d tracks",
            dropped,
            tracks.config["capacity"],
        )
    videos = sum(r.items for r in results if not r.skipped)
    summary = {
        "tracks_group": tracks.group.path,
        "tracks": int(tracks.read("n_tracks").sum()),
        "tracks_dropped": dropped,
        "chunks_redone": sum(not r.skipped for r in results),
        "seconds": round(seconds, 3),
        "videos_tracked": videos,
        "videos_per_s": round(videos / max(seconds, 1e-9), 1),
        **summarize_quality(totals),
    }
    tracks.group.attrs.update({"quality": summary})
    store.consolidate()
    logger.info("extract-tracks done: %s", summary)
    return summary


@flow(name="extract-tracks", log_prints=True)
def extract_tracks(spec: TracksSpec = TracksSpec()) -> dict[str, Any]:
    """Run detection + tracking on a store made by generate-data (videos are not regenerated)."""
    store = Store.open(spec.store)
    with dask_runner(spec.compute) as runner:
        return track_store(runner, store, spec)
