"""A local Dask cluster: its dashboard on loopback, its link known while the cluster lives;
its workers without the statistical profiler (see `flows.runner.WORKER_SETTINGS`)."""

from __future__ import annotations

import httpx
import pytest

from flows.runner import dashboard_link, dask_cluster


def test_local_cluster_dashboard_is_on_loopback_and_answers():
    pytest.importorskip("bokeh")  # the `dashboard` extra; without it the dashboard stays off
    with dask_cluster(1, export_api=False) as address:
        link = dashboard_link(address)
        assert link is not None and link.startswith("http://127.0.0.1:")
        assert httpx.get(link, follow_redirects=True, timeout=10).status_code == 200
    assert dashboard_link(address) is None


def _profiler_enabled() -> bool:
    import dask

    return bool(dask.config.get("distributed.worker.profile.enabled"))


def test_local_cluster_workers_run_without_the_statistical_profiler():
    from distributed import Client

    with dask_cluster(2, export_api=False) as address, Client(address) as client:
        assert client.run(_profiler_enabled) == dict.fromkeys(
            client.scheduler_info()["workers"], False
        )
