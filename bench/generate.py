"""`tp bench generate`: generate-data throughput against a one-process floor, size, memory.

Floor: one process writing pre-rendered videos through the same store code and codec
(no simulation, no Prefect, no Dask). The flow's in-flow throughput / floor says how much
of the machine the pipeline turns into stored videos; end to end includes the Prefect
server, the cluster start and the worker imports.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import BIN, emit, last_json, median, run_measured
from storage.dataset import scene_arrays
from storage.inspect import describe
from storage.store import Store
from tp_models.world.config import SceneConfig
from tp_models.world.simulate import assign_video_types, simulate

DEFAULT_COUNTS = (1000, 1000, 250, 250)
VIDEOS_PER_CHUNK = 25


def floor_videos_per_s(sigma: float, n_videos: int = 250) -> float:
    """Videos/s of one process writing already-rendered chunks through the same codec."""
    config = SceneConfig(noise_sigma=sigma)
    counts = [n_videos // 10 * 4, n_videos // 10 * 4, n_videos // 10, n_videos // 10]
    types = assign_video_types(counts, 0)
    batch = simulate(config, types, np.arange(len(types)), 0)
    data_config = {
        "scene": config.to_dict(),
        "counts": counts,
        "seed": 0,
        "videos_per_chunk": VIDEOS_PER_CHUNK,
    }
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.create(str(Path(tmp) / "floor.zarr"), data_config, len(types), False).dataset
        arrays = scene_arrays(batch)
        began = time.perf_counter()
        for chunk in range(store.n_chunks):
            start, stop = store.bounds(chunk)
            store.write_chunk(chunk, {k: v[start:stop] for k, v in arrays.items()})
        return len(types) / (time.perf_counter() - began)


def generate_run(store: Path, counts: tuple[int, ...], sigma: float) -> dict:
    args = [
        str(BIN / "tp"),
        "generate",
        "--store",
        str(store),
        "--overwrite",
        "--no-extract-tracks",
        "--noise-sigma",
        str(sigma),
        "--persistent",
        str(counts[0]),
        "--brief",
        str(counts[1]),
        "--noise",
        str(counts[2]),
        "--mixed",
        str(counts[3]),
    ]
    measured = run_measured(args)
    summary = last_json(measured.stdout)
    info = describe(str(store))
    return {
        "videos": summary["videos"],
        "end_to_end_s": round(measured.seconds, 2),
        "end_to_end_videos_per_s": round(summary["videos"] / measured.seconds, 1),
        "in_flow_videos_per_s": summary["videos_per_s"],
        "stored_mb": round(info["stored_bytes"] / 1e6, 2),
        "raw_mb": round(info["raw_bytes"] / 1e6, 1),
        "compression_ratio": info["compression_ratio"],
        "peak_rss_mb": round(measured.peak_rss_mb),
    }


def scenario(tmp: Path, counts: tuple[int, ...], sigma: float, repeats: int) -> dict:
    runs = [generate_run(tmp / f"s{sigma}-{i}.zarr", counts, sigma) for i in range(repeats)]
    floors = [floor_videos_per_s(sigma) for _ in range(repeats)]
    in_flow = median([r["in_flow_videos_per_s"] for r in runs])
    floor = median(floors)
    return {
        "sigma": sigma,
        "runs": runs,
        "end_to_end_s_median": median([r["end_to_end_s"] for r in runs]),
        "in_flow_videos_per_s_median": in_flow,
        "floor_videos_per_s_median": round(floor, 1),
        "ratio_in_flow_to_floor": round(in_flow / floor, 2),
        "stored_mb": runs[0]["stored_mb"],
        "compression_ratio": runs[0]["compression_ratio"],
        "peak_rss_mb_median": median([r["peak_rss_mb"] for r in runs]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tp bench generate")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-10k", action="store_true", help="skip the 10,000-video memory run")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clean = scenario(folder, DEFAULT_COUNTS, 0.0, args.repeats)
        noisy = scenario(folder, DEFAULT_COUNTS, 3.0, 1)
        big = None
        if not args.skip_10k:
            big = generate_run(folder / "big.zarr", tuple(4 * c for c in DEFAULT_COUNTS), 0.0)
    results = {"sigma0": clean, "sigma3": noisy, "videos_10000": big}
    lines = []
    for s in (clean, noisy):
        lines += [
            f"sigma={s['sigma']}: 2,500 videos end to end {s['end_to_end_s_median']:.1f} s "
            f"(median of {len(s['runs'])}; target <= 20 s)",
            f"  in flow {s['in_flow_videos_per_s_median']:.0f} videos/s, floor (1 process, "
            f"same codec) {s['floor_videos_per_s_median']:.0f} videos/s, ratio "
            f"{s['ratio_in_flow_to_floor']:.2f} (target >= 0.5)",
            f"  stored {s['stored_mb']:.1f} MB, compression {s['compression_ratio']}x, "
            f"peak RSS {s['peak_rss_mb_median']:.0f} MB (process tree)",
        ]
    if big:
        lines.append(
            f"10,000 videos: peak RSS {big['peak_rss_mb']} MB vs 2,500: "
            f"{clean['peak_rss_mb_median']:.0f} MB (streaming: should not grow 4x); "
            f"end to end {big['end_to_end_s']:.1f} s"
        )
    emit("generate", results, args.json, lines)
    return 0
