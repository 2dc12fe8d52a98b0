"""train and evaluate flows on a real store, a real Prefect API and a real MLflow SQLite backend."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from flows.cli import main
from flows.evaluate import evaluate
from storage.mlflow_store import load_model
from storage.store import Store
from storage.track_reader import TrackSource
from tasks.specs import EvaluateSpec, TracksSpec
from tp_models.model import build_pipeline
from tp_models.model.calibration import calibrate

pytestmark = pytest.mark.usefixtures("prefect_harness", "mlflow_uri")


def test_training_learns_and_logs_everything(trained, small_store):
    run = mlflow.get_run(trained["summary"]["run_id"])
    params, tags = run.data.params, run.data.tags
    source = TrackSource.open(Store.open(small_store))
    assert params["data.fingerprint"] == source.fingerprint == tags["data.fingerprint"]
    assert params["git_commit"] and tags["features"] == "statistical"
    assert params["model.n_layers"] == "4" and params["data.split_seed"] == "0"
    losses = [m.value for m in MlflowClient().get_metric_history(run.info.run_id, "train_loss")]
    assert len(losses) == trained["summary"]["epochs"] >= 3
    assert losses[-1] < losses[0]
    test = trained["summary"]["test"]
    assert test["roc_auc_full"] > 0.6  # chance is 0.5
    split = json.loads(
        Path(
            mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="split.json")
        ).read_text()
    )
    assert not set(split["train"]) & set(split["test"])
    assert not set(split["train"]) & set(split["val"])


def test_registered_model_loads_back_and_scores_identically(trained, small_store):
    # Its own version: another test of the session may have moved @candidate since.
    loaded = load_model(trained["summary"]["model_uri"]).pipeline
    source = TrackSource.open(Store.open(small_store))
    splits = source.store.splits(0)
    test, _ = source.load(splits["test"])
    (folder,) = [p for p in Path(trained["checkpoints"]).iterdir() if p.is_dir()]
    state = torch.load(folder / "last.pt", weights_only=True)
    # The best epoch's weights, then Platt scaling on validation, as training does.
    reference = build_pipeline(loaded.config)
    reference.load_state_dict(state["best_model"], strict=True)
    calibrate(reference, source.load(splits["val"])[0])
    assert reference.head.calibration.tolist() != [1.0, 0.0]
    np.testing.assert_allclose(loaded.score(test), reference.score(test), atol=1e-6)


def test_rerun_of_finished_training_returns_its_summary(trained):
    from flows.train import train

    again = train(trained["spec"])
    assert again == trained["summary"]


def test_evaluate_puts_model_beside_baselines(trained, small_store, tmp_path):
    out = tmp_path / "report"
    uri = trained["summary"]["model_uri"]
    report = evaluate(EvaluateSpec(store=small_store, out=str(out), model_uri=uri))
    assert "model" in report["scorers"] and "m_of_n_3_5" in report["scorers"]
    assert report["model"]["trained_on_this_data"] is True
    json.dumps(report, allow_nan=False)
    for name in ("report.json", "f1_by_k.png", "roc_full.png", "confusion_full.png"):
        assert (out / name).stat().st_size > 0, name
    assert list(out.glob("attention_*.png")) and list(out.glob("gallery_*.png"))
    runs = mlflow.search_runs(filter_string="tags.flow = 'evaluate'")
    # On this small test split k = 3 has persistent tracks only: no ROC-AUC there.
    assert len(runs) >= 1 and "metrics.0_model/roc_auc_full" in runs.columns


def test_bad_model_uri_and_mismatched_store(trained, tiny_store, small_store, capsys):
    assert main(["evaluate", "--store", small_store, "--model-uri", "models:/nope@candidate"]) == 2
    assert "cannot be loaded" in capsys.readouterr().err
    uri = trained["summary"]["model_uri"]  # 9 frames, the model trained on 13
    assert main(["evaluate", "--store", tiny_store, "--model-uri", uri]) == 2
    assert "trained on frames=13" in capsys.readouterr().err


def test_train_needs_tracks_and_a_reachable_tracking_server(
    tmp_path, tiny_store, monkeypatch, capsys
):
    assert main(["train", "--store", tiny_store, "--tracks", "0123abcd"]) == 2
    assert "tp tracks" in capsys.readouterr().err
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    assert main(["train", "--store", tiny_store]) == 2
    assert "does not answer" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:  # argparse refuses a value outside the choices
        main(["train", "--store", tiny_store, "--features", "colour"])
    assert usage.value.code == 2 and "--features" in capsys.readouterr().err


def test_evaluate_refuses_tracks_from_another_tracker_config(
    trained, small_store, tmp_path, capsys
):
    import shutil

    from flows.extract_tracks import extract_tracks

    copy = tmp_path / "copy.zarr"
    shutil.copytree(small_store, copy)
    spec = TracksSpec.model_validate(
        {"store": str(copy), "tracker": {"max_misses": 3}, "compute": {"workers": 1}}
    )
    other = extract_tracks(spec)["tracks_group"].removeprefix("tracks/")
    assert main(["evaluate", "--store", str(copy), "--tracks", other]) == 2
    assert "tracker.max_misses=2" in capsys.readouterr().err
