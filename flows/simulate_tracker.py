"""Flow `simulate-tracker`: a Stone Soup benchmark written as tracker files, on Dask.

Sequences are dealt to tasks (`sequences_per_task` each); sequence `i` is seeded by the
run's seed and `i` alone, so the files do not depend on the worker count. Everything is
written into a staging folder beside `out` and moved into place when every sequence is
written: a failed run leaves an earlier run's folder as it was.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from flows.runner import dask_runner, gather
from storage.errors import ParameterError
from storage.paths import require_writable
from tasks.simulate_tracker import simulate_sequences
from tasks.specs import SimulateTrackerSpec

STAGING_SUFFIX = ".tp-new"
REPLACED_SUFFIX = ".tp-replaced"
RUN_FILE = "simulate-tracker.json"  # the spec that made the folder


def check(spec: SimulateTrackerSpec) -> None:
    """Stone Soup installed, and an output folder this run may write: new, empty, or
    replaced with `overwrite`."""
    if importlib.util.find_spec("stonesoup") is None:
        raise ParameterError(
            "simulate-tracker needs Stone Soup, which is not installed; install it with "
            "`pip install -e '.[stonesoup]'` (make test does)."
        )
    out = Path(spec.out)
    if out.exists() and not out.is_dir():
        raise ParameterError(f"out: {spec.out!r} is a file; give a folder for the sequences.")
    if out.is_dir() and any(out.iterdir()) and not spec.overwrite:
        raise ParameterError(
            f"out: {spec.out!r} already holds files; choose a new folder, or give --overwrite "
            "to replace it."
        )
    require_writable(spec.out, "out")


@flow(name="simulate-tracker", log_prints=True)
def simulate_tracker(spec: SimulateTrackerSpec) -> dict[str, Any]:
    """Write `spec.sequences` sequences under `spec.out`; counts of rows, tracks, targets."""
    logger = get_run_logger()
    check(spec)
    began = time.perf_counter()
    out = Path(spec.out).absolute()
    staging = out.with_name(out.name + STAGING_SUFFIX)
    shutil.rmtree(staging, ignore_errors=True)  # a killed run's
    staging.mkdir(parents=True)
    scenario = spec.resolved_scenario().to_dict()
    indices = list(range(spec.sequences))
    groups = [
        indices[i : i + spec.sequences_per_task]
        for i in range(0, len(indices), spec.sequences_per_task)
    ]
    args = {"scenario": scenario, "seed": spec.seed, "out_dir": str(staging)}
    try:
        if len(groups) == 1:
            written = simulate_sequences.fn(indices=groups[0], **args)
        else:
            with dask_runner(spec.compute) as runner:
                written = gather(
                    [runner.submit(simulate_sequences, {**args, "indices": g}) for g in groups]
                )
        run = {"spec": spec.model_dump(mode="json"), "scenario": scenario, "sequences": written}
        (staging / RUN_FILE).write_text(json.dumps(run, indent=2))
        _replace(out, staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    summary = {
        "out": str(spec.out),
        "sequences": len(written),
        "rows": sum(w["rows"] for w in written),
        "tracks": sum(w["tracks"] for w in written),
        "targets": sum(w["targets"] for w in written),
        "seconds": round(time.perf_counter() - began, 3),
    }
    logger.info("simulate-tracker: %s", summary)
    return summary


def _replace(out: Path, staging: Path) -> None:
    """`staging` becomes `out`; an earlier `out` is removed only once the new one is there."""
    aside = out.with_name(out.name + REPLACED_SUFFIX)
    if out.exists():
        shutil.rmtree(aside, ignore_errors=True)
        out.rename(aside)
    staging.rename(out)
    shutil.rmtree(aside, ignore_errors=True)
