"""extract-tracks and evaluate-baselines on real stores made by the real flows."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import zarr

from flows.cli import main
from flows.extract_tracks import extract_tracks
from storage.store import Store
from storage.track_reader import TrackSource
from storage.tracks import TRACKS, tracker_key
from tasks.specs import TracksSpec
from tp_models.evaluation.metrics import K_KEYS
from tp_models.perception.tracker import TrackerConfig

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_tracks_do_not_depend_on_worker_count(tmp_path, tiny_store):
    copy = tmp_path / "copy.zarr"
    shutil.copytree(tiny_store, copy)
    spec = TracksSpec.model_validate(
        {"store": str(copy), "compute": {"workers": 2}, "overwrite": True}
    )
    summary = extract_tracks(spec)
    assert summary["chunks_redone"] == 4 and summary["tracks"] > 0
    assert 0.5 < summary["mota"] <= 1 and 0.5 < summary["idf1"] <= 1
    path = f"{TRACKS}/{tracker_key(TrackerConfig().to_dict())}"
    ours, reference = zarr.open_group(str(copy), mode="r")[path], zarr.open_group(tiny_store)[path]
    for name in reference.array_keys():
        np.testing.assert_array_equal(ours[name][:], reference[name][:], err_msg=name)


def test_track_source_reads_splits_chunk_by_chunk(tiny_store):
    source = TrackSource.open(Store.open(tiny_store))
    videos = np.array([0, 4, 5, 11])
    batch, meta = source.load(videos)
    assert set(np.unique(batch.video)) <= set(videos.tolist())
    assert len(meta.video_type) == len(batch) and meta.n_videos == 4
    assert batch.observed.any(axis=1).all()
    assert set(np.unique(batch.label)) <= {0, 1}


def test_evaluate_baselines_report(tiny_store, tmp_path, capsys):
    assert (
        main(["evaluate-baselines", "--store", tiny_store, "--json", "--out", str(tmp_path / "r")])
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    json.dumps(report, allow_nan=False)  # a report never carries NaN
    assert report["split"] == "test" and set(report["tracker"]) == {"mota", "idf1"}
    assert "m_of_n_3_5" in report["scorers"] and "track_score" in report["scorers"]
    for section in report["scorers"].values():
        assert list(section["k"]) == list(K_KEYS)
        assert {"precision", "recall", "f1", "roc_auc", "pr_auc", "n"} <= set(section["k"]["3"])
        assert {"median", "p90", "never"} <= set(section["latency"])
    assert (tmp_path / "r" / "roc_full.png").stat().st_size > 1000


def test_no_detections_gives_empty_results_not_a_crash(tmp_path, tiny_store, capsys):
    copy = tmp_path / "copy.zarr"
    shutil.copytree(tiny_store, copy)
    summary = extract_tracks(
        TracksSpec.model_validate(
            {
                "store": str(copy),
                "compute": {"workers": 1},
                "tracker": {"detector": {"min_area": 100_000}},
            }
        )
    )
    assert summary["tracks"] == 0
    assert main(["evaluate-baselines", "--store", str(copy), "--json"]) == 0  # the last tracks
    report = json.loads(capsys.readouterr().out)
    assert report["n_tracks"] == 0
    assert report["scorers"]["m_of_n_3_5"]["k"]["3"]["n"] == 0
    assert report["scorers"]["m_of_n_3_5"]["k"]["3"]["f1"] is None


def test_missing_tracks_and_missing_store_say_what_to_run(tmp_path, tiny_store, capsys):
    assert main(["evaluate-baselines", "--store", tiny_store, "--tracks", "0123abcd"]) == 2
    err = capsys.readouterr().err
    assert "tp tracks" in err and "complete here: 1c51991820e5" in err  # names what exists
    assert main(["evaluate-baselines", "--store", str(tmp_path / "none.zarr")]) == 2
    assert "tp generate" in capsys.readouterr().err
    assert main(["tracks", "--store", str(tmp_path / "none.zarr")]) == 2
    assert "tp generate" in capsys.readouterr().err
    assert main(["tracks", "--store", tiny_store, "--gate-probability", "1.5"]) == 2
    assert "gate_probability" in capsys.readouterr().err
