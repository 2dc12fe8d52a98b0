"""Flow `score`: tracker files in, the same files with `p_persistent` and `confirmed` out.

The model is resolved and loaded once, weights only (`storage.mlflow_store.load_model`), and its
validated operating threshold decides `confirmed`. One group of files (`files_per_task`)
scores in this process; more fan out on Dask, a group of files per task. With no Prefect
API configured, the CLI runs a run that does not fan out as `score_in_process`: the same
work without Prefect (no temporary server, no Prefect import), since those fixed costs
(~5 s) were larger than scoring 100,000 rows.

No user's file is lost: each output keeps the input's path relative to the inputs' common
folder (`seq-0001/tracks.txt` and `seq-0002/tracks.txt` stay apart under `out`) and its
permission bits, and an output that would replace an input or an existing file is refused
before anything starts unless `overwrite` is given. Every file is written into a hidden
staging folder inside `out` (named after this process, so a later run removes one that a
killed run left) and linked into place only once all succeeded; a name taken meanwhile (a
concurrent run) undoes the files already placed. Bad input in any file is one sentence
naming the file, line and column, and nothing is written, not even the `out` folder.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import socket
import stat
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from storage.errors import ParameterError, StoreError, UserError
from storage.lock import process_alive
from storage.mlflow_store import ModelRecord, connect, load_model, resolve_model
from storage.paths import folders_for, make_folders, remove_empty
from tasks.score import score_files_one_thread
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
    out = Path(spec.out)
    if out.exists() and not out.is_dir():
        raise ParameterError(f"out: {spec.out!r} is a file; give a folder for the scored files.")
    _check_outputs(spec)
    connect()
    model = _chosen_model(spec)
    features = model.params.get("model.features", "statistical")
    if features != "statistical":
        raise ParameterError(
            f"model_uri: {model.uri} reads {features!r} features of the video, which tracker "
            "files do not carry; score with a model trained with --features statistical."
        )
    return spec.model_copy(update={"model_uri": model.version_uri})


def outputs(spec: ScoreSpec) -> list[Path]:
    """Where each input's scored copy goes: its path relative to the inputs' common folder,
    under `out` (one file: `out/<its name>`)."""
    inputs = [os.path.abspath(f) for f in spec.files]
    common = os.path.commonpath([os.path.dirname(f) for f in inputs])
    return [Path(spec.out) / os.path.relpath(f, common) for f in inputs]


def _check_outputs(spec: ScoreSpec) -> None:
    """No input given twice, and no output replacing an input or an existing file unless
    `overwrite`; one sentence naming the file otherwise."""
    seen: dict[str, str] = {}
    for given in spec.files:
        key = os.path.realpath(given)
        if key in seen:
            raise ParameterError(
                f"files: {given!r} is the same file as {seen[key]!r}; give each file once."
            )
        seen[key] = given
    for given, target in zip(spec.files, outputs(spec), strict=True):
        if target.is_dir():
            raise ParameterError(
                f"out: the scored copy of {given!r} would be {str(target)!r}, which is a "
                "folder; choose another --out."
            )
        if not target.exists() or spec.overwrite:
            continue
        replaced = next((f for f in spec.files if os.path.exists(f) and target.samefile(f)), None)
        what = f"the input file {replaced!r}" if replaced else f"the existing file {str(target)!r}"
        raise ParameterError(
            f"out: the scored copy of {given!r} would replace {what}; choose another --out, "
            "or give --overwrite to replace it."
        )


def fans_out(spec: ScoreSpec) -> bool:
    """The files are scored on Dask, a group per task (more files than `files_per_task`)."""
    return len(spec.files) > spec.files_per_task


def needs_prefect(spec: ScoreSpec) -> bool:
    """A run that fans out on Dask goes through Prefect's task runner; one group of files
    scores in this process, and needs no Prefect API (`score_in_process`)."""
    return fans_out(spec)


def score_in_process(spec: ScoreSpec) -> dict[str, Any]:
    """The `score` flow's work without Prefect: for a local run with no Prefect API
    configured, where a temporary server (~4 s) and Prefect's import (~1.5 s) would cost
    more than scoring 100,000 rows. Same checks, files and summary as the flow."""
    if needs_prefect(spec):
        raise ValueError("score_in_process scores one group of files; run the score flow")
    return _score(spec, logging.getLogger("tp.score"))


def _score_flow(spec: ScoreSpec) -> dict[str, Any]:
    """Score every row of every file; returns per-file counts and the overall rows/s."""
    from prefect import get_run_logger

    return _score(spec, get_run_logger())


def __getattr__(name: str) -> Any:
    # The flow `score` is made on first use, so that `score_in_process` never imports
    # Prefect; `from flows.score import score` and the CLI's look-up both land here.
    if name != "score":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from prefect import flow

    made = flow(name="score", log_prints=True)(_score_flow)
    globals()[name] = made
    return made


def _score(spec: ScoreSpec, logger: Any) -> dict[str, Any]:
    spec = check(spec)
    uri = spec.model_uri
    began = time.perf_counter()
    loaded = load_model(uri)
    model = loaded.pipeline
    threshold, validated = operating_threshold({"metadata": loaded.metadata})
    if not validated:
        logger.warning("%s carries no validated threshold: confirmed uses %s", uri, threshold)
    out = Path(spec.out)
    targets = outputs(spec)
    with folders_for(spec.out, "out"):
        _remove_stale_staging(out)
        staging = Path(tempfile.mkdtemp(dir=out, prefix=_staging_prefix()))
        try:
            staged = [staging / target.relative_to(out) for target in targets]
            jobs = [(f, str(s)) for f, s in zip(spec.files, staged, strict=True)]
            groups = [
                jobs[i : i + spec.files_per_task] for i in range(0, len(jobs), spec.files_per_task)
            ]
            if len(groups) == 1:
                results = score_files_one_thread(model, threshold, groups[0])
            else:
                from flows.runner import dask_runner, gather
                from tasks.score import score_files

                with dask_runner(spec.compute) as runner:
                    futures = [
                        runner.submit(
                            score_files, {"model": model, "threshold": threshold, "jobs": g}
                        )
                        for g in groups
                    ]
                    results = gather(futures)
            for given, written in zip(spec.files, staged, strict=True):
                written.chmod(stat.S_IMODE(os.stat(given).st_mode))
            _place(list(zip(staged, targets, strict=True)), spec.overwrite)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    for result, target in zip(results, targets, strict=True):
        result["out"] = str(target)
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


STAGING = re.compile(r"^\.tp-score-(\d+)@(.+)-[^-]+$")  # .tp-score-<pid>@<host>-<random>


def _staging_prefix() -> str:
    return f".tp-score-{os.getpid()}@{socket.gethostname()}-"


def _remove_stale_staging(out: Path) -> None:
    """Staging folders of earlier runs whose process is gone (a SIGKILLed `tp score`)."""
    for folder in out.glob(".tp-score-*"):
        owner = STAGING.match(folder.name)
        if owner and folder.is_dir() and not process_alive(owner.group(2), owner.group(1)):
            shutil.rmtree(folder, ignore_errors=True)


def _place(moves: list[tuple[Path, Path]], overwrite: bool) -> None:
    """Move each staged file to its target. Without `overwrite` a target that appeared
    since `check` (another run) is refused, and the files placed so far are removed again."""
    placed: list[Path] = []
    made: list[str] = []
    try:
        for staged, target in moves:
            made += make_folders(str(target.parent), "out")
            if overwrite:
                staged.replace(target)
            else:
                _link_new(staged, target)
            placed.append(target)
    except BaseException:
        if not overwrite:
            for target in placed:
                target.unlink(missing_ok=True)
            remove_empty(made)
        raise


def _link_new(staged: Path, target: Path) -> None:
    """`staged` as `target`, atomically, never replacing an existing `target`."""
    taken = UserError(
        f"out: {str(target)!r} appeared while scoring (another run?); nothing was written; "
        "choose another --out, or give --overwrite to replace it."
    )
    try:
        os.link(staged, target)  # fails if target exists, unlike a rename
    except FileExistsError:
        raise taken from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV):
            raise
        if target.exists():  # a filesystem without hard links: check, then rename
            raise taken from None
        staged.replace(target)
