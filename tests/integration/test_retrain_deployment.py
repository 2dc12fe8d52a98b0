"""Acceptance of gated retraining through a deployment: `retrain/nightly` runs on a worker
of a real `prefect server`; the registry and the Prefect API show what was decided and why.
(The gate's decisions themselves, a first champion and a weaker challenger kept out, are
tested in-process by `tests/flows/test_retrain.py`; the deployments' data path by
`test_prefect_deployment.py`.)"""

from __future__ import annotations

import shutil

import pytest
from mlflow import MlflowClient

from tests.integration.helpers import prefect_server_with_deployments

pytestmark = pytest.mark.slow


def test_nightly_retrain_deployment_makes_a_first_champion_and_records_why(small_store, tmp_path):
    mlflow_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    store = str(tmp_path / "nightly.zarr")
    shutil.copytree(small_store, store)  # the session's 100 videos with tracks
    with prefect_server_with_deployments(tmp_path, {"MLFLOW_TRACKING_URI": mlflow_uri}) as server:
        train = {
            "store": store,
            "retrain": True,
            "training": {"max_epochs": 2},
            "checkpoints": str(tmp_path / "checkpoints"),
        }
        gate = {"not_worse": ["roc_auc_full", "p_d_at_fcr_1pct_full"]}  # see test_retrain.py
        # The learned model alone (every family against it: test_import_and_score).
        spec = {"train": train, "gate": gate, "out": str(tmp_path / "night"), "families": ["model"]}
        server.run_once("retrain/nightly", spec)

        flows = {f["id"]: f["name"] for f in server.post("flows/filter")}
        runs = server.post("flow_runs/filter")
        states = [(flows[r["flow_id"]], r["state"]["type"]) for r in runs]
        ran = sorted(s for s in states if s[1] != "SCHEDULED")  # the cron's future runs wait
        assert ran == [("evaluate", "COMPLETED"), ("retrain", "COMPLETED"), ("train", "COMPLETED")]
        artifacts = server.post("artifacts/filter")
        keys = [a["key"] for a in artifacts]
        assert keys.count("promotion-decision") == 1
        assert sum(k.startswith("evaluate-v") for k in keys) == 1  # one key per version
        assert {"retrain-v1-vs-none", "evaluate-v1"} <= {r["name"] for r in runs}
        (decision,) = [a for a in artifacts if a["key"] == "promotion-decision"]
        assert "| roc_auc_full |" in decision["data"]

    client = MlflowClient(tracking_uri=mlflow_uri)
    first = client.get_model_version("track-persistence", "1")
    assert str(client.get_model_version_by_alias("track-persistence", "champion").version) == "1"
    assert first.tags["promotion.outcome"] == "first champion"
    assert first.description.startswith("first champion: v1")
    assert "@champion" in client.get_registered_model("track-persistence").description
