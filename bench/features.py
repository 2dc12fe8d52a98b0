"""`tp bench features`: the cache-features flow against a one-process encoding floor.

Works on a copy of the store with a briefly trained tokenizer in a throwaway MLflow
database: encoding speed and cache size do not depend on how well the tokenizer is trained.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch

from bench.common import BIN, emit, last_json, median, run_measured
from storage.store import Store
from tp_models.magvit import load_tokenizer


def single_process_videos_per_s(store: str, checkpoint: str, n_videos: int = 50) -> float:
    torch.set_num_threads(os.cpu_count() or 1)
    tokenizer = load_tokenizer(checkpoint)
    videos = Store.open(store).dataset.read("videos", 0, n_videos)
    with torch.inference_mode():
        tokenizer.encode(videos[:2])
        began = time.perf_counter()
        for start in range(0, n_videos, 8):
            tokenizer.encode(videos[start : start + 8])
    return n_videos / (time.perf_counter() - began)


def cache(store: str, trained: dict, folder: Path, env: dict, overwrite: bool) -> dict:
    args = [
        str(BIN / "tp"),
        "cache-features",
        store,
        "--tokenizer-uri",
        trained["tokenizer_uri"],
        "--checkpoints",
        str(folder / "ckpt"),
    ] + (["--overwrite"] if overwrite else [])
    measured = run_measured(args, env=env)
    return {
        **last_json(measured.stdout),
        "end_to_end_s": round(measured.seconds, 1),
        "peak_rss_mb": round(measured.peak_rss_mb),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tp bench features")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--store", default="data/store.zarr", help="a default store")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store = str(folder / "store.zarr")
        shutil.copytree(args.store, store)
        env = {"MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}"}
        train = [
            str(BIN / "tp"),
            "train-tokenizer",
            "--store",
            store,
            "--steps",
            "20",
            "--checkpoints",
            str(folder / "ckpt"),
        ]
        trained = last_json(run_measured(train, env=env).stdout)
        runs = [cache(store, trained, folder, env, overwrite=True) for _ in range(args.repeats)]
        rerun = cache(store, trained, folder, env, overwrite=False)
        floor = single_process_videos_per_s(store, trained["checkpoint"])
    flow_rate = median([r["videos_per_s"] for r in runs])
    results = {
        "runs": runs,
        "flow_videos_per_s_median": flow_rate,
        "single_process_videos_per_s": round(floor, 1),
        "ratio_flow_to_single_process": round(flow_rate / floor, 2),
        "cache_stored_mb": runs[0]["stored_mb"],
        "cache_raw_mb": runs[0]["raw_mb"],
        "latent_shape": runs[0]["latent_shape"],
        "rerun_same_key": rerun,
    }
    lines = [
        f"{runs[0]['videos_encoded']} videos encoded at {flow_rate:.1f} videos/s through the flow "
        f"(target >= 10), {runs[0]['seconds']:.0f} s in flow, {runs[0]['end_to_end_s']:.0f} s end "
        f"to end (target <= 300 s)",
        f"  one process, {os.cpu_count()} torch threads: {floor:.1f} videos/s; ratio "
        f"{results['ratio_flow_to_single_process']}",
        f"  cache latents {tuple(runs[0]['latent_shape'])} float16 per video: stored "
        f"{runs[0]['stored_mb']} MB (raw {runs[0]['raw_mb']} MB; target <= 1000 MB)",
        f"  re-run with the same key: encoded {rerun['videos_encoded']} videos, flow "
        f"{rerun['seconds']} s, end to end {rerun['end_to_end_s']} s",
    ]
    emit("features", results, args.json, lines)
    return 0
