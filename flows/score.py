"""Flow `score`: tracker files in, the same files with `p_persistent` and `confirmed` out.

The model is resolved and loaded once, weights only (`storage.mlflow_store.load_model`), and its
validated operating threshold decides `confirmed`. One file scores in this process; many
fan out on Dask, a group of files per task. Every file is written into a staging folder
inside `out` and renamed into place only once all succeeded: bad input in any file is one
sentence naming the file, line and column, and nothing is written.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from flows.runner import dask_runner
from storage.errors import ParameterError, StoreError
from storage.mlflow_store import ModelRecord, connect, load_model, resolve_model
from tasks.score import score_files
from tasks.specs import CANDIDATE_MODEL, CHAMPION_MODEL, ScoreSpec
from tp_models.serving.served import operating_threshold


def _chosen_model(spec: ScoreSpec) -> ModelRecord:
    """The model to use: the one asked for, else the champion, else the candidate (noted)."""
    if spec.model_uri:
        return resolve_model(spec.model_uri)
    try:
        return resolve_model(CHAMPION_MODEL)
    except StoreError:
        print(
            f"note: no {CHAMPION_MODEL} yet (promotion names one); scoring with {CANDIDATE_MODEL}",
            file=sys.stderr,
        )
        return resolve_model(CANDIDATE_MODEL)


def check(spec: ScoreSpec) -> ScoreSpec:
    """The spec with its model pinned to one registered version (so the model checked is
    the model used, whatever an alias names meanwhile), or one sentence before anything
    starts or is written."""
    if not spec.files:
        raise ParameterError("files: give at least one tracker file to score.")
    names = Counter(Path(f).name for f in spec.files)
    same = sorted(name for name, count in names.items() if count > 1)
    if same:
        raise ParameterError(
            f"files: several inputs are named {same[0]!r}, and each is written to "
            f"{spec.out}/<its name>; score them into separate --out folders."
        )
    out = Path(spec.out)
    if out.exists() and not out.is_dir():
        raise ParameterError(f"out: {spec.out!r} is a file; give a folder for the scored files.")
    connect()
    model = _chosen_model(spec)
    features = model.params.get("model.features", "statistical")
    if features != "statistical":
        raise ParameterError(
            f"model_uri: {model.uri} reads {features!r} features of the video, which tracker "
            "files do not carry; score with a model trained with --features statistical."
        )
    return spec.model_copy(update={"model_uri": model.version_uri})


@flow(name="score", log_prints=True)
def score(spec: ScoreSpec) -> dict[str, Any]:
    """Score every row of every file; returns per-file counts and the overall rows/s."""
    logger = get_run_logger()
    spec = check(spec)
    uri = spec.model_uri
    began = time.perf_counter()
    loaded = load_model(uri)
    model = loaded.pipeline
    threshold, validated = operating_threshold({"metadata": loaded.metadata})
    if not validated:
        logger.warning("%s carries no validated threshold: confirmed uses %s", uri, threshold)
    out = Path(spec.out)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out, prefix=".tp-score-"))
    try:
        groups = [list(group) for group in _groups(spec)]
        if len(groups) == 1:
            results = score_files.fn(model, threshold, groups[0], str(staging))
        else:
            with dask_runner(spec.compute) as runner:
                futures = [
                    runner.submit(
                        score_files,
                        {
                            "model": model,
                            "threshold": threshold,
                            "paths": g,
                            "out_dir": str(staging),
                        },
                    )
                    for g in groups
                ]
                results = _gather(futures)
        for result in results:
            (staging / result["out"]).replace(out / result["out"])
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    seconds = time.perf_counter() - began
    rows = sum(r["rows"] for r in results)
    summary = {
        "model_uri": uri,
        "threshold": threshold,
        "threshold_validated": validated,
        "out": str(out),
        "files": results,
        "rows": rows,
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows / max(seconds, 1e-9), 1),
    }
    logger.info("score: %d rows of %d files in %.2f s", rows, len(results), seconds)
    return summary


def _groups(spec: ScoreSpec) -> list[list[str]]:
    size = spec.files_per_task
    return [list(spec.files[i : i + size]) for i in range(0, len(spec.files), size)]


def _gather(futures: list[Any]) -> list[dict[str, Any]]:
    """Every task's results, in file order; the first failure is raised only once every
    task has ended, so no task writes into the staging folder after it is removed."""
    results, failure = [], None
    for future in futures:
        try:
            results.extend(future.result())
        except Exception as exc:  # re-raised below, after the other tasks ended
            failure = failure or exc
    if failure is not None:
        raise failure
    return results
