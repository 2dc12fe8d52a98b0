"""MLflow: where runs, models and evaluations are recorded (SQLite by default).

Every run carries the data fingerprint and the git commit, so a number in the UI can be
traced to the exact data and code that made it.
"""

from __future__ import annotations

import os
import subprocess
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from storage.errors import StoreError
from storage.paths import make_folders, require_writable
from storage.registry import (
    CANDIDATE,
    MODEL_NAME,
    TOKENIZER_NAME,
    alias_uri,
    parse_model_uri,
    version_uri,
)

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
EXPERIMENT = "track-persistence"
# MLflow's pyfunc loader of every model we log: storage/pyfunc.py, packaged with the model
# under a name of its own (a package named `storage` in its code would shadow ours).
LOADER_MODULE = "tp_pyfunc"
# Models logged by earlier versions name the loader of their own packaged code: still ours.
EARLIER_LOADER_MODULES = ("tp_models.serving.served", "tp_models.served")
CHECKPOINT_DATA = "data/checkpoint.pt"  # where a logged model keeps its checkpoint
DESCRIPTIONS = {  # of the registered models, shown on their registry page
    MODEL_NAME: (
        "Persistence model: the probability, at every observation, that a track is a "
        "persistent object rather than a brief false detection or clutter. Each version is a "
        "weights-only checkpoint in an MLflow pyfunc (tp_models.serving.served). @candidate: the "
        "latest trained; @champion: the version that passed the promotion gate (retrain flow) "
        "or was promoted by hand (tp promote); each version's tags say why."
    ),
    TOKENIZER_NAME: (
        "MagVit video tokenizer whose latents the magvit/hybrid persistence models read. "
        "Each version is a weights-only checkpoint in an MLflow pyfunc; @candidate: the latest."
    ),
}


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


# Tracking URI schemes MLflow can hold runs *and* a model registry in.
KNOWN_SCHEMES = ("sqlite", "http", "https", "postgresql", "mysql", "mssql", "databricks")


def check_tracking_uri(uri: str) -> None:
    """Refuse a tracking URI MLflow would fail on later, with a traceback."""
    scheme = uri.split("://", 1)[0].split("+", 1)[0] if "://" in uri else ""
    if scheme == "file" or not scheme:
        raise StoreError(
            f"MLFLOW_TRACKING_URI={uri}: a file store cannot hold the model registry this "
            "project uses; set it to sqlite:///path/to/mlflow.db or an http:// server."
        )
    if scheme not in KNOWN_SCHEMES:
        raise StoreError(
            f"MLFLOW_TRACKING_URI={uri}: unknown scheme {scheme!r}; use one of "
            f"{', '.join(s + '://' for s in KNOWN_SCHEMES)} (default {DEFAULT_TRACKING_URI})."
        )


def connect(experiment: str = EXPERIMENT) -> str:
    """Point MLflow at the tracking URI and check it answers, before any work starts."""
    import mlflow

    uri = tracking_uri()
    check_tracking_uri(uri)
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
        make_folders(str(folder), f"MLFLOW_TRACKING_URI={uri}")
        require_writable(str(folder), f"MLFLOW_TRACKING_URI={uri}")
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment)
    return uri


BUILD_COMMIT_FILE = Path(__file__).with_name("_git_commit.txt")  # written by setup.py's build


def git_commit() -> str:
    """The commit of the code that ran: the one captured when the package was built (a
    non-editable install has no repository), else the repository's HEAD (with '-dirty'
    when the tree has local changes), else "unknown"."""
    if BUILD_COMMIT_FILE.exists():
        return BUILD_COMMIT_FILE.read_text().strip() or "unknown"
    return repository_commit(Path(__file__).resolve().parent)


def repository_commit(folder: Path) -> str:
    """HEAD of the git repository around `folder` (+ '-dirty'), or "unknown"."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=folder,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def log_store_input(
    url: str, fingerprint: str, split: str, context: str, tracks: str | None = None
) -> None:
    """Record a store as a dataset input of the active run (MLflow's Datasets panel): its
    URL, data fingerprint, the split used and the tracks group."""
    import warnings

    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    with warnings.catch_warnings():  # a local path matches two equivalent source kinds
        warnings.simplefilter("ignore", UserWarning)
        source = resolve_dataset_source(url)
    name = Path(url.rstrip("/")).name or url
    dataset = MetaDataset(source, name=name, digest=fingerprint[:36])
    tags = {"split": split, "fingerprint": fingerprint, "store": url}
    if tracks:
        tags["tracks"] = tracks
    mlflow.log_input(dataset, context=context, tags=tags)


MLFLOW_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default


def ui_command(uri: str | None = None) -> str | None:
    """The one line that serves the MLflow UI for a database tracking URI (its path made
    absolute, so it works from any folder); None for a tracking server, which has its own."""
    uri = uri or tracking_uri()
    if uri.startswith(("http://", "https://")):
        return None
    if uri.startswith("sqlite:///"):
        uri = "sqlite:///" + str(Path(uri.removeprefix("sqlite:///")).resolve())
    return f"mlflow ui --backend-store-uri {uri}"


def run_url(run_id: str) -> str:
    """The run's page: on the tracking server, or on `mlflow ui`'s default address."""
    import mlflow

    uri = tracking_uri()
    base = uri.rstrip("/") if uri.startswith(("http://", "https://")) else MLFLOW_UI
    experiment = mlflow.get_run(run_id).info.experiment_id
    return f"{base}/#/experiments/{experiment}/runs/{run_id}"


def run_link(run_id: str) -> str:
    """Where a person opens a run, as text: its page, preceded for a database tracking URI
    by the command that serves the UI."""
    command = ui_command()
    return run_url(run_id) if command is None else f"{run_url(run_id)} (after `{command}`)"


def run_link_markdown(run_id: str, label: str) -> str:
    """The same as a Markdown link (Prefect artifacts render it clickable)."""
    command = ui_command()
    link = f"[{label}]({run_url(run_id)})"
    return link if command is None else f"{link}: first serve the UI with `{command}`"


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
    trainer = "tp train-tokenizer" if TOKENIZER_NAME in model_uri else "tp train"
    return StoreError(
        f"model {model_uri!r} cannot be loaded from {tracking_uri()} ({first_line}); "
        f"train one with `{trainer}` or pass an existing model URI."
    )


@dataclass(frozen=True)
class ModelRecord:
    """A registered model version as one look-up found it: the URI it was asked by, the
    version that URI names now, the run that trained it (its params) and its logged model."""

    uri: str
    name: str
    version: str
    run_id: str
    params: dict[str, str]
    model_id: str | None

    @property
    def version_uri(self) -> str:
        """`models:/name/N`: this version, whatever the alias it was asked by names later."""
        return version_uri(self.version, self.name)


# A registered version's run, params and files never change: one look-up per process.
_RESOLVED: dict[tuple[str, str], ModelRecord] = {}


def resolve_model(model_uri: str, fresh: bool = False) -> ModelRecord:
    """The version behind `model_uri` (`models:/name/N` or `models:/name@alias`) and the params
    of its training run: one look-up of the version and one of its run; a clear error if
    there is none.

    Checkpoint hashes among the params become file and group names, so each must be a hash
    as ``checkpoint_hash`` makes it, never a path: a registry value is data from strangers.
    `fresh`: ask the registry even for a version this process has resolved before.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from tp_models.magvit.digest import CHECKPOINT_HASH_LENGTH, is_checkpoint_hash

    name, version, alias = parse_model_uri(model_uri)
    key = (tracking_uri(), version_uri(version, name)) if version else None
    cached = _RESOLVED.get(key) if key and not fresh else None
    if cached is not None:
        return replace(cached, uri=model_uri)
    client = MlflowClient()
    try:
        found = (
            client.get_model_version(name, version)
            if version
            else client.get_model_version_by_alias(name, alias)
        )
        params = dict(client.get_run(found.run_id).data.params)
    except (MlflowException, OSError) as exc:
        raise _cannot_load(model_uri, exc) from None
    for key, value in params.items():
        if key.endswith("checkpoint_hash") and value != "None" and not is_checkpoint_hash(value):
            raise StoreError(
                f"model {model_uri!r} has {key}={value[:80]!r}, which is not a "
                f"{CHECKPOINT_HASH_LENGTH}-character hex checkpoint hash; refusing to use it "
                "(register a model trained by this project)."
            )
    # MLflow 3 names the logged model in the version's source (`models:/m-<id>`); its
    # `model_id` field is often left empty.
    source = str(found.source or "")
    model_id = found.model_id or (source.removeprefix("models:/") if source else None)
    record = ModelRecord(model_uri, name, str(found.version), found.run_id, params, model_id)
    _RESOLVED[(tracking_uri(), record.version_uri)] = record
    return record


def require_model(model_uri: str) -> dict[str, str]:
    """The params of the run that trained `model_uri`; a clear error if there is none."""
    return resolve_model(model_uri).params


def _download_checkpoint(record: ModelRecord, folder: str | Path) -> Path:
    """The weights-only checkpoint file of a model logged by `log_and_register`, downloaded
    into `folder`. Only that file and the MLmodel are fetched: none of the model's packaged
    code is imported and its MLmodel is read with yaml.safe_load only to check it is ours."""
    import mlflow
    import yaml
    from mlflow.exceptions import MlflowException

    not_ours = StoreError(
        f"model {record.uri!r} is not a weights-only model of this project (no "
        f"{LOADER_MODULE} pyfunc with {CHECKPOINT_DATA}); retrain it with this version."
    )
    if record.model_id is None:
        raise not_ours
    try:
        location = mlflow.get_logged_model(record.model_id).artifact_location.rstrip("/")
        mlmodel = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{location}/MLmodel", dst_path=str(folder)
        )
        flavors = (yaml.safe_load(Path(mlmodel).read_text()) or {}).get("flavors", {})
        flavor = flavors.get("python_function", {})
        loader = flavor.get("loader_module")
        if (
            loader not in (LOADER_MODULE, *EARLIER_LOADER_MODULES)
            or flavor.get("data") != CHECKPOINT_DATA
        ):
            raise not_ours
        downloaded = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{location}/{CHECKPOINT_DATA}", dst_path=str(folder)
        )
    except (MlflowException, OSError, yaml.YAMLError, AttributeError) as exc:
        raise _cannot_load(record.uri, exc) from None
    return Path(downloaded)


def _not_weights_only(model_uri: str, exc: Exception) -> StoreError:
    # torch's own message advises weights_only=False: exactly what must not be done here.
    return StoreError(
        f"model {model_uri!r} holds no weights-only checkpoint of this project "
        f"({type(exc).__name__}), so it is not loaded and nothing in it runs; retrain it or "
        "register a checkpoint made by this project."
    )


@dataclass
class LoadedModel:
    """A persistence model loaded weights-only, with what its version and checkpoint say."""

    pipeline: Any
    record: ModelRecord
    metadata: dict[str, Any]  # the checkpoint's (e.g. the validated operating threshold)


def load_model(model: str | ModelRecord, device: str = "cpu") -> LoadedModel:
    """The pipeline behind a model URI (or an already resolved version), loaded from its
    checkpoint with the domain's strict loader (``torch.load(weights_only=True)``), never by
    importing code or unpickling objects.
    `device`: where the weights go (checked by the caller: see tasks.specs.checked_device).
    """
    import pickle
    import tempfile

    import torch

    from tp_models.core.checkpoint import CheckpointMismatchError
    from tp_models.serving.served import load_scorer

    record = model if isinstance(model, ModelRecord) else resolve_model(model)
    if "tokenizer.checkpoint_hash" in record.params:  # logged by `tp train-tokenizer` only
        raise StoreError(
            f"model {record.uri!r} is a MagVit tokenizer, not a track persistence model; give "
            f"a model registered by `tp train` (e.g. {alias_uri(CANDIDATE)})."
        )
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = _download_checkpoint(record, folder)
        try:
            data = torch.load(checkpoint, map_location="cpu", weights_only=True)
            pipeline = load_scorer(data, map_location=device)
        except CheckpointMismatchError as exc:
            raise StoreError(
                f"model {record.uri!r} was made by another version of tp and does not fit this "
                f"one ({exc}); retrain it with this version's `tp train` and use the new version."
            ) from None
        except (
            pickle.UnpicklingError,
            RuntimeError,
            ValueError,
            KeyError,
            EOFError,
            AttributeError,
        ) as exc:
            raise _not_weights_only(record.uri, exc) from None
    return LoadedModel(pipeline, record, dict(data.get("metadata") or {}))


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
        resolve_model(summary[uri_key], fresh=True)
    except StoreError:
        return None
    return summary


def _served_form(checkpoint: Path) -> tuple[Any, Any, list[str]]:
    """Signature, input example and pip requirements of the served form of `checkpoint`
    (see tp_models.serving.served). Requirements are pinned to what logged the model, not inferred
    (inference would run the model)."""
    from importlib.metadata import version

    import numpy as np
    import pandas as pd
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec

    from tp_models.serving.served import (
        EXAMPLE_ROWS,
        OPTIONAL_COLUMNS,
        REQUIRED_COLUMNS,
        ServedPersistenceModel,
        load_served,
        reads_video,
    )

    served = load_served(checkpoint)
    # What the packaged tp_models imports to score (skops: gradient boosting's model).
    packages = ["torch", "numpy", "pandas", "mlflow", "scipy", "scikit-learn", "skops"]
    if isinstance(served, ServedPersistenceModel):
        types = {"frame": "long", "id": "long", "seq": "string", "im_width": "long"}
        types["im_height"] = "long"
        columns = [ColSpec(types.get(name, "double"), name) for name in REQUIRED_COLUMNS]
        columns += [
            ColSpec(types.get(name, "double"), name, required=False) for name in OPTIONAL_COLUMNS
        ]
        outputs = Schema([ColSpec("double", "p_persistent"), ColSpec("boolean", "confirmed")])
        signature = ModelSignature(Schema(columns), outputs)
        # A model that reads video features cannot score rows: no example to run at logging.
        rows_only = reads_video(served.pipeline) is None
        example = pd.DataFrame(EXAMPLE_ROWS) if rows_only else None
    else:
        size = served.tokenizer.config.spatial_downsample
        signature = ModelSignature(
            Schema([TensorSpec(np.dtype(np.uint8), (-1, -1, -1, -1, 3))]),
            Schema([TensorSpec(np.dtype(np.float32), (-1, -1, -1, -1, -1))]),
        )
        example = np.zeros((1, 1, size, size, 3), dtype=np.uint8)
        packages.append("vector-quantize-pytorch")
    requirements = [f"{name}=={version(name).split('+')[0]}" for name in packages]
    return signature, example, requirements


def log_and_register(checkpoint: str | Path, name: str, alias: str = CANDIDATE) -> str:
    """Log a strict checkpoint (model or tokenizer) to the active run as an MLflow pyfunc,
    register it as `name@alias`; returns the version.

    The pyfunc's ``loader_module`` is `storage/pyfunc.py` (packaged as ``tp_pyfunc``), with the
    checkpoint as its data and tp_models as its code: loading it reads weights only (no pickle, no
    cloudpickle), and `mlflow models serve` serves it. Our own commands read the checkpoint directly
    (`load_model`, `tokenizer_checkpoint`) and never import the packaged code.
    """
    import shutil
    import tempfile

    import mlflow
    from mlflow import MlflowClient

    import tp_models

    with tempfile.TemporaryDirectory() as staging:
        data = Path(staging) / Path(CHECKPOINT_DATA).name
        shutil.copyfile(checkpoint, data)  # the same bytes, so the same checkpoint hash
        code = Path(staging) / "code" / "tp_models"
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(Path(tp_models.__file__).parent, code, ignore=ignore)
        entry = Path(staging) / "code" / LOADER_MODULE
        entry.mkdir()
        shutil.copyfile(Path(__file__).with_name("pyfunc.py"), entry / "__init__.py")
        signature, example, requirements = _served_form(data)
        info = mlflow.pyfunc.log_model(
            name="model",
            loader_module=LOADER_MODULE,
            data_path=str(data),
            code_paths=[str(code), str(entry)],
            signature=signature,
            input_example=example,
            pip_requirements=requirements,
            registered_model_name=name,
        )
    version = str(info.registered_model_version)
    client = MlflowClient()
    client.set_registered_model_alias(name, alias, version)
    description = DESCRIPTIONS.get(name)
    if description and client.get_registered_model(name).description != description:
        client.update_registered_model(name, description=description)
    return version


def tokenizer_checkpoint(tokenizer_uri: str, folder: str | Path) -> tuple[Path, str]:
    """The strict checkpoint file behind a registered tokenizer, downloaded, and its hash.

    The hash the training run logged must match the file's: the feature cache is keyed
    by it, so a swapped or truncated file must never pass as the registered tokenizer.
    """
    import tempfile

    from tp_models.magvit.digest import checkpoint_hash

    record = resolve_model(tokenizer_uri)  # checks the logged hash is a hash, not a path
    logged = record.params.get("tokenizer.checkpoint_hash")
    if not logged or logged == "None":
        raise StoreError(f"{tokenizer_uri} is not a tokenizer registered by `tp train-tokenizer`.")
    target = Path(folder) / f"{logged}.pt"
    if not target.exists():
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as staging:
            _download_checkpoint(record, staging).replace(target)
    actual = checkpoint_hash(target)
    if actual != logged:
        raise StoreError(
            f"{target} hashes to {actual}, but {tokenizer_uri} logged {logged}; delete the file "
            "and run again to download it afresh."
        )
    return target, logged
