"""Task: train the persistence model on a store's tracks, checkpointing and logging to MLflow.

A run is identified by what determines its result (data fingerprint, model and training
config, split seed). Its checkpoint folder holds the last epoch's state and the MLflow run
id, so re-running the same training after an interruption continues at the next epoch,
in the same MLflow run; re-running a finished one returns its summary.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import torch
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from storage.mlflow_store import (
    CHECKPOINT_DATA,
    finished_summary,
    flat_params,
    git_commit,
    log_and_register,
    log_store_input,
    run_exists,
    tracking_uri,
)
from storage.registry import MODEL_NAME, headline_tags, tag_version, version_uri
from storage.track_reader import TrackSource, shuffled_training_batches
from tasks.evaluate import comparison, evaluate_scorers
from tasks.specs import TrainSpec
from tp_models.evaluation.glossary import MODEL, flat_metrics, headline_metrics
from tp_models.families.fit import fit_family
from tp_models.families.fitted import FittedFamily, family_checkpoint, parameters
from tp_models.families.names import MODEL_FAMILY
from tp_models.model import ModelConfig, build_pipeline, fit, save_checkpoint
from tp_models.model.calibration import calibrate
from tp_models.tracks.running import HANDMADE_FEATURES

# What a training run does beyond its configs; a change here makes earlier runs not reused.
PROCEDURE = "fit, then Platt scaling on validation"
CLASSICAL_PROCEDURE = "fit or tune on train (families.fit), then Platt scaling on validation"
# Inside a long epoch (tens of minutes on a large imported store), a log line at most this
# often: a worker's log, CI or `| tee` show progress where no bar is drawn.
LOG_EVERY_S = 30.0


def run_key(fingerprint: str, model: ModelConfig, spec: TrainSpec) -> str:
    # The hand-made features' names: a model or family fitted on other features is another
    # run (its checkpoint would not even load).
    features = list(HANDMADE_FEATURES)
    train, split_seed = spec.training, spec.split_seed
    inputs = [fingerprint, model.to_dict(), train.to_dict(), split_seed, PROCEDURE, features]
    if spec.family != MODEL_FAMILY:  # a classical family reads the seed of `train` only
        inputs = [fingerprint, spec.family, train.seed, split_seed, CLASSICAL_PROCEDURE, features]
    if spec.train_videos is not None:  # (all the train videos keep the keys they had)
        inputs.append({"train_videos": spec.train_videos})
    text = json.dumps(
        inputs,
        sort_keys=True,
        default=str,
    )
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _every(seconds: float, report: Callable[..., None]) -> Callable[..., None]:
    """`report`, called at most once per `seconds` (the first call after that much time)."""
    last = time.monotonic()

    def maybe(*args: Any) -> None:
        nonlocal last
        if time.monotonic() - last >= seconds:
            last = time.monotonic()
            report(*args)

    return maybe


def _save_atomically(state: dict[str, Any], path: Path) -> None:
    partial = path.with_suffix(".partial")
    torch.save(state, partial)
    os.replace(partial, path)


def run_name(model: ModelConfig, spec: TrainSpec) -> str:
    """`train-statistical-seed0` (what the model read) or `train-gradient_boosting-seed0`
    (a classical family), with the seed, and `-videos1000` when trained on a subset."""
    what = model.features if spec.family == MODEL_FAMILY else spec.family
    subset = "" if spec.train_videos is None else f"-videos{spec.train_videos}"
    return f"train-{what}-seed{spec.training.seed}{subset}"


def family_name(model: ModelConfig, family: str) -> str:
    """The family a version is tagged with: the learned model's architecture, or the
    classical family."""
    return model.sequence if family == MODEL_FAMILY else family


@task(name="train-model", cache_policy=NO_CACHE)  # its inputs are live handles, not values
def train_model(
    source: TrackSource,
    model_cfg: ModelConfig,
    spec: TrainSpec,
    tags: dict[str, str],
    features_hash: str | None = None,
    advance: Callable[..., None] | None = None,
) -> dict[str, Any]:
    """Train, or resume / return the training with the same inputs; `spec.retrain` starts anew.

    `advance(n, **latest)` is told of every finished epoch (a progress bar, see
    flows.progress)."""
    logger = get_run_logger()
    torch.set_num_threads(os.cpu_count() or 1)
    split_seed, train_cfg = spec.split_seed, spec.training
    splits = source.store.splits(split_seed, spec.train_videos)
    key = run_key(source.fingerprint, model_cfg, spec)
    if spec.retrain:  # e.g. the nightly schedule: same inputs, a new run and model version
        key += "-" + time.strftime("%Y%m%dT%H%M%S")
    folder = Path(spec.checkpoints) / key
    folder.mkdir(parents=True, exist_ok=True)
    finished = finished_summary(folder / "summary.json", "model_uri")
    if finished is not None:
        logger.info("training %s already finished; returning its summary", folder)
        return finished

    resume = None
    if (folder / "last.pt").exists():
        resume = torch.load(folder / "last.pt", weights_only=True)
        logger.info("resuming from %s after epoch %d", folder / "last.pt", resume["epoch"])
    run_id_file = folder / "mlflow_run_id"
    run_id = run_id_file.read_text().strip() if run_id_file.exists() else None
    if run_id is not None and not run_exists(run_id):
        logger.warning("MLflow run %s is not in %s: logging to a new run", run_id, tracking_uri())
        run_id = None
    val_batch, _ = source.load(splits["val"])

    name = run_name(model_cfg, spec)
    family = family_name(model_cfg, spec.family)
    learned = spec.family == MODEL_FAMILY
    with mlflow.start_run(run_id=run_id, run_name=name) as run:
        if run_id is None:
            run_id_file.write_text(run.info.run_id)
            mlflow.set_tags(
                {
                    **tags,
                    "git_commit": git_commit(),
                    "family": family,
                    "data.fingerprint": source.fingerprint,
                    "training.seed": str(train_cfg.seed),
                    "comparison": comparison(source.fingerprint, source.tracks_key, split_seed),
                }
            )
            mlflow.log_params(
                {
                    **(
                        {
                            **flat_params("model", model_cfg.to_dict()),
                            **flat_params("train", train_cfg.to_dict()),
                        }
                        if learned
                        else {"train.seed": str(train_cfg.seed)}
                    ),
                    "model.family": family,
                    **flat_params("tracker", source.tracker),
                    "data.store": source.store.url,
                    "data.tracks": source.tracks_key,
                    "data.fingerprint": source.fingerprint,
                    "data.frames": str(source.store.frames),
                    "data.frame_size": str(source.store.frame_size),
                    "data.split_seed": str(split_seed),
                    "data.train_videos": str(spec.train_videos or "all"),
                    "features.checkpoint_hash": str(features_hash),
                    **{f"data.videos_{k}": str(len(v)) for k, v in splits.items()},
                    "git_commit": git_commit(),
                }
            )
            mlflow.log_dict({k: v.tolist() for k, v in splits.items()}, "split.json")
            for split in ("train", "val", "test"):
                log_store_input(
                    source.store.url,
                    source.fingerprint,
                    f"{split} (split_seed {split_seed})",
                    "training" if split != "test" else "testing",
                    source.tracks_key,
                )

        def on_epoch(epoch: int, metrics: dict[str, float], state: dict[str, Any]) -> None:
            mlflow.log_metrics(metrics, step=epoch)  # one batched call per epoch
            _save_atomically(state, folder / "last.pt")
            logger.info(
                "epoch %d: train_loss %.4f val_loss %.4f val_f1_full %.3f (%.1f s)",
                epoch,
                metrics["train_loss"],
                metrics["val_loss"],
                metrics.get("val_f1_full", float("nan")),
                metrics["epoch_seconds"],
            )
            if advance is not None:
                latest = ("val_loss", "val_f1_full", "elapsed_seconds")
                advance(1, **{k: metrics[k] for k in latest if k in metrics})

        if not learned:
            train_batch, _ = source.load(splits["train"])
            scorer = fit_family(
                spec.family, train_batch, val_batch, model_cfg.frame_size, train_cfg.seed
            )
            scale, shift = scorer.calibration
            mlflow.log_params(flat_params("family", parameters(scorer)))
            return _register(
                source, scorer, spec, family, name, run, (scale, shift), {}, folder, model_cfg
            )
        pipeline = build_pipeline(model_cfg, seed=train_cfg.seed)
        result = fit(
            pipeline,
            shuffled_training_batches(source, splits["train"]),
            [val_batch],
            train_cfg,
            on_epoch=on_epoch,
            resume_state=resume,
            device=spec.device,
            on_step=_every(
                LOG_EVERY_S,
                lambda epoch, tracks: logger.info(
                    "epoch %d: %d training tracks so far", epoch, tracks
                ),
            ),
        )
        scale, shift = calibrate(pipeline, val_batch)  # Platt scaling on validation
        extra = {
            "epochs": len(result.history),
            "best_epoch": result.best_epoch,
            "best_val_loss": result.best_val_loss,
            "train_seconds": round(float(np.sum([h["epoch_seconds"] for h in result.history])), 1),
        }
        mlflow.log_metric("best_epoch", result.best_epoch)
        return _register(
            source, pipeline, spec, family, name, run, (scale, shift), extra, folder, model_cfg
        )


def _register(
    source: TrackSource,
    scorer: Any,
    spec: TrainSpec,
    family: str,
    name: str,
    run: Any,
    calibration: tuple[float, float],
    extra: dict[str, Any],
    folder: Path,
    model_cfg: ModelConfig,
) -> dict[str, Any]:
    """Check a fitted model (learned or classical) on the test split, log it and register
    it as a version of the persistence model, tagged with its family; its summary."""
    split_seed = spec.split_seed
    features = model_cfg.features if spec.family == MODEL_FAMILY else "statistical"
    scorer.name = MODEL
    report = evaluate_scorers(source, [scorer], split_seed).report
    section = report["scorers"][MODEL]
    # Learning curves lead the run's charts; the test split's check is grouped after them
    # under `test/` (headline metrics only: report.json of an evaluate run has the rest).
    mlflow.log_metrics(
        {
            **{f"test/{key}": value for key, value in headline_metrics(section).items()},
            "calibration/scale": calibration[0],
            "calibration/shift": calibration[1],
        }
    )
    with tempfile.TemporaryDirectory() as staging:
        checkpoint = Path(staging) / Path(CHECKPOINT_DATA).name
        metadata = {"operating_threshold": section["threshold"]}  # validated operating point
        if isinstance(scorer, FittedFamily):
            torch.save(family_checkpoint(scorer, metadata), checkpoint)
        else:
            save_checkpoint(scorer, checkpoint, metadata)
        version = log_and_register(checkpoint, MODEL_NAME)
    tag_version(
        version,
        {
            "features": features,
            "family": family,
            "data.fingerprint": source.fingerprint,
            "data.split_seed": str(split_seed),
            "data.tracks": source.tracks_key,
            "training.seed": str(spec.training.seed),
            "training.run_name": name,
            **headline_tags(headline_metrics(section), f"{name} (test split)", run.info.run_id),
        },
    )
    summary = {
        "run_id": run.info.run_id,
        "model_uri": version_uri(version),
        "model_version": version,
        "family": family,
        "features": features,
        **extra,
        "test": flat_metrics(section),
    }
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))
    get_run_logger().info("trained %s: %s", summary["model_uri"], summary)
    return summary
