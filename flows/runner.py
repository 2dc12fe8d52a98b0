"""Where a flow's tasks run: a local Dask cluster sized to the machine, or an existing one."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any, TypeVar

import dask
from prefect.client.orchestration import get_client
from prefect.futures import as_completed
from prefect_dask import DaskTaskRunner

from flows.progress import progress

T = TypeVar("T")

# Set for worker processes before they spawn (so before NumPy is imported there). Dask's
# nanny default MALLOC_TRIM_THRESHOLD_=65536 pins glibc's mmap threshold: every array over
# 128 KiB becomes a fresh mmap whose pages are faulted in again, measured 3.65 -> 8.7 ms per
# simulated and written video. Tasks here hold one bounded chunk at a time, so malloc keeps
# its dynamic threshold. Transparent huge pages make NumPy zero whole 2 MB pages on a
# fresh process's first large allocations (measured 4-8 ms/video on the first chunk).
WORKER_SETTINGS = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.nanny.pre-spawn-environ.NUMPY_MADVISE_HUGEPAGE": "0",
    "distributed.logging.distributed": "warning",
}


@contextmanager
def local_cluster_settings() -> Iterator[None]:
    """Dask config for LocalCluster workers started by this process."""
    with dask.config.set(WORKER_SETTINGS):
        yield


@contextmanager
def _prefect_api_exported() -> Iterator[None]:
    """Let Dask worker processes report to this flow's Prefect API.

    Without PREFECT_API_URL in their environment, each worker process that runs a task
    starts a temporary Prefect server of its own (seconds each). Worker processes inherit
    the environment when they spawn, so export the URL this process talks to while the
    cluster starts, then restore the environment.
    """
    previous = os.environ.get("PREFECT_API_URL")
    with get_client(sync_client=True) as client:
        api_url = str(client.api_url)
    os.environ["PREFECT_API_URL"] = api_url
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = previous


@contextmanager
def dask_runner(workers: int, address: str | None = None) -> Iterator[DaskTaskRunner]:
    """A started DaskTaskRunner: on `address` if given, else on a LocalCluster of `workers`."""
    if address:
        runner = DaskTaskRunner(address=address)
    else:
        runner = DaskTaskRunner(
            cluster_kwargs={
                "n_workers": workers,
                "threads_per_worker": 1,
                "processes": True,
                "dashboard_address": None,
            }
        )
    with ExitStack() as stack:
        with _prefect_api_exported(), local_cluster_settings():
            stack.enter_context(runner)
            runner.client  # noqa: B018 - starts the cluster while the API URL is exported
        yield runner


def split(items: Sequence[T], parts: int) -> list[list[T]]:
    """Deal items round-robin into at most `parts` non-empty lists (balanced work units)."""
    parts = max(1, min(parts, len(items)))
    return [list(items[i::parts]) for i in range(parts)]


def run_all(runner: DaskTaskRunner, task: Any, calls: list[dict[str, Any]], label: str) -> list:
    """Submit one task per parameter set, show progress as they finish, return the results."""
    futures = [runner.submit(task, params) for params in calls]
    results = []
    with progress(len(futures), label) as advance:
        for future in as_completed(futures):
            results.append(future.result())
            advance(1)
    return results
