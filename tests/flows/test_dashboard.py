"""A local Dask cluster's dashboard: on loopback, its link known while the cluster lives."""

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
