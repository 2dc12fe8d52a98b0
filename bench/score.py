"""`tp bench score`: `tp score` on a generated 100,000-row MOTChallenge file, end to end.

The file: pedestrians-like boxes over 1,000 frames, ~100 live tracks per frame, lives of
1-300 frames, rows sorted by id (as many trackers write them). The model: the default
architecture, untrained (scoring costs the same), registered as a weights-only model in a
temporary MLflow store. Reported: the command's wall time (services included), the score
flow's own time (load model, read, score, write), each as rows/s and as a ratio to the
target of 50,000 rows/s.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.common import emit, last_json, median, run_measured

TARGET_ROWS_PER_S = 50_000
FRAME_SIZE = (1080, 1920)  # (height, width)


def write_mot_file(path: Path, n_rows: int, seed: int = 0, n_frames: int = 1000) -> int:
    """A MOTChallenge file of about `n_rows` rows (exactly `n_rows` when it can); rows."""
    rng = np.random.default_rng(seed)
    lines: list[str] = []
    track = 0
    while len(lines) < n_rows:
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
    lines = lines[:n_rows]
    path.write_text("\n".join(lines) + "\n")
    (path.parent / "seqinfo.ini").write_text(
        f"[Sequence]\nimWidth={FRAME_SIZE[1]}\nimHeight={FRAME_SIZE[0]}\nseqLength={n_frames}\n"
    )
    return len(lines)


def register_default_model(folder: Path) -> str:
    """An untrained default model registered in a SQLite MLflow store under `folder`."""
    import mlflow

    from storage.mlflow_store import connect, log_and_register
    from storage.registry import MODEL_NAME, version_uri
    from tp_models.model import ModelConfig, build_pipeline, save_checkpoint

    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder / 'mlflow.db'}"
    connect()
    checkpoint = folder / "checkpoint.pt"
    save_checkpoint(build_pipeline(ModelConfig(), seed=0), checkpoint, {"operating_threshold": 0.5})
    with mlflow.start_run(run_name="bench-score"):
        mlflow.log_params({"model.features": "statistical"})
        version = log_and_register(checkpoint, MODEL_NAME)
    return version_uri(version)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tp bench score")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "seq").mkdir()
        track_file = folder / "seq" / "tracks.txt"
        rows = write_mot_file(track_file, args.rows)
        uri = register_default_model(folder)
        command = [sys.executable, "-m", "flows.cli", "score", str(track_file)]
        command += ["--out", str(folder / "out"), "--model-uri", uri, "--overwrite"]  # repeats
        walls, flows = [], []
        for _ in range(args.repeats):
            measured = run_measured(
                command, env={"MLFLOW_TRACKING_URI": os.environ["MLFLOW_TRACKING_URI"]}
            )
            walls.append(measured.seconds)
            flows.append(last_json(measured.stdout)["seconds"])
        scored = (folder / "out" / "tracks.txt").read_text().count("\n")
    wall, flow = median(walls), median(flows)
    results = {
        "rows": rows,
        "rows_written": scored,
        "wall_s": round(wall, 3),
        "flow_s": round(flow, 3),
        "wall_rows_per_s": round(rows / wall),
        "flow_rows_per_s": round(rows / flow),
        "wall_ratio_to_target": round(rows / wall / TARGET_ROWS_PER_S, 2),
        "flow_ratio_to_target": round(rows / flow / TARGET_ROWS_PER_S, 2),
    }
    lines = [
        f"{rows} rows ({scored} written): `tp score` end to end {wall:.2f} s = "
        f"{results['wall_rows_per_s']} rows/s, ratio to the {TARGET_ROWS_PER_S} rows/s target "
        f"{results['wall_ratio_to_target']}",
        f"  the score flow itself (load model, read, score, write) {flow:.2f} s = "
        f"{results['flow_rows_per_s']} rows/s, ratio {results['flow_ratio_to_target']}",
        f"  medians of {args.repeats} runs",
    ]
    emit("score", results, args.json, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
