"""`tp bench tracks`: extract-tracks through the flow against a single-process loop."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.common import BIN, emit, last_json, median, run_measured
from storage.store import Store
from tp_models.perception.tracker import TrackerConfig
from tp_models.tracks.arrays import extract_and_label


def single_process_videos_per_s(store: str, n_videos: int) -> float:
    """The same detection + tracking + labelling, one process, no Prefect or Dask."""
    dataset = Store.open(store).dataset
    config = TrackerConfig()
    done, seconds, chunk = 0, 0.0, 0
    while done < n_videos and chunk < dataset.n_chunks:
        data = dataset.read_chunk(chunk, ["videos", "masks", "gt_kind"])
        began = time.perf_counter()
        extract_and_label(data["videos"], data["masks"], data["gt_kind"], config)
        seconds += time.perf_counter() - began
        done += len(data["videos"])
        chunk += 1
    return done / seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tp bench tracks")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--store", help="an existing default store (else one is generated)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store or str(Path(tmp) / "bench.zarr")
        if not args.store:
            run_measured([str(BIN / "tp"), "generate", "--store", store, "--no-extract-tracks"])
        runs = []
        for _ in range(args.repeats):
            measured = run_measured([str(BIN / "tp"), "tracks", "--store", store, "--overwrite"])
            summary = last_json(measured.stdout)
            runs.append(
                {
                    **summary,
                    "end_to_end_s": round(measured.seconds, 2),
                    "peak_rss_mb": round(measured.peak_rss_mb),
                }
            )
        single = [single_process_videos_per_s(store, 500) for _ in range(args.repeats)]
    flow_rate = median([r["videos_per_s"] for r in runs])
    single_rate = median(single)
    videos = Store.open(store).dataset.n_items if args.store else runs[0]["videos_tracked"]
    results = {
        "runs": runs,
        "videos": videos,
        "in_flow_s_median": median([r["seconds"] for r in runs]),
        "end_to_end_s_median": median([r["end_to_end_s"] for r in runs]),
        "tracks_per_s_median": median([r["tracks"] / r["seconds"] for r in runs]),
        "flow_videos_per_s_median": flow_rate,
        "single_process_videos_per_s_median": round(single_rate, 1),
        "ratio_flow_to_single_process": round(flow_rate / single_rate, 2),
        "mota": runs[0]["mota"],
        "idf1": runs[0]["idf1"],
    }
    lines = [
        f"{videos} videos: extract-tracks in flow {results['in_flow_s_median']:.1f} s, end to end "
        f"{results['end_to_end_s_median']:.1f} s (median of {len(runs)}; target <= 30 s)",
        f"  {results['tracks_per_s_median']:.0f} tracks/s; flow {flow_rate:.0f} videos/s vs single "
        f"process {single_rate:.0f} videos/s: ratio {results['ratio_flow_to_single_process']:.2f}",
        f"  tracker quality: MOTA {results['mota']:.3f}, IDF1 {results['idf1']:.3f}",
    ]
    emit("tracks", results, args.json, lines)
    return 0
