"""Shared fixtures: one real Prefect test harness per session, small stores from the real flow."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


@pytest.fixture(scope="session")
def prefect_harness():
    """A real Prefect API (temporary SQLite server) for the whole session (~8 s to start)."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        # Exported too, so Dask worker processes and the CLI's `main()` use this server.
        os.environ["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
        yield
        os.environ.pop("PREFECT_API_URL", None)


TINY = dict(
    persistent=4, brief=4, noise=2, mixed=2, videos_per_chunk=3, scene={"frames": 9, "size": 64}
)


def generate_spec(store, workers: int | None = None, **values):
    """A GenerateSpec for `store` from spec-shaped values (e.g. TINY)."""
    from tasks.specs import GenerateSpec

    return GenerateSpec.model_validate(
        {"store": str(store), "compute": {"workers": workers}, **values}
    )


def tiny_cli_args(store) -> list[str]:
    """`tp generate` options that make the TINY store."""
    args = ["generate", "--store", str(store)]
    for name, value in {**TINY, **TINY["scene"]}.items():
        if name != "scene":
            args += ["--" + name.replace("_", "-"), str(value)]
    return args


def _generated_store(tmp_path_factory, name: str, workers: int, config: dict) -> str:
    """A store with tracks, made by the real generate-data flow."""
    from flows.generate_data import generate_data

    path = str(tmp_path_factory.mktemp("stores") / f"{name}.zarr")
    generate_data(generate_spec(path, workers, **config))
    return path


@pytest.fixture(scope="session")
def tiny_store(prefect_harness, tmp_path_factory):
    """A 12-video store with tracks, made once per session on 1 worker."""
    return _generated_store(tmp_path_factory, "tiny", 1, TINY)


@contextmanager
def mlflow_backend(uri: str) -> Iterator[str]:
    """MLflow pointed at `uri` for a block, in the environment (the CLI and Dask workers read
    it) and in MLflow's own setting; both are restored after, so a test with a registry of
    its own never leaves the session's @candidate behind someone else's back."""
    import mlflow

    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    try:
        yield uri
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous
        mlflow.set_tracking_uri(previous or "sqlite:///mlflow.db")


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory):
    """A real MLflow SQLite backend for the session (its schema takes seconds to create)."""
    with mlflow_backend(f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}") as uri:
        yield uri


@pytest.fixture
def own_registry(mlflow_uri, tmp_path):
    """An MLflow backend of this test's own (the session's registry is left as it was)."""
    with mlflow_backend(f"sqlite:///{tmp_path / 'own-mlflow.db'}") as uri:
        yield uri


SMALL = dict(
    persistent=40,
    brief=40,
    noise=10,
    mixed=10,
    videos_per_chunk=10,
    scene={"frames": 13, "size": 64},
)


@pytest.fixture(scope="session")
def small_store(prefect_harness, tmp_path_factory):
    """100 videos with tracks: enough for a model to learn something in a few epochs."""
    return _generated_store(tmp_path_factory, "small", 2, SMALL)


@pytest.fixture(scope="session")
def trained(small_store, mlflow_uri, tmp_path_factory):
    """The train flow's summary on the small store, with its checkpoint folder."""
    from flows.train import train
    from tasks.specs import TrainSpec

    checkpoints = tmp_path_factory.mktemp("checkpoints")
    spec = TrainSpec.model_validate(
        {
            "store": small_store,
            "training": {"max_epochs": 8, "patience": 8},
            "checkpoints": str(checkpoints),
        }
    )
    return {"summary": train(spec), "checkpoints": checkpoints, "spec": spec}


@pytest.fixture(scope="session")
def tokenizer(small_store, mlflow_uri, tmp_path_factory):
    """A small tokenizer trained by the real flow on the small store, and its cached features."""
    from flows.cache_features import cache_features
    from flows.train_tokenizer import train_tokenizer
    from tasks.specs import FeaturesSpec, TokenizerSpec

    checkpoints = tmp_path_factory.mktemp("tokenizer")
    summary = train_tokenizer(
        TokenizerSpec.model_validate(
            {
                "store": small_store,
                "training": {"steps": 30, "batch_size": 4},
                "tokenizer": {"latent_dim": 16, "spatial_downsample": 8, "codebook_size": 64},
                "checkpoints": str(checkpoints),
            }
        )
    )
    features = cache_features(
        FeaturesSpec.model_validate(
            {
                "store": small_store,
                "tokenizer_uri": summary["tokenizer_uri"],
                "compute": {"workers": 2},
                "checkpoints": str(checkpoints),
            }
        )
    )
    return {"summary": summary, "features": features, "checkpoints": checkpoints}
