"""`tp bench online`: the online scorer's cost per frame against re-running the sequence.

100 live tracks, all observed every frame, default model (kinematics and the hand-made
track features). At track ages 10, 50 and 200 frames: p50 milliseconds of one
``OnlineScorer.update`` (one frame for all tracks) and of ``pipeline.score`` on the whole
sequence so far (what scoring a new frame costs without the cache), measured in the same
run; their ratio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from bench.common import emit
from tp_models.core.batch import TrackBatch
from tp_models.model import ModelConfig, build_pipeline
from tp_models.serving.online import OnlineScorer

AGES = (10, 50, 200)


def walks(n_tracks: int, n_frames: int, seed: int = 0) -> np.ndarray:
    """(n_tracks, n_frames, 2) random-walk positions in a 128-px frame."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, 1.5, (n_tracks, n_frames, 2))
    return (rng.random((n_tracks, 1, 2)) * 128 + np.cumsum(steps, axis=1)).astype(np.float32)


def as_batch(position: np.ndarray) -> TrackBatch:
    b, t = position.shape[:2]
    nan = np.full((b, t), np.nan, np.float32)
    return TrackBatch(
        position=position,
        observed=np.ones((b, t), dtype=bool),
        area=nan,
        color=np.full((b, t, 3), np.nan, np.float32),
        loglik=nan,
        label=np.full(b, -1, np.int8),
        video=np.zeros(b, np.int64),
    )


def p50_ms(times: list[float]) -> float:
    return round(float(np.median(times)) * 1e3, 3)


def measure(model, n_tracks: int, age: int, repeats: int) -> dict[str, float]:
    position = walks(n_tracks, age + repeats)
    ids = np.arange(n_tracks)
    scorer = OnlineScorer(model)

    def rows(t: int) -> dict[str, np.ndarray]:
        return {"track_id": ids, "x": position[:, t, 0], "y": position[:, t, 1]}

    for t in range(age - 1):
        scorer.update(t + 1, rows(t))
    online = []
    for t in range(age - 1, age - 1 + repeats):
        began = time.perf_counter()
        scorer.update(t + 1, rows(t))
        online.append(time.perf_counter() - began)
    full_batch = as_batch(position[:, :age])
    model.score(full_batch)
    full = []
    for _ in range(repeats):
        began = time.perf_counter()
        model.score(full_batch)
        full.append(time.perf_counter() - began)
    return {
        "age": age,
        "online_p50_ms": p50_ms(online),
        "rerun_p50_ms": p50_ms(full),
        "ratio_rerun_to_online": round(float(np.median(full) / np.median(online)), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tp bench online")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--tracks", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = build_pipeline(ModelConfig(), seed=0)
    rows = [measure(model, args.tracks, age, args.repeats) for age in AGES]
    lines = [
        f"{args.tracks} live tracks, age {r['age']:>3}: update p50 {r['online_p50_ms']} ms/frame "
        f"(target <= 2 ms); re-running the sequence {r['rerun_p50_ms']} ms; "
        f"ratio {r['ratio_rerun_to_online']}"
        for r in rows
    ]
    emit("online", {"tracks": args.tracks, "threads": args.threads, "ages": rows}, args.json, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
