"""Shared fixtures: one real Prefect test harness per session, small stores from the real flow."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


@pytest.fixture(scope="session")
def prefect_harness():
    """A real Prefect API (temporary SQLite server) for the whole session (~8 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


TINY = dict(persistent=4, brief=4, noise=2, mixed=2, videos_per_chunk=3, frames=9, size=64)


@pytest.fixture(scope="session")
def tiny_store(prefect_harness, tmp_path_factory):
    """A 12-video store with tracks, made once by the real generate-data flow (1 worker)."""
    from flows.generate_data import generate_data
    from flows.params import GenerateParams

    path = str(tmp_path_factory.mktemp("stores") / "tiny.zarr")
    generate_data(GenerateParams(store=path, workers=1, **TINY))
    return path
