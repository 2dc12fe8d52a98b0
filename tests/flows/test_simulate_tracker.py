"""A world nobody here wrote, end to end: Stone Soup's simulator and tracker -> tracker files
with ground truth -> import (labels by distance) -> train -> evaluate, on a tiny scenario."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("stonesoup")

from flows.cli import EXIT_USAGE, main  # noqa: E402
from tp_models.world.stone_soup import (  # noqa: E402
    DRIFT_RANGE,
    TrackerScenario,
    simulate_sequence,
)

TINY = TrackerScenario(area=300.0, scans=15, initial_targets=3, birth_rate=0.2, clutter_rate=2.0)
TINY_ARGS = ["--area=300", "--scans=15", "--initial-targets=3", "--clutter-rate=2"]


def test_a_sequence_depends_on_its_seed_alone():
    first, again = simulate_sequence(TINY, 7), simulate_sequence(TINY, 7)
    np.testing.assert_array_equal(first.tracks, again.tracks)
    np.testing.assert_array_equal(first.truth, again.truth)
    assert not np.array_equal(first.tracks, simulate_sequence(TINY, 8).tracks)
    # Rows are (frame, id, x, y) inside the area, frames 1..scans.
    for table in (first.tracks, first.truth):
        assert table[:, 0].min() >= 1 and table[:, 0].max() <= TINY.scans
        assert ((table[:, 2:] >= 0) & (table[:, 2:] <= TINY.area)).all()
    # Clutter starts a track on every unassociated detection: far more tracks than targets.
    assert np.unique(first.tracks[:, 1]).size > np.unique(first.truth[:, 1]).size


def test_a_fixed_operating_point_draws_what_it_drew_before_drift_existed():
    sequence = simulate_sequence(TINY, 7)
    digest = hashlib.sha256(sequence.tracks.tobytes() + sequence.truth.tobytes()).hexdigest()
    assert digest[:16] == "30b26a5829b11838"  # at commit cafded2, before `drift`
    assert (sequence.operating_point[:, 1:] == (TINY.p_detect, TINY.clutter_rate)).all()


def test_a_drifting_operating_point_is_the_one_the_sensor_used():
    drifting = dataclasses.replace(TINY, scans=150, drift=0.2)
    sequence = simulate_sequence(drifting, 7)
    frame, p_detect, clutter_rate = sequence.operating_point.T
    assert (frame == np.arange(1, 151)).all()
    assert (p_detect[0], clutter_rate[0]) == (TINY.p_detect, TINY.clutter_rate)
    # It wanders inside the named operating points' range (this start lies inside it).
    for values, (lo, hi) in ((p_detect, DRIFT_RANGE[:, 0]), (clutter_rate, DRIFT_RANGE[:, 1])):
        assert lo - 1e-9 <= values.min() < values.max() <= hi + 1e-9
        assert values.max() - values.min() > (hi - lo) / 4
    # The sensor used it: the tracker starts more tracks in scans with more clutter.
    first = np.unique(sequence.tracks[:, 1], return_index=True)[1]
    births = np.bincount(sequence.tracks[first, 0].astype(int), minlength=151)[1:]
    assert np.corrcoef(births, clutter_rate)[0, 1] > 0.3
    assert not np.array_equal(sequence.tracks, simulate_sequence(TINY, 7).tracks)


def test_named_operating_points_set_detection_and_clutter():
    dense = TINY.with_operating_point("dense")
    assert (dense.p_detect, dense.clutter_rate) == (0.7, 30.0) and dense.area == TINY.area
    with pytest.raises(ValueError, match="sparse"):
        TINY.with_operating_point("foggy")


def test_simulate_import_train_evaluate(prefect_harness, own_registry, tmp_path, capsys):
    out = tmp_path / "new" / "ss"  # folders that do not exist yet are made
    args = ["simulate-tracker", "--out", str(out), "--sequences=6", "--sequences-per-task=3"]
    assert main([*args, *TINY_ARGS, "--workers=2"]) == 0
    run = json.loads((out / "simulate-tracker.json").read_text())
    assert [s["sequence"] for s in run["sequences"]] == [f"seq-{i:04d}" for i in range(1, 7)]
    # The same files whatever the workers: one task in this process gives the same bytes.
    again = tmp_path / "again"
    assert main([*args[:2], str(again), "--sequences=6", "--sequences-per-task=6", *TINY_ARGS]) == 0
    for name in ("tracks.csv", "gt.csv", "seqinfo.ini", "operating_point.csv"):
        assert (out / "seq-0004" / name).read_bytes() == (again / "seq-0004" / name).read_bytes()
    # An earlier run's folder is not replaced unless asked.
    assert main([*args, *TINY_ARGS]) == EXIT_USAGE
    assert "--overwrite" in capsys.readouterr().err

    tracks = sorted(str(p) for p in out.glob("seq-*/tracks.csv"))
    truth = sorted(str(p) for p in out.glob("seq-*/gt.csv"))
    store = str(tmp_path / "ss.zarr")
    gate = ["--distance-gate=10", "--window=5"]
    assert main(["import-tracks", *tracks, "--gt", *truth, "--store", store, *gate]) == 0
    imported = json.loads(capsys.readouterr().out)
    assert imported["tracks"] > imported["persistent"] > 0
    checkpoints = str(tmp_path / "checkpoints")
    assert main(["train", "--store", store, "--max-epochs=1", "--checkpoints", checkpoints]) == 0
    trained = json.loads(capsys.readouterr().out)
    report = tmp_path / "report"
    uri = trained["model_uri"]
    assert main(["evaluate", "--store", store, "--model-uri", uri, "--out", str(report)]) == 0
    saved = json.loads((report / "report.json").read_text())
    assert "model" in saved["scorers"] and "gradient_boosting" in saved["scorers"]
    assert not [name for name in saved["scorers"] if name.startswith("oracle")]
    assert Path(report / "report.json").stat().st_size > 0


def test_a_negative_drift_is_one_sentence_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "ss"
    args = ["simulate-tracker", "--out", str(out), "--sequences=1", *TINY_ARGS, "--drift=-0.1"]
    assert main(args) == EXIT_USAGE
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "drift" in error[0] and "greater than or equal to 0" in error[0]
    assert not out.exists()


def test_an_import_with_operating_points_gives_the_oracle_each_scans_truth(
    prefect_harness, tmp_path, capsys
):
    from storage.store import Store
    from storage.track_reader import TrackSource
    from tp_models.perception.tracker import TRACKER_FRAME

    out = tmp_path / "ss"
    simulate = ["simulate-tracker", "--out", str(out), "--sequences=4", "--sequences-per-task=4"]
    assert main([*simulate, *TINY_ARGS, "--drift=0.2"]) == 0
    names = sorted(p.name for p in out.glob("seq-*"))
    files = {
        name: [str(out / sequence / name) for sequence in names]
        for name in ("tracks.csv", "gt.csv", "operating_point.csv")
    }
    store = tmp_path / "ss.zarr"
    args = ["import-tracks", *files["tracks.csv"], "--gt", *files["gt.csv"], "--store", str(store)]
    args += ["--distance-gate=10", "--window=5", "--items-per-chunk=3", "--operating-points"]
    capsys.readouterr()
    # One file short, or a broken one: one sentence, no store.
    assert main([*args, *files["operating_point.csv"][:3]]) == EXIT_USAGE
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "operating_points: give one operating-point file" in error[0]
    broken = tmp_path / "broken.csv"
    broken.write_text("frame,p_detect,clutter_rate\n1,0.9,2\n2,1.2,2\n")
    assert main([*args, *files["operating_point.csv"][:3], str(broken)]) == EXIT_USAGE
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and f"{broken}, line 3, column 'p_detect'" in error[0]
    assert not store.exists()

    assert main([*args, *files["operating_point.csv"]]) == 0
    imported = Store.open(str(store))
    points = imported.operating_points
    source, first = (imported.dataset.read(name) for name in ("source", "first_frame"))
    assert points["op_p_detect"].shape == (len(source), imported.frames) == (12, 5)
    for item in range(len(source)):
        truth = np.loadtxt(files["operating_point.csv"][source[item]], delimiter=",", skiprows=1)
        scans = truth[first[item] - 1 : first[item] + 4]
        np.testing.assert_allclose(points["op_p_detect"][item], scans[:, 1], rtol=1e-6)
        density = scans[:, 2] / np.prod(TRACKER_FRAME)
        np.testing.assert_allclose(points["op_clutter_density"][item], density, rtol=1e-6)
    assert TrackSource.open(imported).knows_operating_points
    # The contest now has its ceiling: the oracle rows, read from each scan's truth.
    report = tmp_path / "report"
    assert main(["evaluate-baselines", "--store", str(store), "--out", str(report)]) == 0
    scorers = json.loads((report / "report.json").read_text())["scorers"]
    assert {"oracle_ipda", "oracle_track_score"} <= set(scorers)
