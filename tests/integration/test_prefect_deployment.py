"""The README's deployment path against a real `prefect server` on loopback."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest
import zarr

from tests.conftest import TINY
from tests.integration.helpers import BIN, free_port, process, wait_for

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def test_pipeline_deployment_runs_on_a_worker(tmp_path):
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
    }

    def prefect(*args: str, timeout: float = 180) -> str:
        done = subprocess.run(
            [str(BIN / "prefect"), *args],
            cwd=REPO,
            env={**__import__("os").environ, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, f"prefect {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def healthy() -> bool:
        try:
            return httpx.get(f"{api}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    server = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with process(server, env, tmp_path / "server.log"):
        wait_for(healthy, 120, "the prefect server")
        prefect("work-pool", "create", "local", "--type", "process")
        prefect("--no-prompt", "deploy", "--all")
        store = tmp_path / "deployed.zarr"
        generate = {**TINY, "store": str(store), "compute": {"workers": 1}}
        params = {"spec": {"generate": generate, "out": str(tmp_path / "report")}}
        out = prefect("deployment", "run", "pipeline/default", "--params", json.dumps(params))
        assert "pipeline/default" in out
        prefect("worker", "start", "--pool", "local", "--run-once", timeout=500)

        runs = httpx.post(f"{api}/flow_runs/filter", json={}, timeout=10).json()
        flows = {f["id"]: f["name"] for f in httpx.post(f"{api}/flows/filter", json={}).json()}
        # Scheduled deployments (train/nightly) also have future runs waiting in SCHEDULED.
        ran = sorted(
            (flows[run["flow_id"]], run["state"]["type"])
            for run in runs
            if run["state"]["type"] != "SCHEDULED"
        )
        # one pipeline run, each stage one subflow run, all completed
        assert ran == [
            ("evaluate", "COMPLETED"),
            ("generate-data", "COMPLETED"),
            ("pipeline", "COMPLETED"),
            ("train", "COMPLETED"),
        ], ran
        deployments = httpx.post(f"{api}/deployments/filter", json={}, timeout=10).json()
        assert {(flows[d["flow_id"]], d["name"]) for d in deployments} == {
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
