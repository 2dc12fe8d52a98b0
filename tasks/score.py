"""Task: score tracker files with a loaded model and write each one's scored copy.

A file is read (`tp_models.tracks.files`), every row scored at its own frame from the
observations so far (`serving.rows.score_rows`), and written back with `p_persistent` and
`confirmed` appended: every input row once, in input order. Files are written into a
staging folder the flow moves into place only when every file succeeded, so bad input
anywhere leaves nothing behind.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from storage.errors import UserError
from tp_models.core.scorer import PersistenceScorer
from tp_models.serving.rows import TrackLifeError, score_rows
from tp_models.tracks.files import TrackFileError, read_tracks, write_scored


class TrackInputError(UserError):
    """A tracker file that cannot be scored; the sentence names the file, line and column."""


def score_file(
    model: PersistenceScorer, threshold: float, path: str, out: str | Path
) -> dict[str, Any]:
    """Score one file into the file `out` (same format); its row count and seconds."""
    began = time.perf_counter()
    try:
        track_file = read_tracks(path)
    except TrackFileError as exc:
        raise TrackInputError(str(exc)) from None
    try:
        scores = score_rows(model, track_file.rows)
    except TrackLifeError as exc:
        raise TrackInputError(f"{path}: {exc}.") from None
    written = write_scored(track_file, scores, scores >= threshold, out)
    return {
        "file": str(path),
        "out": str(written),
        "rows": len(track_file.lines),
        "rows_outside_frame": int(track_file.rows.outside_frame().sum()),  # scored as given
        "confirmed": int((scores >= threshold).sum()),
        "seconds": round(time.perf_counter() - began, 3),
    }


def score_group(
    model: PersistenceScorer, threshold: float, jobs: Sequence[tuple[str, str]]
) -> list[dict[str, Any]]:
    """`score_file` for each (input, output file) of `jobs`: the work of one task (a group
    of files per Dask task), or of a whole local run in this process."""
    return [score_file(model, threshold, path, out) for path, out in jobs]


def score_files_one_thread(
    model: PersistenceScorer, threshold: float, jobs: Sequence[tuple[str, str]]
) -> list[dict[str, Any]]:
    """`score_group` on one torch thread: one per Dask worker process (more would
    oversubscribe), and measured no slower on 2 cores for a local run."""
    import torch

    torch.set_num_threads(1)
    return score_group(model, threshold, jobs)


def __getattr__(name: str) -> Any:
    # `score_files`, the Prefect task, is made on first use: a local run scores in this
    # process without Prefect, and importing it costs ~1.5 s of a 2-second budget.
    if name != "score_files":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from prefect import task
    from prefect.cache_policies import NO_CACHE

    # retries=0: bad input is not transient
    made = task(name="score-files", cache_policy=NO_CACHE, retries=0)(score_files_one_thread)
    globals()[name] = made
    return made
