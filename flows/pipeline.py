"""Flow `pipeline`: every stage as a subflow, so one run of the whole pipeline is one flow run.

generate-data (with tracks) -> [train-tokenizer -> cache-features] -> train -> evaluate.
One local Dask cluster serves every chunked stage unless the spec names a scheduler.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from flows.cache_features import cache_features
from flows.evaluate import evaluate
from flows.generate_data import check as check_generate
from flows.generate_data import generate_data
from flows.runner import dask_cluster
from flows.train import train
from flows.train_tokenizer import train_tokenizer
from storage.mlflow_store import connect
from tasks.specs import (
    CANDIDATE_TOKENIZER,
    Compute,
    EvaluateSpec,
    FeaturesSpec,
    PipelineSpec,
    TokenizerSpec,
    TrainSpec,
)
from tp_models.evaluation.report import aggregate_reports
from tp_models.model import ModelConfig, TrainConfig

CHUNKED_TASKS = ("tasks.generate", "tasks.tracks", "tasks.features")  # workers import them


def check(spec: PipelineSpec) -> None:
    """Refuse what cannot run (store, MLflow) before any service starts."""
    check_generate(spec.generate)
    connect()


@flow(name="pipeline", log_prints=True)
def pipeline(spec: PipelineSpec = PipelineSpec()) -> dict[str, Any]:
    logger = get_run_logger()
    store = spec.generate.store
    with ExitStack() as stack:
        compute = spec.generate.compute
        if not compute.dask_address:
            preload = CHUNKED_TASKS if spec.features != "statistical" else CHUNKED_TASKS[:2]
            address = stack.enter_context(dask_cluster(compute.n_workers(), preload))
            compute = Compute(workers=compute.n_workers(), dask_address=address)
        data = generate_data(spec.generate.model_copy(update={"compute": compute}))
        tokenizer_uri = CANDIDATE_TOKENIZER
        if spec.features != "statistical":
            tokenizer_uri = train_tokenizer(TokenizerSpec(store=store))["tokenizer_uri"]
            cache_features(FeaturesSpec(store=store, tokenizer_uri=tokenizer_uri, compute=compute))
    reports, trained = [], []
    for seed in spec.training_seeds:
        model = ModelConfig(features=spec.features, sequence=spec.sequence)
        trained.append(
            train(
                TrainSpec(
                    store=store,
                    model=model,
                    training=TrainConfig(seed=seed),
                    tokenizer_uri=tokenizer_uri,
                )
            )
        )
        out = spec.out if len(spec.training_seeds) == 1 else f"{spec.out}/seed-{seed}"
        evaluated = EvaluateSpec(store=store, model_uri=trained[-1]["model_uri"], out=out)
        reports.append(evaluate(evaluated))
    report = reports[0] if len(reports) == 1 else aggregate_reports(reports)
    if len(reports) > 1:  # the seeds' spread, next to each seed's own report
        Path(spec.out).mkdir(parents=True, exist_ok=True)
        (Path(spec.out) / "report.json").write_text(json.dumps(report, indent=2))
    summary = {
        "store": store,
        "videos": data["videos"],
        "fingerprint": data["fingerprint"],
        "model_uri": trained[-1]["model_uri"],
        "model_uris": [t["model_uri"] for t in trained],
        "features": spec.features,
        "sequence": spec.sequence,
        "train_seconds": sum(t["train_seconds"] for t in trained),
        "report_dir": spec.out,
        "report": report,
    }
    logger.info("pipeline done: models %s, report in %s", summary["model_uris"], spec.out)
    return summary
