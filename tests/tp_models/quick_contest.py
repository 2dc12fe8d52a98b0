"""Quick check of the classical contest on freshly simulated tracks (not the project store).

Not a test (pytest does not collect it): simulates ``--videos`` videos with the default
SceneConfig and TrackerConfig, splits them with each ``--split-seeds`` seed, fits and
evaluates ``classical_baselines()`` (gradient boosting seeded with the split seed) and
prints mean ± sd over the seeds. Run from the repository root:

    python -m tests.tp_models.quick_contest --videos 1200 --seed 11 --split-seeds 0 1 2
"""

from __future__ import annotations

import argparse

import numpy as np

from tp_models.evaluation.report import aggregate_reports, build_report, format_table
from tp_models.perception.tracker import TrackerConfig
from tp_models.scorers.boosting import GradientBoostingScorer
from tp_models.scorers.roster import classical_baselines
from tp_models.tracks.arrays import arrays_to_batch, arrays_to_meta, extract_and_label
from tp_models.world.config import VIDEO_TYPES, SceneConfig
from tp_models.world.simulate import assign_video_types, simulate
from tp_models.world.splits import split_videos


def simulated_tracks(n_videos: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    types = assign_video_types([n_videos // 4] * 4, seed)
    parts = []
    for lo in range(0, len(types), 50):
        index = np.arange(lo, min(lo + 50, len(types)))
        scenes = simulate(SceneConfig(), types[index], index, seed)
        parts.append(
            extract_and_label(scenes.videos, scenes.masks, scenes.kind, TrackerConfig())[0]
        )
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}, types


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=1200)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--split-seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    arrays, types = simulated_tracks(args.videos, args.seed)
    reports = []
    for split_seed in args.split_seeds:
        parts = {}
        for name, index in split_videos(types, split_seed).items():
            chunk = {k: v[index] for k, v in arrays.items()}
            batch = arrays_to_batch(chunk)
            batch.video = index[batch.video]
            parts[name] = (batch, arrays_to_meta(chunk, types[index], VIDEO_TYPES))
        scorers = classical_baselines()
        for scorer in scorers:
            if isinstance(scorer, GradientBoostingScorer):
                scorer.seed = split_seed
        (val, val_meta), (test, test_meta) = parts["val"], parts["test"]
        report = build_report(
            scorers, val, test, val_meta, test_meta, None, train=parts["train"][0]
        )
        reports.append(report)
        fitted = {n: s["fitted"] for n, s in report["scorers"].items() if s.get("fitted")}
        print(f"split seed {split_seed}: test tracks {len(test)}, fitted {fitted}")
    merged = aggregate_reports(reports)
    print(format_table(merged, ("f1", "roc_auc", "p_d_at_fcr_0.01", "ece")))
    print(
        "\nonline, 1 % false confirmations (threshold on validation): P_D, test FCR, "
        "observations to confirm (median, p90)"
    )
    for name, section in merged["scorers"].items():
        online = section["toc"]["online"]["fcr_0.01"]
        ttc = section["time_to_confirm"]
        cells = [online["p_d"], online["fcr"], ttc["median"], ttc["p90"]]
        print(f"{name:22s}" + "".join(f"{_cell(c):>16}" for c in cells))


def _cell(value: dict | None) -> str:
    if not value or value.get("mean") is None:
        return "-"
    return f"{value['mean']:.3f}±{value['sd'] or 0:.3f}"


if __name__ == "__main__":
    main()
