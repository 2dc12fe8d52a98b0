"""retrain and promote flows: the gate, the registry record and the Prefect artifacts, on a
real store, a real Prefect API and a real MLflow SQLite backend of their own."""

from __future__ import annotations

import json

import pytest
from mlflow import MlflowClient
from prefect.client.orchestration import get_client

from flows.cli import main
from flows.promote import promote
from flows.retrain import retrain
from storage.registry import MODEL_NAME, champion_version
from tasks.specs import PromoteSpec, RetrainSpec
from tests.conftest import mlflow_backend

pytestmark = pytest.mark.usefixtures("prefect_harness")
SMALL_STORE_GATE = ("roc_auc_full", "p_d_at_fcr_1pct_full")


@pytest.fixture(scope="module")
def registry(mlflow_uri, tmp_path_factory):
    """An MLflow backend of this module's own: the champion starts absent."""
    with mlflow_backend(f"sqlite:///{tmp_path_factory.mktemp('retrain-mlflow') / 'mlflow.db'}"):
        yield


def retrain_spec(store, folder, families=("model",), **training) -> RetrainSpec:
    return RetrainSpec.model_validate(
        {
            "families": list(families),
            "train": {
                "store": store,
                "retrain": True,
                "training": {"patience": 8, **training},
                "checkpoints": str(folder / "checkpoints"),
            },
            "out": str(folder / "reports"),
            # A 100-video store's test split is too small at k = 3 and 5 (one class, or a
            # handful of tracks): judge these two models on their full-length ranking.
            "gate": {"not_worse": list(SMALL_STORE_GATE)},
        }
    )


@pytest.fixture(scope="module")
def two_nights(small_store, registry, tmp_path_factory):
    """A first model (champion by default), then a deliberately weak challenger."""
    folder = tmp_path_factory.mktemp("retrain")
    first = retrain(retrain_spec(small_store, folder, max_epochs=6))
    second = retrain(retrain_spec(small_store, folder, max_epochs=1, lr=1e-6))
    return first, second


def test_first_model_becomes_champion_and_weak_challenger_does_not(two_nights):
    first, second = two_nights
    assert first["outcome"] == "first champion" and first["champion"] == first["challenger"]
    assert second["outcome"] == "champion kept" and not second["promoted"]
    assert second["champion"] == first["challenger"] == champion_version()
    assert "failed the gate" in second["reason"]
    champion, challenger = first["challenger"], second["challenger"]
    assert set(second["metrics"]) == {champion, challenger}
    theirs, ours = second["metrics"][champion], second["metrics"][challenger]
    lost = [name for name in SMALL_STORE_GATE if ours[name] < theirs[name]]
    assert lost and all(f"{name}: challenger {ours[name]:.4f}" in second["reason"] for name in lost)


def test_decision_is_recorded_on_both_versions_and_evaluation_runs(two_nights):
    _, second = two_nights
    client = MlflowClient()
    for version in (second["challenger"], second["champion"]):
        tags = client.get_model_version(MODEL_NAME, version).tags
        assert tags["promotion.outcome"] == "champion kept"
        assert tags["promotion.challenger"] == second["challenger"]
        assert json.loads(tags["promotion.gate"])["not_worse"][0] == "roc_auc_full"
        metrics = json.loads(tags[f"promotion.metrics.v{second['challenger']}"])
        assert metrics == second["metrics"][second["challenger"]]
    description = client.get_model_version(MODEL_NAME, second["challenger"]).description
    assert description.startswith("champion kept") and "failed the gate" in description
    assert "@champion" in client.get_registered_model(MODEL_NAME).description
    runs = client.search_runs(
        [client.get_experiment_by_name("track-persistence").experiment_id],
        "tags.`promotion.challenger` = '" + second["challenger"] + "'",
    )
    names = sorted(run.info.run_name for run in runs)
    assert len(names) == 2 and all(name.startswith("evaluate-v") for name in names)
    inputs = runs[0].inputs.dataset_inputs
    assert inputs and inputs[0].tags[0].key in {"mlflow.data.context", "split", "fingerprint"}


def test_artifacts_are_published(two_nights):
    with get_client(sync_client=True) as client:
        keys = {artifact.key for artifact in client.read_artifacts()}
    assert "promotion-decision" in keys
    assert any(key.startswith("evaluate-v") for key in keys)


def test_promote_by_hand_moves_champion_with_the_same_record(two_nights, tmp_path):
    _, second = two_nights
    spec = PromoteSpec.model_validate(
        {
            "version": int(second["challenger"]),
            "reason": "a person said so",
            "out": str(tmp_path),
            "gate": {"not_worse": list(SMALL_STORE_GATE)},
        }
    )
    result = promote(spec)
    assert result["champion"] == second["challenger"] == champion_version()
    assert result["outcome"] == "promoted" and "would have failed" in result["reason"]
    tags = MlflowClient().get_model_version(MODEL_NAME, second["challenger"]).tags
    assert tags["promotion.decided_by"] == "hand"


def test_bad_input_is_one_sentence(two_nights, capsys):
    assert main(["promote", "999"]) == 2
    assert "has no version 999" in capsys.readouterr().err
    assert main(["retrain", "--not-worse", "roc_auc_k4"]) == 2
    assert "unknown metric 'roc_auc_k4'" in capsys.readouterr().err
    assert main(["train", "--device", "cuda"]) == 2  # this CPU machine has no CUDA
    assert "CUDA" in capsys.readouterr().err
