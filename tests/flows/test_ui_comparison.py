"""What a person sees when comparing runs in the MLflow and Prefect UIs: runs named by what
they are, one value per metric name (the report's), the model against the best classical
scorer first, registry versions that say what they are; on the session's real store, real
MLflow SQLite backend and real Prefect API."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterName

from flows.cli import main
from flows.evaluate import evaluate
from storage.mlflow_store import ui_command
from storage.registry import MODEL_NAME, version_uri
from tasks.specs import EvaluateSpec
from tp_models.evaluation.glossary import HEADLINE, METRICS

pytestmark = pytest.mark.usefixtures("prefect_harness", "mlflow_uri")


@pytest.fixture(scope="module")
def three_evaluations(trained, small_store, tmp_path_factory):
    """Three registered versions (the trained one and two more of the same logged model)
    evaluated one after the other, as three trainings and their evaluations would be."""
    client = MlflowClient()
    first = client.get_model_version(MODEL_NAME, trained["summary"]["model_version"])
    versions = [first.version] + [
        client.create_model_version(MODEL_NAME, first.source, first.run_id).version
        for _ in range(2)
    ]
    out = tmp_path_factory.mktemp("three")
    evaluations = []
    for version in versions:
        started = time.time()
        spec = EvaluateSpec(
            store=small_store, model_uri=version_uri(version), out=str(out / f"v{version}")
        )
        report = evaluate(spec)
        evaluations.append((str(version), report, time.time() - started))
    return evaluations


def _run(report):
    return mlflow.get_run(report["evaluation"]["run_id"])


def test_three_evaluations_are_told_apart_and_grouped(three_evaluations):
    fingerprint = three_evaluations[0][1]["data"]["fingerprint"]
    names = set()
    for version, report, _ in three_evaluations:
        run = _run(report)
        assert run.info.run_name == f"evaluate-v{version}-on-{fingerprint[:12]}"
        assert run.data.tags["model_version"] == version
        assert run.data.tags["data.fingerprint"] == fingerprint  # the full one
        names.add(run.info.run_name)
    assert len(names) == 3
    comparison = _run(three_evaluations[0][1]).data.tags["comparison"]
    assert comparison.startswith(fingerprint + "/")
    grouped = mlflow.search_runs(filter_string=f"tags.comparison = '{comparison}'")
    assert set(names) <= set(grouped["tags.mlflow.runName"])
    assert any(name.startswith("train-statistical-seed") for name in grouped["tags.mlflow.runName"])


def test_every_logged_metric_is_the_reports_value_of_the_same_name(three_evaluations):
    for _, report, _ in three_evaluations:
        run = _run(report)
        best = run.data.tags["best_classical"]
        assert best in report["scorers"] and best != "model"
        scorers = {"0_model": "model", "1_best_classical": best}
        metrics = run.data.metrics
        assert set(metrics) == {
            f"{group}/{name}"
            for group, scorer in scorers.items()
            for name in HEADLINE
            if METRICS[name].read(report["scorers"][scorer]) is not None
        }
        assert "0_model/ece_pooled" in metrics and "0_model/time_to_confirm_median" in metrics
        for logged, value in metrics.items():
            group, name = logged.split("/", 1)
            expected = METRICS[name].read(report["scorers"][scorers[group]])
            assert value == pytest.approx(expected, abs=1e-12), logged
        # The two numbers that differed before: pooled ECE and time to confirm at 1 %.
        model = report["scorers"]["model"]
        assert metrics["0_model/ece_pooled"] == pytest.approx(model["calibration"]["pooled"]["ece"])
        assert metrics["0_model/time_to_confirm_median"] == model["time_to_confirm"]["median"]


def test_the_runs_tables_glossary_and_duration(three_evaluations):
    version, report, seconds = three_evaluations[-1]
    run = _run(report)
    folder = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id))
    headline = json.loads((folder / "comparison" / "headline.json").read_text())
    assert headline["columns"][:2] == ["scorer", "role"]
    assert headline["columns"][2:] == list(HEADLINE)
    rows = [dict(zip(headline["columns"], row, strict=True)) for row in headline["data"]]
    assert [row["role"] for row in rows[:2]] == ["model", "best classical"]
    assert len(rows) == len(report["scorers"])
    every = json.loads((folder / "comparison" / "all_metrics.json").read_text())
    assert set(every["columns"][2:]) == set(METRICS)
    glossary = json.loads((folder / "comparison" / "glossary.json").read_text())
    assert [row[0] for row in glossary["data"]][: len(HEADLINE)] == list(HEADLINE)
    assert (folder / "report.json").exists()
    duration = (run.info.end_time - run.info.start_time) / 1000
    assert duration > 0.5 * seconds, (duration, seconds)  # the run spans the evaluation


def test_training_run_charts_curves_first_and_its_test_check_by_name(trained):
    run = mlflow.get_run(trained["summary"]["run_id"])
    assert run.info.run_name == "train-statistical-seed0"
    client = MlflowClient()
    epochs = trained["summary"]["epochs"]
    for name in run.data.metrics:  # outside a `name/` group: learning curves only
        if "/" not in name and name != "best_epoch":
            assert len(client.get_metric_history(run.info.run_id, name)) == epochs, name
    test = trained["summary"]["test"]
    for name in HEADLINE:
        if name in test:
            assert run.data.metrics[f"test/{name}"] == pytest.approx(test[name])


def test_registry_versions_say_what_they_are_and_who_judged_them(three_evaluations, trained):
    client = MlflowClient()
    for version, report, _ in three_evaluations:
        found = client.get_model_version(MODEL_NAME, version)
        tags = found.tags
        assert tags["headline.judged_by"] == report["evaluation"]["run_name"]
        assert tags["headline.judged_by_run_id"] == report["evaluation"]["run_id"]
        value = report["scorers"]["model"]["k"]["full"]["roc_auc"]
        assert float(tags["headline.roc_auc_full"]) == pytest.approx(value, rel=1e-3)
        assert "headline.roc_auc_full" in tags and report["evaluation"]["run_name"] in (
            found.description
        )
    first = client.get_model_version(MODEL_NAME, trained["summary"]["model_version"])
    assert first.tags["features"] == "statistical" and first.tags["family"] == "transformer"
    assert first.tags["training.seed"] == "0" and first.tags["training.run_name"].startswith(
        "train-statistical-seed0"
    )
    assert first.tags["data.fingerprint"] == three_evaluations[0][1]["data"]["fingerprint"]
    assert "transformer on statistical features" in first.description
    description = client.get_registered_model(MODEL_NAME).description
    assert "@candidate" in description and "@champion" in description


def test_prefect_artifacts_per_version_with_a_link_and_named_flow_runs(three_evaluations):
    with get_client(sync_client=True) as client:
        # The latest of each key: other modules' registries of this session (their own
        # MLflow databases, the same Prefect API) have versions of the same number.
        artifacts = {a.key: a for a in sorted(client.read_artifacts(), key=lambda a: a.created)}
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_="evaluate-v"))
        )
        trains = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_="train-statistical"))
        )
        tasks = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id for run in runs]))
        )
    assert trains
    assert {"score-test-split", "model-figures"} <= {t.name.rsplit("-", 1)[0] for t in tasks}
    run_names = {run.name for run in runs}
    for version, report, _ in three_evaluations:
        key = report["evaluation"]["run_name"].lower()
        assert key in artifacts, key
        markdown = artifacts[key].data
        link = r"\]\(http://127\.0\.0\.1:5000/#/experiments/\d+/runs/[0-9a-f]+\)"
        assert re.search(link, markdown)
        assert f"`{ui_command()}`" in markdown and "sqlite:////" in markdown
        model_row = next(line for line in markdown.splitlines() if line.startswith("| **model**"))
        cells = [cell.strip() for cell in model_row.strip("|").split("|")]
        headline = dict(zip(HEADLINE, cells[2:], strict=True))
        metrics = _run(report).data.metrics
        for name, cell in headline.items():
            logged = metrics.get(f"0_model/{name}")
            assert cell == ("-" if logged is None else f"{logged:.3f}"), name
        assert f"evaluate-v{version}" in run_names


def test_ui_command_for_a_database_and_none_for_a_server(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert ui_command("sqlite:///mlflow.db") == (
        f"mlflow ui --backend-store-uri sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    )
    assert ui_command("http://mlflow.example:5000") is None


def test_tp_report_uses_the_glossary_names(three_evaluations, capsys):
    _, report, _ = three_evaluations[0]
    path = Path(report["data"]["store"]).parent / "report-copy.json"
    path.write_text(json.dumps(report))
    assert main(["report", str(path)]) == 0
    printed = capsys.readouterr().out
    assert "time_to_confirm_median" in printed and "ece_pooled" in printed
    model_line = next(
        line for line in printed.splitlines()[::-1] if line.startswith("model ")
    )  # the operating-point table is printed last
    ece = report["scorers"]["model"]["calibration"]["pooled"]["ece"]
    assert f"{ece:.3f}" in model_line


def test_tp_report_of_several_reports_prints_mean_and_sd(three_evaluations, capsys):
    """One report per training seed, as `tp report seed-*/report.json` reads them."""
    reports = [report for _, report, _ in three_evaluations[:2]]
    paths = []
    for i, report in enumerate(reports):
        paths.append(Path(report["data"]["store"]).parent / f"report-{i}.json")
        paths[-1].write_text(json.dumps(report))
    assert main(["report", *map(str, paths)]) == 0
    printed = capsys.readouterr().out
    model_line = next(line for line in printed.splitlines() if line.startswith("model "))
    values = [r["scorers"]["model"]["k"]["full"]["roc_auc"] for r in reports]
    assert f"{np.mean(values):.3f}±{np.std(values, ddof=1):.3f}" in printed, model_line


def test_tp_report_refuses_reports_of_different_test_splits(three_evaluations, capsys):
    report = three_evaluations[0][1]
    other = {**report, "data": {**report["data"], "fingerprint": "another-store"}}
    paths = []
    for i, content in enumerate((report, other)):
        paths.append(Path(report["data"]["store"]).parent / f"mixed-{i}.json")
        paths[-1].write_text(json.dumps(content))
    before = [p.read_bytes() for p in paths]
    assert main(["report", *map(str, paths)]) == 2
    err = capsys.readouterr().err.strip()
    assert "not scored on the same test split" in err and err.count("\n") == 0
    assert [p.read_bytes() for p in paths] == before
