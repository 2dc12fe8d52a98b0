"""generate-data on a real `dask scheduler` + 2 `dask worker` processes on loopback."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from tasks.specs import Compute
from tests.conftest import TINY, generate_spec
from tests.integration.helpers import BIN, free_port, port_open, process, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


def test_flow_on_an_existing_dask_cluster(tmp_path, tiny_store):
    from distributed import Client
    from prefect.settings import PREFECT_API_URL

    from flows.generate_data import generate_data

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {"PREFECT_API_URL": str(PREFECT_API_URL.value())}  # workers report to the test API
    env["DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED"] = "False"  # as the README's workers
    scheduler = [
        str(BIN / "dask"),
        "scheduler",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-dashboard",
    ]
    worker = [
        str(BIN / "dask"),
        "worker",
        address,
        "--nthreads",
        "1",
        "--no-dashboard",
        "--host",
        "127.0.0.1",
    ]
    with (
        process(scheduler, env, tmp_path / "scheduler.log"),
        process(worker, env, tmp_path / "worker1.log"),
        process(worker, env, tmp_path / "worker2.log"),
    ):
        wait_for(lambda: port_open(port), 60, "the dask scheduler")
        with Client(address) as client:
            client.wait_for_workers(2, timeout=120)
            store = tmp_path / "distributed.zarr"
            spec = generate_spec(store, **TINY).model_copy(
                update={"compute": Compute(dask_address=address)}
            )
            summary = generate_data(spec)
            workers_used = client.run(lambda: True)
        assert len(workers_used) == 2
    assert summary["videos_written"] == 12 and summary["tracks"]["tracks"] > 0
    ours, reference = zarr.open_group(str(store), mode="r"), zarr.open_group(tiny_store, mode="r")
    for name in reference.array_keys():
        np.testing.assert_array_equal(ours[name][:], reference[name][:], err_msg=name)
    assert ours.attrs["fingerprint"] == reference.attrs["fingerprint"]
