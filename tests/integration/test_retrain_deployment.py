"""Acceptance of gated retraining: `retrain/nightly` twice through a worker of a real
`prefect server`; the registry and the Prefect API show what was decided and why."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from tests.conftest import SMALL
from tests.integration.helpers import prefect_server_with_deployments

pytestmark = pytest.mark.slow

STORE = SMALL  # 100 videos: enough test tracks for the gate to tell a weak model apart


def test_nightly_retrain_promotes_the_first_model_and_keeps_it_against_a_weaker_one(tmp_path):
    mlflow_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    store = str(tmp_path / "nightly.zarr")
    with prefect_server_with_deployments(tmp_path, {"MLFLOW_TRACKING_URI": mlflow_uri}) as server:
        server.run_once(
            "generate-data/default", {**STORE, "store": store, "compute": {"workers": 2}}
        )
        for night, training in enumerate(({"max_epochs": 6}, {"max_epochs": 1, "lr": 1e-6})):
            train = {
                "store": store,
                "retrain": True,
                "training": {"patience": 6, **training},
                "checkpoints": str(tmp_path / "checkpoints"),
            }
            gate = {"not_worse": ["roc_auc_full", "p_d_at_fcr_1pct_full"]}  # see test_retrain.py
            spec = {"train": train, "gate": gate, "out": str(tmp_path / f"n{night}")}
            spec["families"] = [
                "model"
            ]  # the learned model against itself (families: test_retrain)
            server.run_once("retrain/nightly", spec)

        flows = {f["id"]: f["name"] for f in server.post("flows/filter")}
        runs = server.post("flow_runs/filter")
        states = [(flows[r["flow_id"]], r["state"]["type"]) for r in runs]
        ran = sorted(s for s in states if s[1] != "SCHEDULED")  # the cron's future runs wait
        assert ran == sorted(
            [("generate-data", "COMPLETED")]
            + [("retrain", "COMPLETED"), ("train", "COMPLETED")] * 2
            + [("evaluate", "COMPLETED")] * 3  # the first night has no champion to evaluate
        ), states
        artifacts = server.post("artifacts/filter")
        keys = [a["key"] for a in artifacts]
        assert keys.count("promotion-decision") == 2 and any(k.startswith("store-") for k in keys)
        assert sum(k.startswith("evaluate-v") for k in keys) == 3  # one key per version
        names = {r["name"] for r in runs}
        assert {"retrain-v1-vs-none", "retrain-v2-vs-v1", "evaluate-v1", "evaluate-v2"} <= names
        decisions = [a for a in artifacts if a["key"] == "promotion-decision"]
        assert all("| roc_auc_full |" in a["data"] for a in decisions)

    client = MlflowClient(tracking_uri=mlflow_uri)
    first, second = (client.get_model_version("track-persistence", v) for v in ("1", "2"))
    assert str(client.get_model_version_by_alias("track-persistence", "champion").version) == "1"
    assert first.tags["promotion.outcome"] == "champion kept"  # the second night's record
    assert second.tags["promotion.outcome"] == "champion kept"
    assert second.tags["promotion.champion_before"] == "1"
    assert "failed the gate" in second.tags["promotion.reason"]
    assert first.description.startswith("first champion: v1")
    assert second.description.startswith("champion kept: v2 (transformer) against champion v1")
    assert "@champion" in client.get_registered_model("track-persistence").description
