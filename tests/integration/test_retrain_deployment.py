"""Acceptance of gated retraining: `retrain/nightly` twice through a worker of a real
`prefect server`; the registry and the Prefect API show what was decided and why."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient

from tests.conftest import SMALL
from tests.integration.helpers import BIN, free_port, process, wait_for

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
STORE = SMALL  # 100 videos: enough test tracks for the gate to tell a weak model apart


def test_nightly_retrain_promotes_the_first_model_and_keeps_it_against_a_weaker_one(tmp_path):
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    mlflow_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "MLFLOW_TRACKING_URI": mlflow_uri,
    }

    def prefect(*args: str, timeout: float = 180) -> str:
        done = subprocess.run(
            [str(BIN / "prefect"), *args],
            cwd=REPO,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, f"prefect {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def run_deployment(name: str, spec: dict) -> None:
        prefect("deployment", "run", name, "--params", json.dumps({"spec": spec}))
        prefect("worker", "start", "--pool", "local", "--run-once", timeout=300)

    def healthy() -> bool:
        try:
            return httpx.get(f"{api}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    store = str(tmp_path / "nightly.zarr")
    server = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with process(server, env, tmp_path / "server.log"):
        wait_for(healthy, 120, "the prefect server")
        prefect("work-pool", "create", "local", "--type", "process")
        prefect("--no-prompt", "deploy", "--all")
        run_deployment(
            "generate-data/default", {**STORE, "store": store, "compute": {"workers": 2}}
        )
        for night, training in enumerate(({"max_epochs": 6}, {"max_epochs": 1, "lr": 1e-6})):
            train = {
                "store": store,
                "retrain": True,
                "training": {"patience": 6, **training},
                "checkpoints": str(tmp_path / "checkpoints"),
            }
            run_deployment("retrain/nightly", {"train": train, "out": str(tmp_path / f"n{night}")})

        flows = {f["id"]: f["name"] for f in httpx.post(f"{api}/flows/filter", json={}).json()}
        runs = httpx.post(f"{api}/flow_runs/filter", json={}, timeout=10).json()
        states = [(flows[r["flow_id"]], r["state"]["type"]) for r in runs]
        ran = sorted(s for s in states if s[1] != "SCHEDULED")  # the cron's future runs wait
        assert ran == sorted(
            [("generate-data", "COMPLETED")]
            + [("retrain", "COMPLETED"), ("train", "COMPLETED")] * 2
            + [("evaluate", "COMPLETED")] * 3  # the first night has no champion to evaluate
        ), states
        artifacts = httpx.post(f"{api}/artifacts/filter", json={}, timeout=10).json()
        keys = [a["key"] for a in artifacts]
        assert keys.count("promotion-decision") == 2 and any(k.startswith("store-") for k in keys)
        assert sum(k.startswith("evaluation-model-v") for k in keys) == 3
        decisions = [a for a in artifacts if a["key"] == "promotion-decision"]
        assert all("| roc_auc_k3 |" in a["data"] for a in decisions)

    client = MlflowClient(tracking_uri=mlflow_uri)
    first, second = (client.get_model_version("track-persistence", v) for v in ("1", "2"))
    assert str(client.get_model_version_by_alias("track-persistence", "champion").version) == "1"
    assert first.tags["promotion.outcome"] == "champion kept"  # the second night's record
    assert second.tags["promotion.outcome"] == "champion kept"
    assert second.tags["promotion.champion_before"] == "1"
    assert "failed the gate" in second.tags["promotion.reason"]
    assert first.description.startswith("first champion: v1")
    assert second.description.startswith("champion kept: v2 against champion v1")
    assert "@champion" in client.get_registered_model("track-persistence").description
