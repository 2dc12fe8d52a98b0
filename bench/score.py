"""`tp bench score`: `tp score` end to end on generated MOTChallenge files, by size.

The files: pedestrian-like boxes, ~100 live tracks per frame (so 100,000 rows span 1,000
frames and 1,000,000 rows 10,000), lives of 1-300 frames, rows sorted by id (as many
trackers write them). The model: the default architecture, untrained (scoring costs the
same), registered as a weights-only model in a temporary MLflow store. For each size
(`--rows`, default 100,000 and 1,000,000; the issue's 10,000,000 when asked), medians of
`--repeats` runs of:
- the command's wall time (services and imports included), the score flow's own seconds
  (load model, read, score, write; from its summary) and the peak RSS of its process tree;
- the floor, measured in the same run: a process that only reads the file and writes its
  scored copy with constant scores (`tp_models.tracks.files`), the cost no scorer avoids.
Printed as rows/s, ratio to the 50,000 rows/s target and ratio to the floor. A size whose
`tp score` passes `--max-rss-mb` is stopped and reported so, not left to take the machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.common import MemoryLimitExceeded, emit, last_json, median, run_measured
from tp_models.model.config import SEQUENCE_MODELS

TARGET_ROWS_PER_S = 50_000
FRAME_SIZE = (1080, 1920)  # (height, width)
ROWS_PER_FRAME = 100
# Reading the file and writing its scored copy, nothing else: the floor of `tp score`.
FLOOR = """
import sys
import numpy as np
from tp_models.tracks.files import read_tracks, write_scored
track_file = read_tracks(sys.argv[1])
scores = np.zeros(len(track_file.lines))
write_scored(track_file, scores, scores > 0, sys.argv[2])
"""


def write_mot_file(path: Path, n_rows: int, seed: int = 0, n_frames: int = 1000) -> int:
    """A MOTChallenge file of about `n_rows` rows (exactly `n_rows` when it can); rows."""
    rng = np.random.default_rng(seed)
    lines: list[str] = []
    track, written = 0, 0
    stream = path.open("w")
    while written + len(lines) < n_rows:
        if len(lines) >= 100_000:  # a 10,000,000-row file is not held in memory
            stream.write("\n".join(lines) + "\n")
            written, lines = written + len(lines), []
        track += 1
        life = int(rng.integers(1, min(301, n_frames + 1)))
        start = int(rng.integers(1, n_frames - life + 2))
        frames = np.arange(start, start + life)
        frames = frames[rng.random(life) < 0.9] if life > 1 else frames
        origin = rng.random(2) * [FRAME_SIZE[1] - 200, FRAME_SIZE[0] - 300] + 50
        walk = origin + np.cumsum(rng.normal(0, 2, (len(frames), 2)), axis=0)
        w, h = rng.uniform(30, 90), rng.uniform(80, 240)
        conf = rng.uniform(0.3, 1.0, len(frames))
        for f, (x, y), c in zip(frames, walk, conf, strict=True):
            lines.append(f"{f},{track},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{c:.3f},-1,-1,-1")
    lines = lines[: n_rows - written]
    stream.write("\n".join(lines) + "\n")
    stream.close()
    (path.parent / "seqinfo.ini").write_text(
        f"[Sequence]\nimWidth={FRAME_SIZE[1]}\nimHeight={FRAME_SIZE[0]}\nseqLength={n_frames}\n"
    )
    return written + len(lines)


def register_default_model(folder: Path, sequence: str | None = None) -> str:
    """An untrained default model (with ``sequence``, when given, as its sequence model)
    registered in a SQLite MLflow store under `folder`."""
    import mlflow

    from storage.mlflow_store import connect, log_and_register
    from storage.registry import MODEL_NAME, version_uri
    from tp_models.model import ModelConfig, build_pipeline, save_checkpoint

    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder / 'mlflow.db'}"
    connect()
    checkpoint = folder / "checkpoint.pt"
    config = ModelConfig(**({"sequence": sequence} if sequence else {}))
    save_checkpoint(build_pipeline(config, seed=0), checkpoint, {"operating_threshold": 0.5})
    with mlflow.start_run(run_name="bench-score"):
        mlflow.log_params({"model.features": "statistical"})
        version = log_and_register(checkpoint, MODEL_NAME)
    return version_uri(version)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tp bench score")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--rows", default="100000,1000000", help="file sizes, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--max-rss-mb", type=float, default=8000, help="stop a `tp score` run that passes this"
    )
    parser.add_argument(
        "--sequence",
        choices=SEQUENCE_MODELS,
        help="the model's sequence model (default: the config's default)",
    )
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.rows.split(",")]
    sized, lines = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        uri = register_default_model(folder, args.sequence)
        env = {"MLFLOW_TRACKING_URI": os.environ["MLFLOW_TRACKING_URI"]}
        for n in sizes:
            result = _measure(folder, n, uri, env, args.repeats, args.max_rss_mb)
            sized.append(result)
            lines += _lines(result)
    lines.append(f"  medians of {args.repeats} runs; floor: read the file and write its copy")
    emit("score", {"sizes": sized, "target_rows_per_s": TARGET_ROWS_PER_S}, args.json, lines)
    return 0


def _measure(
    folder: Path, n: int, uri: str, env: dict[str, str], repeats: int, max_rss_mb: float
) -> dict[str, object]:
    """`tp score` and the floor on a file of `n` rows, medians of `repeats`."""
    track_file = folder / f"rows-{n}" / "seq" / "tracks.txt"
    track_file.parent.mkdir(parents=True)
    rows = write_mot_file(track_file, n, n_frames=max(1000, n // ROWS_PER_FRAME))
    out = folder / f"out-{n}"
    command = [sys.executable, "-m", "flows.cli", "score", str(track_file), "--out", str(out)]
    command += ["--model-uri", uri, "--overwrite"]  # the repeats write over the first
    floor_command = [sys.executable, "-c", FLOOR, str(track_file), str(folder / "floor.txt")]
    walls, flows, rss, floors = [], [], [], []
    stopped = None
    for _ in range(repeats):
        floors.append(run_measured(floor_command).seconds)
        try:
            measured = run_measured(command, env=env, limit_mb=max_rss_mb)
        except MemoryLimitExceeded:
            stopped = f"stopped: passed {max_rss_mb:.0f} MB"
            break
        walls.append(measured.seconds)
        flows.append(last_json(measured.stdout)["seconds"])
        rss.append(measured.peak_rss_mb)
    written = (out / "tracks.txt").read_text().count("\n") if walls else 0
    shutil.rmtree(track_file.parent.parent)
    shutil.rmtree(out, ignore_errors=True)
    floor = median(floors)
    result: dict[str, object] = {"rows": rows, "floor_s": round(floor, 3)}
    if stopped:
        return {**result, "stopped": stopped}
    wall, flow = median(walls), median(flows)
    return {
        **result,
        "rows_written": written,
        "wall_s": round(wall, 3),
        "flow_s": round(flow, 3),
        "peak_rss_mb": round(median(rss)),
        "wall_rows_per_s": round(rows / wall),
        "flow_rows_per_s": round(rows / flow),
        "wall_ratio_to_target": round(rows / wall / TARGET_ROWS_PER_S, 2),
        "flow_ratio_to_target": round(rows / flow / TARGET_ROWS_PER_S, 2),
        "wall_ratio_to_floor": round(wall / floor, 2),
    }


def _lines(result: dict[str, object]) -> list[str]:
    rows = result["rows"]
    if "stopped" in result:
        return [f"{rows} rows: `tp score` {result['stopped']}; floor {result['floor_s']} s"]
    return [
        f"{rows} rows ({result['rows_written']} written): `tp score` end to end "
        f"{result['wall_s']} s = {result['wall_rows_per_s']} rows/s, ratio to the "
        f"{TARGET_ROWS_PER_S} rows/s target {result['wall_ratio_to_target']}, peak RSS "
        f"{result['peak_rss_mb']} MB",
        f"  the score flow itself (load model, read, score, write) {result['flow_s']} s = "
        f"{result['flow_rows_per_s']} rows/s, ratio {result['flow_ratio_to_target']}",
        f"  floor (read + write the file alone, its own process) {result['floor_s']} s: "
        f"`tp score` takes {result['wall_ratio_to_floor']} times the floor",
    ]


if __name__ == "__main__":
    raise SystemExit(main())
