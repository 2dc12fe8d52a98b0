"""Every path a command writes may name folders that do not exist yet (a fresh clone has no
`data/`): the command makes them, parents included. Only a parent that cannot be made is
the user's to change (exit 2, one sentence naming the path), and a refused run leaves no
folder behind."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from bench.score import write_mot_file
from flows.cli import EXIT_USAGE, main
from storage.lock import lock_path
from tests.conftest import TINY, mlflow_backend, tiny_cli_args

TINY_COUNTS = [f"--{name}={TINY[name]}" for name in ("persistent", "brief", "noise", "mixed")]
TINY_SCENE = [f"--frames={TINY['scene']['frames']}", f"--size={TINY['scene']['size']}"]


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_generate_makes_the_store_folders(prefect_harness, tmp_path):
    store = tmp_path / "new" / "nested" / "s.zarr"
    assert main(tiny_cli_args(store) + ["--workers", "1"]) == 0
    assert (store / "zarr.json").is_file()
    assert not os.path.exists(lock_path(str(store)))


def test_a_file_in_the_way_is_one_sentence_and_nothing_is_made(prefect_harness, tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    store = tmp_path / "file" / "nested" / "s.zarr"
    assert main(tiny_cli_args(store)) == EXIT_USAGE
    error = capsys.readouterr().err
    assert str(store) in error and "is a file, not a folder" in error
    assert _tree(tmp_path) == ["file"]


@pytest.mark.parametrize("command", ["tracks", "cache-features"])
def test_commands_that_need_a_store_leave_no_folder_behind(
    command, prefect_harness, mlflow_uri, tmp_path, capsys
):
    store = tmp_path / "missing" / "nested" / "s.zarr"
    assert main([command, "--store", str(store)]) == EXIT_USAGE
    assert "s.zarr" in capsys.readouterr().err
    assert _tree(tmp_path) == []


def test_import_tracks_makes_the_store_folders(prefect_harness, tmp_path):
    tracks = tmp_path / "seq" / "tracks.txt"
    tracks.parent.mkdir()
    write_mot_file(tracks, 60, seed=0, n_frames=20)
    store = tmp_path / "new" / "nested" / "imported.zarr"
    assert main(["import-tracks", str(tracks), "--store", str(store)]) == 0
    assert (store / "zarr.json").is_file()


def test_pipeline_makes_store_report_and_mlflow_folders(
    prefect_harness, mlflow_uri, tmp_path, monkeypatch, capsys
):
    """The README's first command (`make run`), in a folder where nothing exists yet."""
    monkeypatch.chdir(tmp_path)
    args = ["pipeline", "--store", "data/new/store.zarr", "--out", "reports/a/b"]
    args += [*TINY_COUNTS, *TINY_SCENE, "--videos-per-chunk=3", "--workers=1"]
    with mlflow_backend(f"sqlite:///{tmp_path}/runs/db/mlflow.db"):
        assert main(args) == 0
    assert "P_D at 1.0% false confirmations" in capsys.readouterr().out
    assert (tmp_path / "data/new/store.zarr/zarr.json").is_file()
    assert (tmp_path / "reports/a/b/report.json").is_file()
    assert (tmp_path / "runs/db/mlflow.db").is_file()


def test_train_and_evaluate_baselines_make_their_folders(
    tiny_store, own_registry, tmp_path, monkeypatch, caplog
):
    import tasks.train

    monkeypatch.setattr(tasks.train, "LOG_EVERY_S", 0.0)  # progress inside each epoch, logged
    checkpoints = tmp_path / "new" / "checkpoints"
    with caplog.at_level(logging.INFO, logger="prefect.task_runs"):
        assert main(["train", "--store", tiny_store, "--max-epochs=1", "--retrain",
                     "--checkpoints", str(checkpoints)]) == 0  # fmt: skip
    assert any(checkpoints.rglob("*.pt"))
    assert "epoch 0: " in caplog.text and "training tracks so far" in caplog.text
    out = tmp_path / "new" / "baselines" / "report"
    assert main(["evaluate-baselines", "--store", tiny_store, "--out", str(out), "--json"]) == 0
    assert (out / "report.json").is_file()


def test_score_and_preview_make_their_folders(tiny_store, trained, tmp_path):
    tracks = tmp_path / "seq" / "tracks.txt"
    tracks.parent.mkdir()
    write_mot_file(tracks, 60, seed=0, n_frames=20)
    scored = tmp_path / "new" / "scored"
    uri = trained["summary"]["model_uri"]
    assert main(["score", str(tracks), "--out", str(scored), "--model-uri", uri]) == 0
    assert (scored / "tracks.txt").is_file()
    preview = tmp_path / "new" / "preview"
    assert main(["preview", "--store", tiny_store, "--out", str(preview), "--videos=1"]) == 0
    assert any(preview.glob("*.png"))


@pytest.mark.slow
def test_the_temporary_prefect_api_starts_in_a_new_prefect_home(tmp_path, monkeypatch):
    """A new user's PREFECT_HOME does not exist; Prefect makes it without parents and its
    server then failed to start."""
    from flows.local_services import reserve_prefect_api

    home = tmp_path / "new" / "prefect-home"
    monkeypatch.setenv("PREFECT_HOME", str(home))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    server = reserve_prefect_api()
    assert server is not None and home.is_dir()
    server.start()
    try:
        server.wait_ready(timeout=120)
    finally:
        server.stop()
    assert (home / "prefect.db").is_file()
