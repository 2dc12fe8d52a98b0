"""MLflow: where runs, models and evaluations are recorded (SQLite by default).

Every run carries the data fingerprint and the git commit, so a number in the UI can be
traced to the exact data and code that made it.
"""

from __future__ import annotations

import os
import subprocess
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from storage.errors import StoreError

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
MODEL_NAME = "track-persistence"
TOKENIZER_NAME = "magvit-tokenizer"
CANDIDATE = "candidate"
EXPERIMENT = "track-persistence"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def connect(experiment: str = EXPERIMENT) -> str:
    """Point MLflow at the tracking URI and check it answers, before any work starts."""
    import mlflow

    uri = tracking_uri()
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5) as response:
                response.read()
        except OSError as exc:
            raise StoreError(
                f"MLFLOW_TRACKING_URI={uri} does not answer ({exc}); start the tracking "
                "server or unset MLFLOW_TRACKING_URI to use sqlite:///mlflow.db."
            ) from None
    elif uri.startswith("sqlite:///"):
        folder = Path(uri.removeprefix("sqlite:///")).resolve().parent
        if not os.access(folder, os.W_OK):
            raise StoreError(
                f"MLFLOW_TRACKING_URI={uri}: cannot write in {folder}; choose a writable path."
            )
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment)
    return uri


def git_commit() -> str:
    """The commit of the code that ran (with '-dirty' when the tree has local changes)."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def flat_params(prefix: str, values: Mapping[str, Any]) -> dict[str, str]:
    """Nested config -> flat MLflow params (`model.d_model`, `tracker.detector.threshold`)."""
    out: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flat_params(name, value))
        else:
            out[name] = str(value)[:500]
    return out


def _cannot_load(model_uri: str, exc: Exception) -> StoreError:
    text = str(exc).strip()
    first_line = text.splitlines()[0] if text else type(exc).__name__
    return StoreError(
        f"model {model_uri!r} cannot be loaded from {tracking_uri()} ({first_line}); "
        "train one with `tp train` or pass an existing --model-uri."
    )


def require_model(model_uri: str) -> dict[str, str]:
    """The params of the run that trained `model_uri`; a clear error if there is none."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        info = mlflow.models.get_model_info(model_uri)
        return dict(mlflow.get_run(info.run_id).data.params)
    except (MlflowException, OSError) as exc:
        raise _cannot_load(model_uri, exc) from None


def model_version_run(model_uri: str) -> tuple[Any, dict[str, str]]:
    """The loaded model behind `model_uri` and the params of the run that trained it."""
    import mlflow
    from mlflow.exceptions import MlflowException

    params = require_model(model_uri)
    try:
        model = mlflow.pytorch.load_model(model_uri, map_location="cpu")
    except (MlflowException, OSError) as exc:
        raise _cannot_load(model_uri, exc) from None
    return model, params


def run_exists(run_id: str) -> bool:
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        mlflow.get_run(run_id)
    except MlflowException:
        return False
    return True


def finished_summary(summary_file: Path, uri_key: str) -> dict[str, Any] | None:
    """A finished run's summary, if the model it registered (`summary[uri_key]`) is still in
    this tracking store; None means: run it (again), e.g. after a fresh mlflow.db."""
    import json

    if not summary_file.exists():
        return None
    summary = json.loads(summary_file.read_text())
    try:
        require_model(summary[uri_key])
    except StoreError:
        return None
    return summary


def log_and_register(model: Any, name: str, alias: str = CANDIDATE) -> str:
    """Log a torch module to the active run, register it as `name@alias`; returns the version.

    Pickle, not MLflow 3's default pt2: pt2 needs an input example and loads back as a
    GraphModule without the class's methods (`score`, `encode`); pickle loads the class.
    """
    import logging

    import mlflow
    from mlflow import MlflowClient

    logging.getLogger("mlflow.pytorch").setLevel(logging.ERROR)  # its warning about pickle
    info = mlflow.pytorch.log_model(
        model,
        name="model",
        serialization_format="pickle",
        registered_model_name=name,
        pip_requirements=["torch==2.13.0", "numpy"],  # not inferred: inference runs the model
    )
    version = str(info.registered_model_version)
    MlflowClient().set_registered_model_alias(name, alias, version)
    return version


TOKENIZER_ARTIFACT = "checkpoint/tokenizer.pt"


def tokenizer_checkpoint(tokenizer_uri: str, folder: str | Path) -> tuple[Path, str]:
    """The strict checkpoint file behind a registered tokenizer, downloaded, and its hash.

    The hash the training run logged must match the file's: the feature cache is keyed
    by it, so a swapped or truncated file must never pass as the registered tokenizer.
    """
    import mlflow

    from tp_models.magvit.checkpoint import checkpoint_hash

    params = require_model(tokenizer_uri)
    logged = params.get("tokenizer.checkpoint_hash")
    if not logged:
        raise StoreError(f"{tokenizer_uri} is not a tokenizer registered by `tp train-tokenizer`.")
    target = Path(folder) / f"{logged}.pt"
    if not target.exists():
        info = mlflow.models.get_model_info(tokenizer_uri)
        Path(folder).mkdir(parents=True, exist_ok=True)
        downloaded = mlflow.artifacts.download_artifacts(
            run_id=info.run_id, artifact_path=TOKENIZER_ARTIFACT, dst_path=str(folder)
        )
        Path(downloaded).replace(target)
    actual = checkpoint_hash(target)
    if actual != logged:
        raise StoreError(
            f"{target} hashes to {actual}, but {tokenizer_uri} logged {logged}; delete the file "
            "and run again to download it afresh."
        )
    return target, logged
