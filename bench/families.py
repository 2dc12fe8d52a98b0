"""`tp bench families`: every classical family's speed, batch and online, beside the learned
model measured in the same run.

Each family is fitted (``families.fit.fit_family``) on a synthetic labelled world: random
walks seen with P_D 0.9 (persistent) among bursts of 1-4 detections (false), in a 128-px
frame, the innovation log-likelihoods made by the tracker's Kalman filter as on a store.

- batch: ``FittedFamily.score`` on ``--tracks`` tracks x ``--frames`` frames; rows/s are
  tracker rows (observed cells) per second, median of ``--repeats``; target 1,000,000;
- online: p50 and p99 ms of one ``OnlineScorer.update`` with ``--live`` tracks observed
  every frame (after 200 frames of warm-up), over ``--updates`` frames; target 0.2 ms;
- the learned model (untrained, ``--sequence``, default the GRU a tracker would run) on the
  same batch and the same frames: the ratio says how much faster a classical champion
  makes ``tp score`` and the online scorer.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import torch

from bench.common import emit
from bench.online import walks
from tp_models.core.batch import TrackBatch
from tp_models.families.fit import fit_family
from tp_models.families.names import CLASSICAL_FAMILIES
from tp_models.model import ModelConfig, build_pipeline
from tp_models.serving.online import OnlineScorer
from tp_models.tracks.table import TrackRows, rows_to_batch

FRAME = (128, 128)
TARGET_ROWS_PER_S = 1_000_000  # issue 25
TARGET_UPDATE_MS = 0.2


def world(n_tracks: int, n_frames: int, seed: int) -> TrackBatch:
    """Labelled tracks (see module): half persistent walks, half short false bursts."""
    rng = np.random.default_rng(seed)
    position = walks(n_tracks, n_frames, seed)
    persistent = rng.random(n_tracks) < 0.5
    start = rng.integers(0, n_frames // 2, n_tracks)
    life = np.where(persistent, n_frames, rng.integers(1, 5, n_tracks))
    frame = np.arange(n_frames)[None, :]
    alive = (frame >= start[:, None]) & (frame < (start + life)[:, None])
    seen = alive & (rng.random((n_tracks, n_frames)) < np.where(persistent, 0.9, 0.7)[:, None])
    seen[np.arange(n_tracks), start] = True  # every track has a first detection
    track, t = np.nonzero(seen)
    xy = position[track, t] + rng.normal(0, 0.5, (track.size, 2))
    rows = TrackRows(
        frame=t.astype(np.int64) + 1,
        track_id=track.astype(np.int64),
        x=xy[:, 0],
        y=xy[:, 1],
        w=np.full(track.size, 6.0),
        h=np.full(track.size, 6.0),
        conf=np.full(track.size, np.nan),
        frame_size=FRAME,
        n_frames=n_frames,
    )
    batch, _, _ = rows_to_batch(rows, labels={i: int(p) for i, p in enumerate(persistent)})
    batch.frame_size = None  # already in the families' frame
    return batch


def median_seconds(work: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return float(np.median(times))


def online_ms(scorer: OnlineScorer, position: np.ndarray, updates: int) -> tuple[float, float]:
    """p50, p99 ms of one update of all live tracks, after 200 frames of warm-up."""
    ids = np.arange(position.shape[0])
    times = []
    for t in range(200 + updates):
        rows = {"track_id": ids, "x": position[:, t, 0], "y": position[:, t, 1]}
        began = time.perf_counter()
        scorer.update(t + 1, rows)
        if t >= 200:
            times.append(time.perf_counter() - began)
    return (
        round(float(np.percentile(times, 50)) * 1e3, 4),
        round(float(np.percentile(times, 99)) * 1e3, 4),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tp bench families", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--tracks", type=int, default=4000, help="tracks of the batch")
    parser.add_argument("--frames", type=int, default=50, help="frames of the batch")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--live", type=int, default=100, help="live tracks online")
    parser.add_argument("--updates", type=int, default=300, help="frames timed online")
    parser.add_argument("--sequence", choices=("transformer", "gru"), default="gru")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    train, val = world(2000, 30, seed=1), world(2000, 30, seed=2)
    batch = world(args.tracks, args.frames, seed=3)
    rows = int(batch.observed.sum())
    position = walks(args.live, 200 + args.updates, seed=4)
    model = build_pipeline(ModelConfig(sequence=args.sequence), seed=0).eval()
    with torch.inference_mode():
        model_s = median_seconds(lambda: model.score(batch), max(1, args.repeats // 2))
    model_p50, model_p99 = online_ms(OnlineScorer(model), position, args.updates)
    results: dict[str, Any] = {
        "rows": rows,
        "tracks": args.tracks,
        "frames": args.frames,
        "live": args.live,
        "model": {
            "sequence": args.sequence,
            "rows_per_s": round(rows / model_s),
            "update_p50_ms": model_p50,
            "update_p99_ms": model_p99,
        },
        "families": {},
    }
    for name in CLASSICAL_FAMILIES:
        began = time.perf_counter()
        fitted = fit_family(name, train, val, FRAME, seed=0)
        fit_s = time.perf_counter() - began
        seconds = median_seconds(lambda fitted=fitted: fitted.score(batch), args.repeats)
        p50, p99 = online_ms(OnlineScorer(fitted), position, args.updates)
        results["families"][name] = {
            "fit_s": round(fit_s, 2),
            "rows_per_s": round(rows / seconds),
            "rows_ratio_to_target": round(rows / seconds / TARGET_ROWS_PER_S, 2),
            "rows_ratio_to_model": round(model_s / seconds, 1),
            "update_p50_ms": p50,
            "update_p99_ms": p99,
            "update_ratio_to_target": round(p50 / TARGET_UPDATE_MS, 2),
            "update_ratio_to_model": round(p50 / model_p50, 2),
        }
    emit("families", results, args.json, lines_of(results))
    return 0


def lines_of(results: dict[str, Any]) -> list[str]:
    model = results["model"]
    lines = [
        f"batch: {results['tracks']} tracks x {results['frames']} frames, {results['rows']} rows; "
        f"online: {results['live']} live tracks, 1 torch thread",
        f"{'family':<18} {'rows/s':>11} {'x target':>9} {'x model':>8} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'/target':>8} {'/model':>7}",
        f"{'model (' + model['sequence'] + ')':<18} {model['rows_per_s']:>11,} {'':>9} {'':>8} "
        f"{model['update_p50_ms']:>8.3f} {model['update_p99_ms']:>8.3f}",
    ]
    for name, r in results["families"].items():
        lines.append(
            f"{name:<18} {r['rows_per_s']:>11,} {r['rows_ratio_to_target']:>9.2f} "
            f"{r['rows_ratio_to_model']:>8.1f} {r['update_p50_ms']:>8.3f} "
            f"{r['update_p99_ms']:>8.3f} {r['update_ratio_to_target']:>8.2f} "
            f"{r['update_ratio_to_model']:>7.2f}"
        )
    lines.append(
        f"targets: >= {TARGET_ROWS_PER_S:,} rows/s in batch (x target >= 1), <= "
        f"{TARGET_UPDATE_MS} ms per frame online (/target <= 1)"
    )
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
