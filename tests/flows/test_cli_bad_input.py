"""Bad input: one sentence naming the parameter, a non-zero exit, the existing store untouched."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import zarr

from flows.cli import main
from tests.conftest import mlflow_backend, tiny_cli_args


def _tree_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


_tiny_args = tiny_cli_args


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        (["--persistent", "-1"], "persistent"),
        (
            ["--persistent", "0", "--brief", "0", "--noise", "0", "--mixed", "0"],
            "at least one video",
        ),
        (["--frames", "1"], "frames"),
        (["--size", "16"], "size"),
        (["--videos-per-chunk", "0"], "videos_per_chunk"),
        (["--workers", "0"], "workers"),
        (["--noise-sigma", "-2"], "noise_sigma"),
        (["--operating-point-drift", "-1"], "operating_point_drift"),
        (["--operating-point-drift", "0.05", "--p-detect-range", "0.8", "1.0"], "p_detect_range"),
    ],
)
def test_bad_parameters(tmp_path, capsys, extra, names):
    store = tmp_path / "new.zarr"
    assert main(_tiny_args(store) + extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and names in err and err.count("\n") == 0
    assert not store.exists()


def test_existing_store_with_other_config_is_refused_and_untouched(tiny_store, capsys):
    before = _tree_digest(Path(tiny_store))
    assert main(_tiny_args(tiny_store) + ["--seed", "7"]) == 2
    err = capsys.readouterr().err
    assert "seed" in err and "overwrite" in err
    assert _tree_digest(Path(tiny_store)) == before


def test_path_that_is_not_a_store(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(b"\xff\xd8")
    for extra in ([], ["--overwrite"]):
        assert main(_tiny_args(folder) + extra) == 2
        assert "not a track-persistence store" in capsys.readouterr().err
        assert (folder / "cat.jpg").read_bytes() == b"\xff\xd8"


def test_unwritable_store_path(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(_tiny_args(a_file / "store.zarr")) == 2
    assert "store" in capsys.readouterr().err
    assert main(_tiny_args("/proc/store.zarr")) == 2
    assert "cannot write" in capsys.readouterr().err


def test_unknown_schema_version(tmp_path, tiny_store, capsys):
    import shutil

    copy = tmp_path / "old.zarr"
    shutil.copytree(tiny_store, copy)
    zarr.open_group(str(copy), mode="r+").attrs["schema_version"] = 99
    before = _tree_digest(copy)
    assert main(["info", "--store", str(copy)]) == 2
    assert "schema_version 99" in capsys.readouterr().err
    assert main(_tiny_args(copy)) == 2
    assert _tree_digest(copy) == before


def test_info_on_missing_store(tmp_path, capsys):
    assert main(["info", "--store", str(tmp_path / "nope.zarr")]) == 2
    assert "tp generate" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "nope.zarr")


def test_a_classical_family_with_video_features_is_one_sentence(tiny_store, capsys):
    args = ["train", "--store", tiny_store, "--family", "ipda", "--features", "hybrid"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "features: 'hybrid'" in err and "--family" in err


def test_negative_forget_after_is_refused_before_anything_starts(tiny_store, capsys):
    before = _tree_digest(Path(tiny_store))
    argv = ["train", "--store", str(tiny_store), "--forget-after", "-1"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "forget_after" in err and err.count("\n") == 0
    assert _tree_digest(Path(tiny_store)) == before


def test_more_train_videos_than_the_split_holds_is_one_sentence(tiny_store, capsys):
    before = _tree_digest(Path(tiny_store))
    argv = ["train", "--store", str(tiny_store), "--train-videos", "100000"]
    with mlflow_backend("http://127.0.0.1:9"):  # nothing listens: refused before MLflow is asked
        assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "train_videos: 100000 is more than the" in err
    assert _tree_digest(Path(tiny_store)) == before


def test_zero_train_videos_is_refused_before_anything_starts(tiny_store, capsys):
    before = _tree_digest(Path(tiny_store))
    assert main(["train", "--store", str(tiny_store), "--train-videos", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "train_videos" in err and err.count("\n") == 0
    assert _tree_digest(Path(tiny_store)) == before
