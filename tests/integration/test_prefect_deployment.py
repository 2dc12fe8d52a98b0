"""The README's deployment path against a real `prefect server` on loopback."""

from __future__ import annotations

import pytest
import zarr

from tests.conftest import TINY
from tests.integration.helpers import prefect_server_with_deployments

pytestmark = pytest.mark.slow


def test_pipeline_deployment_runs_on_a_worker(tmp_path):
    mlflow = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    with prefect_server_with_deployments(tmp_path, mlflow) as server:
        store = tmp_path / "deployed.zarr"
        generate = {**TINY, "store": str(store), "compute": {"workers": 1}}
        out = server.run_once(
            "pipeline/default", {"generate": generate, "out": str(tmp_path / "report")}
        )
        assert "pipeline/default" in out

        flows = {f["id"]: f["name"] for f in server.post("flows/filter")}
        # Scheduled deployments (retrain/nightly) also have future runs waiting in SCHEDULED.
        ran = sorted(
            (flows[run["flow_id"]], run["state"]["type"])
            for run in server.post("flow_runs/filter")
            if run["state"]["type"] != "SCHEDULED"
        )
        # one pipeline run, each stage one subflow run, all completed
        assert ran == [
            ("evaluate", "COMPLETED"),
            ("generate-data", "COMPLETED"),
            ("pipeline", "COMPLETED"),
            ("train", "COMPLETED"),
        ], ran
        assert {(flows[d["flow_id"]], d["name"]) for d in server.post("deployments/filter")} == {
            ("pipeline", "default"),
            ("generate-data", "default"),
            ("extract-tracks", "default-tracker"),
            ("retrain", "nightly"),
            ("evaluate", "candidate"),
        }
    assert (tmp_path / "report" / "report.json").exists()

    group = zarr.open_group(str(store), mode="r")
    assert group.attrs["complete"] and group["videos"].shape == (12, 9, 64, 64, 3)
    assert (group["_chunk_checksum"][:] != 0).all()
    assert any(key.startswith("tracks") for key in group.group_keys())
