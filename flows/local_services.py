"""Local services for a CLI run: one Prefect API and one Dask cluster, started side by side.

A flow run needs a Prefect API; without `PREFECT_API_URL`, Prefect starts a temporary
server (~5 s), and so does every Dask worker process that runs a task (a few seconds each,
measured). Here the CLI picks the port first and exports `PREFECT_API_URL` before Prefect
or any worker is imported, so the flow and all workers share one server. The server boots
while the Dask cluster starts and its workers import the task code, so the two fixed costs
overlap instead of adding up. All of it is skipped when the user brings their own
(`PREFECT_API_URL`, `--dask-address`).
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_reserved_port: int | None = None


def reserve_prefect_api() -> None:
    """Export PREFECT_API_URL for a server this process will start, before Prefect is imported.

    Prefect reads its settings when first imported; choosing the URL first means that
    whatever imports Prefect later (flows, workers) talks to the one server. A URL the user
    set is left alone.
    """
    global _reserved_port
    if os.environ.get("PREFECT_API_URL"):
        return
    _reserved_port = _free_port()
    os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{_reserved_port}/api"


@contextmanager
def prefect_api() -> Iterator[threading.Thread | None]:
    """Boot the temporary server of the reserved URL in the background.

    Yields the thread starting it (join it before the first API call), or None when the
    user brought their own PREFECT_API_URL.
    """
    if _reserved_port is None:
        yield None
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer(port=_reserved_port)
    booting = threading.Thread(target=server.start, name="prefect-server", daemon=True)
    booting.start()
    try:
        yield booting
    finally:
        booting.join()
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=5)  # send the last log lines while the server listens
        server.stop()
        release_prefect_api()


def release_prefect_api() -> None:
    global _reserved_port
    if _reserved_port is not None:
        os.environ.pop("PREFECT_API_URL", None)
        _reserved_port = None


@contextmanager
def prefect_ready() -> Iterator[None]:
    """A Prefect API for flows that need no Dask cluster (training, evaluation)."""
    with prefect_api() as booting:
        if booting is not None:
            booting.join()
        yield


@contextmanager
def dask_cluster(workers: int, preload: Sequence[str]) -> Iterator[str]:
    """A LocalCluster of single-threaded worker processes with `preload` modules imported."""
    from distributed import Client, LocalCluster

    from flows.runner import local_cluster_settings

    logging.getLogger("distributed").setLevel(logging.WARNING)
    with (
        local_cluster_settings(),
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        for module in preload:
            client.run(importlib.import_module, module)
        yield cluster.scheduler_address


@contextmanager
def local_services(workers: int, dask_address: str | None, preload: Sequence[str]) -> Iterator[str]:
    """Yield a Dask scheduler address with a Prefect API ready for flows and workers."""
    with ExitStack() as stack:
        booting = stack.enter_context(prefect_api())
        address = dask_address or stack.enter_context(dask_cluster(workers, preload))
        if booting is not None:
            booting.join()
        yield address
