"""Flow `evaluate`: a registered model beside every classical baseline, on the test split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.artifacts import publish_evaluation
from flows.naming import name_flow_run
from storage.errors import StoreError
from storage.mlflow_store import (
    ModelRecord,
    connect,
    flat_params,
    git_commit,
    load_model,
    log_store_input,
    resolve_model,
    run_link,
    run_link_markdown,
)
from storage.registry import headline_tags, tag_version
from storage.store import Store
from storage.track_reader import TrackSource
from tasks.evaluate import (
    comparison,
    comparison_table,
    evaluate_scorers,
    headline_run_metrics,
)
from tasks.inspect_model import model_figures
from tasks.specs import EvaluateSpec, checked_device
from tp_models.evaluation.glossary import (
    METRICS,
    MODEL,
    best_classical,
    glossary_rows,
    headline_metrics,
)
from tp_models.scorers.roster import classical_baselines


def check_model_fits_store(run_params: dict[str, str], source: TrackSource, model_uri: str) -> None:
    """A model only scores tracks shaped like, and made like, the ones it was trained on.

    Imported tracks are the exception by design: they come from another tracker, each
    sequence carries its own frame size (mapped into the model's frame), and any length
    scores online; applying a model across worlds is exactly what they are for.
    """
    if source.store.imported:
        return
    expected = {
        "data.frame_size": str(source.store.frame_size),
        "data.frames": str(source.store.frames),
    }
    expected.update(flat_params("tracker", source.tracker))
    for key, value in expected.items():
        if run_params.get(key) not in (None, value):
            raise StoreError(
                f"model {model_uri} was trained on {key.removeprefix('data.')}={run_params[key]}, "
                f"but store {source.store.url!r} has {value}; evaluate it on a store like its own "
                "(and on tracks made with the tracker options it was trained with)."
            )


def features_hash(run_params: dict[str, str]) -> str | None:
    """The tokenizer checkpoint whose cached features the model was trained on, if any."""
    value = run_params.get("features.checkpoint_hash", "None")
    return None if value == "None" else value


def check(spec: EvaluateSpec) -> tuple[ModelRecord, TrackSource]:
    """The model's version (its training params) and the tracks to score, or a clear error
    before any work."""
    checked_device(spec.device)
    connect()
    record = resolve_model(spec.model_uri)
    store = Store.open(spec.store)
    tracks = spec.tracks or _own_tracks(record.params, store)
    source = TrackSource.open(store, tracks, features_hash(record.params))
    check_model_fits_store(record.params, source, spec.model_uri)
    return record, source


def _own_tracks(run_params: dict[str, str], store: Store) -> str | None:
    """The tracks the model was trained on, when this store has them (else the default)."""
    key = run_params.get("data.tracks")
    return key if key in store.tracks_keys() else None


# The long steps, as Prefect tasks so the run's page shows them (their inputs are live
# handles, not values: nothing to cache).
score_test_split = task(evaluate_scorers, name="score-test-split", cache_policy=NO_CACHE)
draw_model_figures = task(model_figures, name="model-figures", cache_policy=NO_CACHE)


@flow(name="evaluate", log_prints=True)
def evaluate(spec: EvaluateSpec = EvaluateSpec()) -> dict[str, Any]:
    logger = get_run_logger()
    record, source = check(spec)
    version, run_params = record.version, record.params
    title = f"evaluate-v{version}-on-{source.fingerprint[:12]}"
    name_flow_run(f"evaluate-v{version}")
    split_seed = int(run_params.get("data.split_seed", 0))
    same_data = run_params.get("data.fingerprint") == source.fingerprint
    if not same_data:
        logger.warning(
            "model %s was trained on other data (fingerprint %s, store has %s): its split "
            "seed is reused, but the test split is not the one held out at training",
            spec.model_uri,
            run_params.get("data.fingerprint"),
            source.fingerprint,
        )
    out = Path(spec.out)
    # The run starts before the work, so its duration is the evaluation's.
    with mlflow.start_run(run_name=title) as run:
        mlflow.set_tags(
            {
                "flow": "evaluate",
                "model_uri": spec.model_uri,
                "model_version": version,
                "features": run_params.get("model.features", "unknown"),
                # Runs from before the GRU existed were transformers.
                "family": run_params.get("model.family", "transformer"),
                "data.fingerprint": source.fingerprint,
                "comparison": comparison(source.fingerprint, source.tracks_key, split_seed),
                "training_run": record.run_id,
                "git_commit": git_commit(),
            }
        )
        mlflow.log_params(
            {"store": spec.store, "tracks": source.tracks_key, "split_seed": split_seed}
        )
        log_store_input(
            source.store.url,
            source.fingerprint,
            f"test (split_seed {split_seed})",
            "evaluation",
            source.tracks_key,
        )
        model = load_model(record, spec.device).pipeline
        model.name = MODEL
        scorers = [*classical_baselines(source.knows_operating_points), model]
        logger.info("scoring the test split with the model and %d baselines", len(scorers) - 1)
        result = score_test_split(source, scorers, split_seed, out)
        result.report["model"] = {"uri": spec.model_uri, "trained_on_this_data": same_data}
        figures = draw_model_figures(model, source, result.test, result.report, out)
        log_comparison(result.report)
        mlflow.log_dict(result.report, "report.json")
        for path in [*result.files, *figures]:
            mlflow.log_artifact(str(path), "evaluation")
    link = run_link(run.info.run_id)
    result.report["evaluation"] = {
        "run_id": run.info.run_id,
        "run_name": title,
        "link": link,
        "version": version,
    }
    tag_evaluated_version(version, result.report)
    publish_evaluation(result.report, title, run_link_markdown(run.info.run_id, title))
    logger.info(
        "evaluate: report and %d figures in %s; MLflow run %s",
        len(figures) + len(result.files),
        out,
        link,
    )
    return result.report


def log_comparison(report: dict[str, Any]) -> None:
    """The active run's metrics (the headline metrics of the model and of the best classical
    scorer), its comparison tables and the glossary of their names (see tasks.evaluate)."""
    best = best_classical(report)
    mlflow.set_tag("best_classical", str(best))
    mlflow.log_metrics(headline_run_metrics(report))
    mlflow.log_table(comparison_table(report), "comparison/headline.json")
    mlflow.log_table(comparison_table(report, tuple(METRICS)), "comparison/all_metrics.json")
    mlflow.log_table(columns(glossary_rows()), "comparison/glossary.json")


def columns(rows: list[dict[str, str]]) -> dict[str, list[str]]:
    return {key: [row[key] for row in rows] for key in rows[0]}


def tag_evaluated_version(version: str, report: dict[str, Any]) -> None:
    """The model version says which evaluation judged it last, on which data, with that
    evaluation's headline metrics."""
    tag_version(
        version,
        headline_tags(
            headline_metrics(report["scorers"][MODEL]),
            report["evaluation"]["run_name"],
            report["evaluation"]["run_id"],
        ),
    )
