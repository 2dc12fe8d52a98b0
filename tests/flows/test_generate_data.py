"""The generate-data flow on a real Prefect API, real local Dask clusters and real Zarr stores."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import zarr

from flows.generate_data import generate_data
from storage.inspect import corrupted_chunks, describe
from storage.store import Store
from tests.conftest import TINY, generate_spec

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _arrays(path: str) -> dict[str, np.ndarray]:
    group = zarr.open_group(path, mode="r")
    return {name: group[name][:] for name in group.array_keys()}


def _run(path, workers=None, **overrides):
    return generate_data(generate_spec(path, workers, **TINY, extract_tracks=False, **overrides))


def _dataset(path: str):
    return Store.open(path).dataset


def test_same_bytes_whatever_the_worker_count(tmp_path, tiny_store):
    _run(tmp_path / "two.zarr", workers=2)
    one, two = _arrays(tiny_store), _arrays(str(tmp_path / "two.zarr"))
    assert set(two) <= set(one)
    for name in two:
        np.testing.assert_array_equal(one[name], two[name], err_msg=name)
    assert _dataset(tiny_store).fingerprint() == _dataset(str(tmp_path / "two.zarr")).fingerprint()


def test_store_describes_itself(tiny_store):
    info = describe(tiny_store, verify=True)
    assert info["videos"] == 12
    assert info["counts"] == {"persistent": 4, "brief": 4, "noise": 2, "mixed": 2}
    assert info["chunks_done"] == info["chunks_total"] == 4
    assert info["complete"] and info["fingerprint"]
    assert info["corrupted_chunks"] == []
    assert info["stored_bytes"] < info["raw_bytes"] / 20


def test_ground_truth_agrees_with_id_masks(tiny_store):
    dataset = _dataset(tiny_store)
    masks = dataset.read("masks")
    visible, position = dataset.read("gt_visible"), dataset.read("gt_position")
    kind = dataset.read("gt_kind")
    checked = 0
    for v, k, t in zip(*np.nonzero(visible), strict=True):
        assert kind[v, k] >= 0
        rows, cols = np.nonzero(masks[v, t] == k + 1)
        if rows.size == 0:  # fully hidden under a later-drawn object
            continue
        x, y = position[v, k, t]
        assert abs(cols.mean() - x) < 8 and abs(rows.mean() - y) < 8
        checked += 1
    assert checked > 20
    for v, k, t in zip(*np.nonzero(~visible & (kind[:, :, None] >= 0)), strict=True):
        assert not (masks[v, t] == k + 1).any()


def test_corrupted_chunk_is_reported_and_redone(tmp_path, tiny_store):
    path = tmp_path / "store.zarr"
    _run(path, workers=1)
    before = _arrays(str(path))
    chunk_file = path / "videos" / "c" / "1" / "0" / "0" / "0" / "0"
    chunk_file.write_bytes(b"garbage" + chunk_file.read_bytes()[7:])
    (path / "masks" / "c" / "2" / "0" / "0" / "0").unlink()
    assert corrupted_chunks(_dataset(str(path))) == [1, 2]

    summary = _run(path, workers=1)
    assert summary["chunks_redone"] == 2
    assert corrupted_chunks(_dataset(str(path))) == []
    after = _arrays(str(path))
    for name in before:
        np.testing.assert_array_equal(before[name], after[name], err_msg=name)


def test_rerun_of_a_finished_store_writes_nothing(tiny_store):
    summary = _run(tiny_store, workers=1)
    assert summary["videos_written"] == 0 and summary["chunks_redone"] == 0


def test_tp_generate_checks_its_store_once(prefect_harness, tmp_path, monkeypatch):
    """The check made before any service starts is the one the flow uses (counted on the
    real ChunkedGroup.check), for a new store and for a resumed one."""
    from flows.cli import main
    from storage.chunked import ChunkedGroup
    from tests.conftest import tiny_cli_args

    real = ChunkedGroup.check.__func__
    dataset_checks = []

    def counted(cls, root_path, subpath, **kwargs):
        if subpath == "":
            dataset_checks.append(root_path)
        return real(cls, root_path, subpath, **kwargs)

    monkeypatch.setattr(ChunkedGroup, "check", classmethod(counted))
    store = tmp_path / "s.zarr"
    for _ in range(2):  # new, then resumed
        dataset_checks.clear()
        assert main([*tiny_cli_args(store), "--workers", "1", "--no-extract-tracks"]) == 0
        assert dataset_checks == [str(store)]


def test_a_long_drifting_store_keeps_its_walk_for_the_oracle(tmp_path):
    """A 60-frame store with a drifting operating point: 3 x 32 object and 3 x 64 track slots,
    P_D and clutter density stored per frame, and the parameter oracle reading each frame's."""
    from storage.track_reader import TrackSource
    from tp_models.scorers.existence import OracleTrackScore

    path = tmp_path / "drift.zarr"
    scene = {"frames": 60, "size": 64, "persistent_count": [2, 4], "operating_point_drift": 0.05}
    generate_data(
        generate_spec(
            path, 1, persistent=2, brief=1, noise=0, mixed=1, videos_per_chunk=2, scene=scene
        )
    )
    store = Store.open(str(path))
    points = store.operating_points
    assert points["op_p_detect"].shape == points["op_clutter_density"].shape == (4, 60)
    assert points["op_motion_noise"].shape == (4,)
    assert np.all(np.ptp(points["op_p_detect"], axis=1) > 0)
    assert store.dataset.group["gt_kind"].shape == (4, 96)
    source = TrackSource.open(store)
    assert source.tracks.config["capacity"] == 192
    batch, _ = source.load(np.arange(4))
    np.testing.assert_array_equal(batch.extras["op_p_detect"], points["op_p_detect"][batch.video])
    drawn = dict(batch.extras)
    drawn.update({k: points[k][batch.video, :1] for k in ("op_p_detect", "op_clutter_density")})
    constant = OracleTrackScore().score(dataclasses.replace(batch, extras=drawn))
    assert not np.allclose(OracleTrackScore().score(batch), constant, equal_nan=True)
