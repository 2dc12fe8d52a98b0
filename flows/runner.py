"""Where a flow's chunked work runs, and the one fan-out every chunked stage uses.

`dask_runner` gives a started DaskTaskRunner on the scheduler the spec names, or on a
LocalCluster of single-threaded worker processes it starts for the duration of the flow.
`map_chunks` deals a stage's chunks into a few tasks per worker, submits them, and shows
progress as they finish; the per-chunk loop itself is `tasks.chunks.run_chunks`.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext, suppress
from typing import Any, TypeVar

import dask
from distributed.diagnostics.plugin import WorkerPlugin
from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.futures import as_completed
from prefect_dask import DaskTaskRunner

from flows.progress import progress
from storage.errors import report_user_errors_once
from storage.paths import storage_env
from storage.store import Store
from tasks.chunks import ChunkResult, ChunkStage, run_chunks
from tasks.specs import Compute

T = TypeVar("T")

# Set for worker processes before they spawn (so before NumPy is imported there). Dask's
# nanny default MALLOC_TRIM_THRESHOLD_=65536 pins glibc's mmap threshold: every array over
# 128 KiB becomes a fresh mmap whose pages are faulted in again, measured 3.65 -> 8.7 ms per
# simulated and written video. Tasks here hold one bounded chunk at a time, so malloc keeps
# its dynamic threshold. Transparent huge pages make NumPy zero whole 2 MB pages on a
# fresh process's first large allocations (measured 4-8 ms/video on the first chunk).
# The workers' statistical profiler is off: it calls sys._current_frames() every 10 ms,
# which on CPython 3.11 can deadlock the worker when a garbage collection starts inside it
# and a GC callback (distributed's GC diagnosis) lets another thread take the GIL
# (python/cpython#106883). Seen here: a `tp generate` resume hung for minutes, every
# thread of one worker waiting, its main thread in that callback under trigger_profile.
WORKER_SETTINGS = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.nanny.pre-spawn-environ.NUMPY_MADVISE_HUGEPAGE": "0",
    "distributed.logging.distributed": "warning",
    "distributed.worker.profile.enabled": False,
}
# A few tasks per worker: balanced load and visible progress at ~60 ms overhead each.
TASKS_PER_WORKER = 4
# The dashboard of a local cluster listens on loopback only, on a free port; it needs bokeh
# (the `dashboard` extra), without which it stays off.
DASHBOARD_ADDRESS = "127.0.0.1:0"
_dashboards: dict[str, str] = {}  # scheduler address -> dashboard link, clusters of this process


def dashboard_address() -> str | None:
    return DASHBOARD_ADDRESS if importlib.util.find_spec("bokeh") is not None else None


def dashboard_link(scheduler_address: str | None) -> str | None:
    """The dashboard of a cluster this process started, if it has one."""
    return _dashboards.get(scheduler_address or "")


@contextmanager
def _prefect_api_exported() -> Iterator[None]:
    """Let Dask worker processes report to this process's Prefect API.

    Without PREFECT_API_URL in their environment, each worker process that runs a task
    starts a temporary Prefect server of its own (seconds each). Worker processes inherit
    the environment when they spawn, so export the URL this process talks to while the
    cluster starts, then restore the environment.
    """
    previous = os.environ.get("PREFECT_API_URL")
    with get_client(sync_client=True) as client:
        os.environ["PREFECT_API_URL"] = str(client.api_url)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = previous


@contextmanager
def dask_cluster(
    workers: int, preload: Sequence[str] = (), export_api: bool = True
) -> Iterator[str]:
    """A LocalCluster of single-threaded worker processes with `preload` modules imported.

    `export_api`: hand this process's Prefect API to the workers (not needed when
    PREFECT_API_URL is already in the environment, as the CLI sets it).
    """
    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.WARNING)
    with ExitStack() as stack:
        with (
            dask.config.set(WORKER_SETTINGS),
            _prefect_api_exported() if export_api else nullcontext(),
        ):
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=dashboard_address(),
                )
            )
        if cluster.dashboard_link and dashboard_address() is not None:
            _dashboards[cluster.scheduler_address] = cluster.dashboard_link
            stack.callback(_dashboards.pop, cluster.scheduler_address, None)
        client = stack.enter_context(Client(cluster))
        client.run(report_user_errors_once)
        for module in preload:
            client.run(importlib.import_module, module)
        yield cluster.scheduler_address


class StorageEnvironment(WorkerPlugin):
    """This process's object-store variables (`storage.paths.storage_env`: AWS_*, FSSPEC_*)
    set on every worker of the cluster, also on workers that join later, and restored when
    the run ends: a worker started without them opens s3:// stores with this run's endpoint
    and credentials. They travel in Dask's own messages, never in task parameters (which
    Prefect records) and never in a log."""

    name = "tp-storage-environment"

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self._previous: dict[str, str | None] = {}

    def __repr__(self) -> str:  # the values may be secrets
        return f"StorageEnvironment({sorted(self.env)})"

    def setup(self, worker: Any) -> None:
        self._previous = {key: os.environ.get(key) for key in self.env}
        os.environ.update(self.env)
        _forget_filesystems()

    def teardown(self, worker: Any) -> None:
        for key, value in self._previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _forget_filesystems()


def _forget_filesystems() -> None:
    """Drop cached filesystem instances and re-read fsspec's variables: the next open
    uses the environment just set."""
    import fsspec.config
    from fsspec.spec import AbstractFileSystem

    fsspec.config.conf.clear()
    fsspec.config.set_conf_files(fsspec.config.conf_dir, fsspec.config.conf)
    fsspec.config.set_conf_env(fsspec.config.conf)
    classes = [AbstractFileSystem]
    while classes:
        cls = classes.pop()
        cls.clear_instance_cache()
        classes.extend(cls.__subclasses__())


@contextmanager
def _storage_environment_on_workers(runner: DaskTaskRunner) -> Iterator[None]:
    env = storage_env()
    if not env:
        yield
        return
    client = runner.client
    client.register_plugin(StorageEnvironment(env))
    try:
        yield
    finally:
        with suppress(Exception):  # a cluster already gone has nothing to restore
            client.unregister_worker_plugin(StorageEnvironment.name)


@contextmanager
def dask_runner(compute: Compute) -> Iterator[DaskTaskRunner]:
    """A started DaskTaskRunner on `compute.dask_address`, or on a LocalCluster for the flow;
    its workers get this process's object-store configuration."""
    with ExitStack() as stack:
        address = compute.dask_address or stack.enter_context(dask_cluster(compute.n_workers()))
        runner = stack.enter_context(DaskTaskRunner(address=address))
        stack.enter_context(_storage_environment_on_workers(runner))
        yield runner


def split(items: Sequence[T], parts: int) -> list[list[T]]:
    """Deal items round-robin into at most `parts` non-empty lists (balanced work units)."""
    parts = max(1, min(parts, len(items)))
    return [list(items[i::parts]) for i in range(parts)]


def map_chunks(
    runner: DaskTaskRunner,
    stage: ChunkStage,
    store: Store,
    chunks: Sequence[int],
    workers: int,
    tasks_per_worker: int = TASKS_PER_WORKER,
) -> list[ChunkResult]:
    """Run `stage` on `chunks` of `store`, a few tasks per worker; results as chunks finish."""
    task = run_chunks.with_options(name=f"{stage.label}-chunks")
    link = dashboard_link(runner.address)
    if link:
        get_run_logger().info("%s: Dask dashboard %s", stage.label, link)
    futures = [
        runner.submit(task, {"stage": stage, "store_url": store.url, "chunks": part})
        for part in split(list(chunks), workers * tasks_per_worker)
    ]
    results: list[ChunkResult] = []
    with progress(len(futures), stage.label) as advance:
        for future in as_completed(futures):
            results.extend(future.result())
            advance(1)
    return sorted(results, key=lambda r: r.chunk)


def gather(futures: list[Any]) -> list[dict[str, Any]]:
    """Every task's results (each a list), in submission order; the first failure is raised
    only once every task has ended, so no task still writes into a folder the caller removes."""
    results, failure = [], None
    for future in futures:
        try:
            results.extend(future.result())
        except Exception as exc:  # re-raised below, after the other tasks ended
            failure = failure or exc
    if failure is not None:
        raise failure
    return results
