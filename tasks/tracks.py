"""Task: detect and track objects in whole chunks of videos, label tracks via the id masks."""

from __future__ import annotations

import time

from prefect import get_run_logger, task

from storage.dataset import open_dataset
from storage.tracks import open_tracks, with_quality
from tp_models.track_arrays import MAX_TRACKS, extract_and_label
from tp_models.tracker import TrackerConfig


@task(name="extract-tracks-chunks", retries=2, retry_delay_seconds=1)
def extract_track_chunks(store: str, tracker: dict, chunks: list[int]) -> list[int]:
    """Track the given chunks; chunks already done and intact are skipped. Returns redone chunks."""
    logger = get_run_logger()
    dataset = open_dataset(store)
    tracks = open_tracks(store, tracker, complete=False)  # created by the flow
    config = TrackerConfig.from_dict(tracker)
    redone = []
    for chunk in chunks:
        if tracks.verify_chunk(chunk):
            continue
        began = time.perf_counter()
        data = dataset.read_chunk(chunk, ["videos", "masks", "gt_kind"])
        arrays, quality = extract_and_label(
            data["videos"], data["masks"], data["gt_kind"], config, MAX_TRACKS
        )
        tracks.write_chunk(chunk, with_quality(arrays, quality))
        redone.append(chunk)
        logger.info(
            "tracks chunk %d/%d: %d tracks in %.2f s",
            chunk + 1,
            tracks.n_chunks,
            int(arrays["n_tracks"].sum()),
            time.perf_counter() - began,
        )
    return redone
