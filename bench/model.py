"""`tp bench model`: inference throughput and latency, and the train flow's time and memory.

Inference is compared with the classical track score on the same tracks in the same run
(the cheapest scorer a deployment would otherwise run).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import BIN, emit, last_json, median, run_measured
from tp_models.model import ModelConfig, build_pipeline
from tp_models.model.config import SEQUENCE_MODELS
from tp_models.perception.tracker import TrackerConfig
from tp_models.scorers.track_score import TrackScore
from tp_models.tracks.arrays import arrays_to_batch, extract_and_label
from tp_models.world.config import SceneConfig
from tp_models.world.simulate import assign_video_types, simulate


def real_tracks(n_tracks: int):
    """Tracks from simulated default videos, tiled to n_tracks (25 steps each)."""
    types = assign_video_types([40, 40, 10, 10], 0)
    scene = simulate(SceneConfig(), types, np.arange(len(types)), 0)
    arrays, _ = extract_and_label(scene.videos, scene.masks, scene.kind, TrackerConfig())
    batch = arrays_to_batch(arrays)
    return batch.select(np.resize(np.arange(len(batch)), n_tracks))


def tracks_per_s(scorer, batch, repeats: int) -> float:
    scorer.score(batch.select(np.arange(256)))  # warm-up
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        scorer.score(batch)
        times.append(time.perf_counter() - began)
    return len(batch) / median(times)


def latency_ms(model, batch, n: int = 300) -> dict[str, float]:
    one = [batch.select(np.array([i])) for i in range(n)]
    model.score(one[0])
    times = []
    for track in one:
        began = time.perf_counter()
        model.score(track)
        times.append((time.perf_counter() - began) * 1e3)
    return {
        "p50": round(float(np.percentile(times, 50)), 3),
        "p90": round(float(np.percentile(times, 90)), 3),
    }


def train_run(store: str, tmp: Path, options: list[str]) -> dict:
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'bench-mlflow.db'}"}
    command = [str(BIN / "tp"), "train", "--store", store, "--checkpoints", str(tmp / "ckpt")]
    measured = run_measured([*command, *options], env=env)
    summary = last_json(measured.stdout)
    (folder,) = [p for p in (tmp / "ckpt").iterdir() if p.is_dir()]
    history = torch.load(folder / "last.pt", weights_only=True)["history"]
    best = max(range(len(history)), key=lambda i: history[i]["val_f1_full"])
    to_best = sum(h["epoch_seconds"] for h in history[: best + 1])
    return {
        "wall_s": round(measured.seconds, 1),
        "epochs": len(history),
        "best_val_f1_epoch": best,
        "best_val_f1_full": round(history[best]["val_f1_full"], 4),
        "seconds_to_best_val_f1": round(to_best, 1),
        "train_samples_per_s_median": round(median([h["train_samples_per_s"] for h in history])),
        "peak_rss_mb": round(measured.peak_rss_mb),
        "test": summary["test"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tp bench model")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--store", default="data/store.zarr", help="store with default tracks")
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--sequence", choices=SEQUENCE_MODELS, help="sequence model (default: the config's)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(os.cpu_count() or 1)
    batch = real_tracks(20_000)
    model = build_pipeline(
        ModelConfig(**({"sequence": args.sequence} if args.sequence else {})), seed=0
    )
    model_rate = tracks_per_s(model, batch, args.repeats)
    baseline_rate = tracks_per_s(TrackScore(), batch, args.repeats)
    results = {
        "inference_tracks_per_s": round(model_rate),
        "track_score_tracks_per_s": round(baseline_rate),
        "ratio_model_to_track_score": round(model_rate / baseline_rate, 3),
        "latency_ms": latency_ms(model, batch),
        "train": None,
    }
    if not args.skip_train:
        with tempfile.TemporaryDirectory() as tmp:
            options = ["--sequence", args.sequence] if args.sequence else []
            results["train"] = train_run(args.store, Path(tmp), options)
    lines = [
        f"inference: {model_rate:,.0f} tracks/s of 25 steps (target >= 20,000); classical track "
        f"score {baseline_rate:,.0f} tracks/s; ratio {results['ratio_model_to_track_score']}",
        f"one-track latency p50 {results['latency_ms']['p50']} ms, p90 "
        f"{results['latency_ms']['p90']} ms (target p50 <= 2 ms)",
    ]
    if results["train"]:
        t = results["train"]
        lines.append(
            f"train on {args.store}: best val F1 {t['best_val_f1_full']} at epoch "
            f"{t['best_val_f1_epoch']} after {t['seconds_to_best_val_f1']} s of training "
            f"(target <= 180 s); {t['epochs']} epochs, wall {t['wall_s']} s, "
            f"{t['train_samples_per_s_median']} samples/s, peak RSS {t['peak_rss_mb']} MB"
        )
        lines.append("test: " + json.dumps(t["test"]))
    emit("model", results, args.json, lines)
    return 0
