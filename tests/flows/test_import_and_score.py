"""import-tracks -> train -> evaluate on imported tracks; tp score keeps every row in order;
bad input exits 2 writing nothing; TUD-Campus (real tracker output) imported and scored."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.score import write_mot_file

sys.path.insert(0, str(Path(__file__).parents[1] / "tp_models"))
from track_files import tud_campus  # noqa: E402


def _sequences(folder: Path, n: int = 4) -> tuple[list[str], list[str]]:
    """n MOTChallenge sequences and ground truth naming the even track ids only."""
    files, gts = [], []
    for seed in range(n):
        seq = folder / f"seq{seed}"
        seq.mkdir()
        path = seq / "tracks.txt"
        write_mot_file(path, 300, seed=seed, n_frames=40)
        even = [line for line in path.read_text().splitlines() if int(line.split(",")[1]) % 2 == 0]
        (seq / "gt.txt").write_text("\n".join(even) + "\n")
        files.append(str(path))
        gts.append(str(seq / "gt.txt"))
    return files, gts


@pytest.fixture(scope="module")
def imported(prefect_harness, mlflow_uri, tmp_path_factory):
    from flows.import_tracks import import_tracks
    from flows.train import train
    from tasks.specs import ImportSpec, TrainSpec

    folder = tmp_path_factory.mktemp("imported")
    files, gts = _sequences(folder)
    store = str(folder / "store.zarr")
    summary = import_tracks(
        ImportSpec(files=tuple(files), gt=tuple(gts), store=store, window=10, items_per_chunk=3)
    )
    trained = train(
        TrainSpec.model_validate(
            {
                "store": store,
                "training": {"max_epochs": 2, "patience": 2},
                "checkpoints": str(folder / "checkpoints"),
            }
        )
    )
    return {"store": store, "files": files, "summary": summary, "trained": trained, "dir": folder}


def test_import_labels_items_and_frame_sizes(imported):
    from storage.store import Store
    from storage.track_reader import TrackSource

    summary = imported["summary"]
    assert summary["sequences"] == 4 and summary["items"] == 16  # 40 frames / window 10
    store = Store.open(imported["store"])
    assert store.imported and store.frames == 10
    source = TrackSource.open(store)
    batch, _ = source.load(np.arange(summary["items"]))
    assert batch.frame_size is not None
    np.testing.assert_array_equal(batch.frame_size, np.tile([1080.0, 1920.0], (len(batch), 1)))
    # Ground truth names exactly the even ids: a track's label is whether its id is even.
    labels = np.concatenate(
        [
            store.group(f"tracks/{summary['tracks_key']}", "tracks").read("label")[i][:n]
            for i, n in enumerate(source.tracks.read("n_tracks"))
        ]
    )
    assert len(labels) == summary["tracks"] == len(batch)
    assert summary["persistent"] + summary["false"] == summary["tracks"]
    assert 0 < summary["persistent"] < summary["tracks"]


def test_train_and_evaluate_on_imported_tracks(imported, tmp_path):
    from flows.evaluate import evaluate
    from tasks.specs import EvaluateSpec

    trained = imported["trained"]
    assert trained["epochs"] == 2
    report = evaluate(
        EvaluateSpec(
            store=imported["store"], model_uri=trained["model_uri"], out=str(tmp_path / "r")
        )
    )
    assert "model" in report["scorers"] and "m_of_n_2_3" in report["scorers"]
    # No true operating point is known for imported tracks: no "oracle" under a false name.
    assert not [name for name in report["scorers"] if name.startswith("oracle")]
    assert report["model"]["trained_on_this_data"] is True
    assert report["n_tracks"] > 0


def test_score_keeps_every_row_in_order(imported, tmp_path):
    from flows.score import score
    from tasks.specs import ScoreSpec

    source = Path(imported["files"][0])
    # Shuffle the rows: the output must keep this order, not the frame or id order.
    lines = source.read_text().splitlines()
    shuffled = tmp_path / "in" / source.parent.name / "tracks.txt"
    shuffled.parent.mkdir(parents=True)
    order = np.random.default_rng(0).permutation(len(lines))
    shuffled.write_text("\n".join(lines[i] for i in order) + "\n")
    (shuffled.parent / "seqinfo.ini").write_text((source.parent / "seqinfo.ini").read_text())
    uri = imported["trained"]["model_uri"]
    result = score(ScoreSpec(files=(str(shuffled),), out=str(tmp_path / "out"), model_uri=uri))
    out = (tmp_path / "out" / "tracks.txt").read_text().splitlines()
    assert len(out) == len(lines) == result["rows"]
    assert [line.rsplit(",", 2)[0] for line in out] == [lines[i] for i in order]
    p = np.array([float(line.split(",")[-2]) for line in out])
    confirmed = np.array([int(line.split(",")[-1]) for line in out])
    assert ((p >= 0) & (p <= 1)).all()
    np.testing.assert_array_equal(confirmed, (p >= result["threshold"]).astype(int))
    # The same scores as the model on the file in its original order, row for row.
    from storage.mlflow_store import load_model
    from tp_models.serving.rows import score_rows
    from tp_models.tracks.files import read_tracks

    model = load_model(uri).pipeline
    expected = score_rows(model, read_tracks(source).rows)[order]
    np.testing.assert_allclose(p, expected, atol=2e-6)


@pytest.mark.parametrize("with_good_file", [False, True])  # in this process; on Dask workers
def test_bad_file_exits_2_and_writes_nothing(imported, tmp_path, capfd, with_good_file):
    from flows.cli import main

    good = [imported["files"][1]] if with_good_file else []
    bad = tmp_path / "bad" / "bad.txt"
    bad.parent.mkdir()
    bad.write_text("1,1,10,10,5,5,1\n2,1,11,x,5,5,1\n")
    out = tmp_path / "out"
    uri = imported["trained"]["model_uri"]
    code = main(["score", *good, str(bad), "--out", str(out), "--model-uri", uri])
    assert code == 2
    # The one sentence, once: no Prefect traceback or report of it first, from this process
    # or from a worker's (fd-level capture catches the workers' output too).
    captured = capfd.readouterr().err
    error = captured.strip().splitlines()[-1]
    assert error.startswith("error: ") and "Traceback" not in captured
    assert captured.count("'x' is not a finite number") == 1
    assert str(bad) in error and "line 2" in error and "'bb_top'" in error
    assert not out.exists()  # not even an empty --out folder


def test_tud_campus_imported_and_scored(imported, tmp_path):
    from flows.import_tracks import import_tracks
    from flows.score import score
    from tasks.specs import ImportSpec, ScoreSpec
    from tp_models.tracks.files import read_ground_truth, read_tracks
    from tp_models.tracks.matching import label_by_matching

    test, gt = tud_campus("test"), tud_campus("gt")
    summary = import_tracks(
        ImportSpec(files=(str(test),), gt=(str(gt),), store=str(tmp_path / "tud.zarr"))
    )
    tracks = read_tracks(test)
    truth = read_ground_truth(gt, tracks.rows.frame_size, tracks.rows.n_frames)
    labels = label_by_matching(tracks.rows, truth.rows).label
    assert summary["rows"] == 222 and summary["tracks"] == labels.size
    assert summary["persistent"] == int(labels.sum())
    uri = imported["trained"]["model_uri"]
    result = score(ScoreSpec(files=(str(test),), out=str(tmp_path / "out"), model_uri=uri))
    out = (tmp_path / "out" / "test.txt").read_text().splitlines()
    assert result["rows"] == 222
    assert [line.rsplit(",", 2)[0] for line in out] == test.read_text().splitlines()


def test_score_looks_the_model_up_once(imported, tmp_path, monkeypatch):
    """One look-up of the model version and one of its run for the whole command, the
    CLI's check before any service starts included (the real MLflow client, counted)."""
    from mlflow import MlflowClient

    from flows.cli import main

    calls: dict[str, int] = {}
    for name in ("get_model_version", "get_model_version_by_alias", "get_run"):
        real = getattr(MlflowClient, name)

        def counted(self, *args, _real=real, _name=name, **kwargs):
            calls[_name] = calls.get(_name, 0) + 1
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(MlflowClient, name, counted)
    uri = "models:/track-persistence@candidate"
    assert (
        main(["score", imported["files"][0], "--out", str(tmp_path / "out"), "--model-uri", uri])
        == 0
    )
    assert calls == {"get_model_version_by_alias": 1, "get_run": 1}


def test_a_local_score_needs_no_prefect_api(imported, tmp_path, monkeypatch, capfd):
    """With no Prefect API configured, one group of files scores in this process: no
    temporary server, the same file as the flow writes, the same one-sentence errors."""
    import flows.local_services
    from flows.cli import main
    from flows.score import score
    from tasks.specs import ScoreSpec

    uri = imported["trained"]["model_uri"]
    source = imported["files"][0]
    score(ScoreSpec(files=(source,), out=str(tmp_path / "by-flow"), model_uri=uri))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_PROFILES_PATH", str(tmp_path / "no-profiles.toml"))

    def no_server():
        raise AssertionError("a local score started a Prefect server")

    monkeypatch.setattr(flows.local_services, "reserve_prefect_api", no_server)
    assert main(["score", source, "--out", str(tmp_path / "here"), "--model-uri", uri]) == 0
    name = Path(source).name
    here = (tmp_path / "here" / name).read_text()
    assert here == (tmp_path / "by-flow" / name).read_text()
    capfd.readouterr()
    bad = tmp_path / "bad" / "bad.txt"
    bad.parent.mkdir()
    bad.write_text("1,1,10,10,5,5,1\n2,1,11,x,5,5,1\n")
    out = tmp_path / "out"
    assert main(["score", str(bad), "--out", str(out), "--model-uri", uri]) == 2
    captured = capfd.readouterr().err
    assert "Traceback" not in captured and captured.count("'x' is not a finite number") == 1
    assert captured.strip().splitlines()[-1].startswith("error: ") and not out.exists()
    # An id back at frame 10^9 (it asked for 12.1 GiB) is a new track: both rows score.
    bad.write_text("1,1,10,10,5,5,1\n1000000000,1,11,10,5,5,1\n")
    assert main(["score", str(bad), "--out", str(out), "--model-uri", uri]) == 0
    assert len((out / "bad.txt").read_text().splitlines()) == 2
    # A life longer than the transformer reads (max_len 500): one sentence, nothing written.
    bad.write_text("".join(f"{f},1,{10 + f % 50},10,5,5,1\n" for f in range(1, 502)))
    longer = tmp_path / "longer"
    capfd.readouterr()
    assert main(["score", str(bad), "--out", str(longer), "--model-uri", uri]) == 2
    error = capfd.readouterr().err
    assert "Traceback" not in error and "at most 500 steps" in error.strip().splitlines()[-1]
    assert not longer.exists()


# ---- tp score never loses a file: issue 21 --------------------------------------------------


def _score(imported, *args: str) -> int:
    from flows.cli import main

    return main(["score", *args, "--model-uri", imported["trained"]["model_uri"]])


def _copy_sequence(imported, folder: Path, index: int = 0) -> Path:
    """The imported sequence `index` as folder/tracks.txt, with its seqinfo.ini."""
    source = Path(imported["files"][index])
    folder.mkdir(parents=True)
    (folder / "tracks.txt").write_text(source.read_text())
    (folder / "seqinfo.ini").write_text((source.parent / "seqinfo.ini").read_text())
    return folder / "tracks.txt"


def test_score_never_writes_over_an_input_unless_asked(imported, tmp_path, capsys):
    tracks = _copy_sequence(imported, tmp_path / "seq")
    before = tracks.read_bytes()
    assert _score(imported, str(tracks), "--out", str(tracks.parent)) == 2
    error = capsys.readouterr().err.strip()
    assert str(tracks) in error and "--overwrite" in error and "\n" not in error
    assert tracks.read_bytes() == before
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["seq", "seqinfo.ini", "tracks.txt"]
    assert _score(imported, str(tracks), str(tracks), "--out", str(tmp_path / "out")) == 2
    assert "give each file once" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert _score(imported, str(tracks), "--out", str(tracks.parent), "--overwrite") == 0
    assert tracks.read_text().splitlines()[0].startswith(before.decode().splitlines()[0] + ",")


def test_score_never_replaces_an_existing_output_unless_asked(imported, tmp_path, capsys):
    tracks = _copy_sequence(imported, tmp_path / "seq")
    out = tmp_path / "out"
    out.mkdir()
    (out / "tracks.txt").write_text("the user's own file\n")
    assert _score(imported, str(tracks), "--out", str(out)) == 2
    error = capsys.readouterr().err.strip()
    assert str(out / "tracks.txt") in error and "--overwrite" in error
    assert (out / "tracks.txt").read_text() == "the user's own file\n"
    assert [p.name for p in out.iterdir()] == ["tracks.txt"]
    assert _score(imported, str(tracks), "--out", str(out), "--overwrite") == 0
    assert (out / "tracks.txt").read_text().count("\n") == tracks.read_text().count("\n")


def test_score_keeps_the_layout_of_the_inputs_and_their_permissions(imported, tmp_path):
    first = _copy_sequence(imported, tmp_path / "in" / "seq-0001", 0)
    second = _copy_sequence(imported, tmp_path / "in" / "seq-0002", 1)
    first.chmod(0o640)
    second.chmod(0o604)
    out = tmp_path / "out"
    assert _score(imported, str(first), str(second), "--out", str(out)) == 0
    for source in (first, second):
        scored = out / source.parent.name / "tracks.txt"
        lines = scored.read_text().splitlines()
        assert [line.rsplit(",", 2)[0] for line in lines] == source.read_text().splitlines()
        assert scored.stat().st_mode & 0o777 == source.stat().st_mode & 0o777
    assert sorted(p.name for p in out.iterdir()) == ["seq-0001", "seq-0002"]  # no staging left


def test_score_removes_the_staging_folder_of_a_killed_run(imported, tmp_path):
    import os
    import socket
    import subprocess

    tracks = _copy_sequence(imported, tmp_path / "seq")
    out = tmp_path / "out"
    gone = subprocess.Popen(["true"])
    gone.wait()
    host = socket.gethostname()
    stale = out / f".tp-score-{gone.pid}@{host}-abcd1234"
    live = out / f".tp-score-{os.getpid()}@{host}-efgh5678"  # a run still going: kept
    for folder in (stale, live):
        folder.mkdir(parents=True)
        (folder / "tracks.txt").write_text("half\n")
    assert _score(imported, str(tracks), "--out", str(out)) == 0
    assert sorted(p.name for p in out.iterdir()) == [live.name, "tracks.txt"]


def test_the_interrupt_line_of_score_speaks_of_files_not_chunks():
    import signal

    from flows.cli import interrupt_line

    line = interrupt_line("score", signal.SIGINT)
    assert line.startswith("interrupted by SIGINT") and "chunk" not in line
    assert "resume" not in line
    assert "chunk" in interrupt_line("generate", signal.SIGTERM)


def test_a_finite_but_huge_box_is_one_sentence(imported, tmp_path, capsys):
    """bb_left 1.5e308 + bb_width 1e308 overflowed to an OverflowError traceback."""
    from flows.cli import main

    huge = tmp_path / "huge" / "tracks.txt"
    huge.parent.mkdir()
    huge.write_text("1,1,10,10,5,5,1\n2,1,1.5e308,10,1e308,5,1\n")
    store, out = tmp_path / "huge.zarr", tmp_path / "out"
    for args in (
        ["import-tracks", str(huge), "--store", str(store)],
        ["score", str(huge), "--out", str(out), "--model-uri", imported["trained"]["model_uri"]],
    ):
        assert main(args) == 2
        error = capsys.readouterr().err.strip().splitlines()[-1]
        assert error.startswith(f"error: {huge}, line 2, column 'bb_left': "), error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huge"]


def test_info_describes_an_imported_store(imported, capsys):
    """`tp info` on an imported store was `KeyError: 'videos'`."""
    import json

    from flows.cli import main

    store = imported["store"]
    assert main(["info", "--store", store, "--verify"]) == 0
    text = capsys.readouterr().out
    assert "imported" in text and "16" in text and "persistent" in text
    assert "every group match their checksums" in text
    assert main(["info", "--store", store, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["imported"] is True and info["items"] == 16 and sum(info["counts"].values()) == 16


def test_import_refuses_the_same_file_twice(imported, tmp_path, capsys):
    """The same rows twice could land in train and test."""
    from flows.cli import main

    first = _copy_sequence(imported, tmp_path / "a")
    again = _copy_sequence(imported, tmp_path / "b")  # same bytes, another name
    store = tmp_path / "twice.zarr"
    assert main(["import-tracks", str(first), str(again), "--store", str(store)]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert str(again) in error and str(first) in error and "same" in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_a_failed_import_leaves_no_store_of_its_own(imported, tmp_path, monkeypatch):
    """A failure after the store was created (a fault injected where the per-item arrays
    are built, as memory running out would) leaves no new store behind, and puts a store
    it was replacing back as it was."""
    import flows.import_tracks
    from flows.cli import main

    first = _copy_sequence(imported, tmp_path / "a")
    second = _copy_sequence(imported, tmp_path / "b", index=1)
    store = tmp_path / "new" / "imported.zarr"
    assert main(["import-tracks", str(first), "--store", str(store)]) == 0
    before = sorted((p.relative_to(store), p.read_bytes()) for p in store.rglob("*") if p.is_file())

    def out_of_memory(*args, **kwargs):
        raise MemoryError("injected")

    monkeypatch.setattr(flows.import_tracks, "item_arrays", out_of_memory)
    other = tmp_path / "other" / "imported.zarr"
    with pytest.raises(MemoryError):
        main(["import-tracks", str(second), "--store", str(other)])
    assert not other.exists() and not other.parent.exists()
    with pytest.raises(MemoryError):
        main(["import-tracks", str(second), "--store", str(store), "--overwrite"])
    after = sorted((p.relative_to(store), p.read_bytes()) for p in store.rglob("*") if p.is_file())
    assert after == before


def test_import_keeps_clips_or_drops_rows_outside_the_frame_and_counts_them(
    imported, tmp_path, capsys
):
    """A target leaving the view refused the whole import; now `--outside` decides."""
    from flows.cli import main

    tracks = _copy_sequence(imported, tmp_path / "seq")
    first = tracks.read_text().splitlines()[0].split(",")
    leaving = [first[0], first[1], "-500", *first[3:]]  # the same track, far to the left
    frame = int(first[0]) + 1
    while f"{frame},{first[1]}," in tracks.read_text():
        frame += 1
    leaving[0] = str(frame)
    tracks.write_text(tracks.read_text() + ",".join(leaving) + "\n")
    for policy in ("keep", "clip", "drop"):
        store = tmp_path / f"{policy}.zarr"
        assert main(["import-tracks", str(tracks), "--store", str(store), "--outside", policy]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["rows_outside_frame"] == 1 and summary["outside_policy"] == policy


def test_an_id_seen_again_at_frame_1e9_imports_as_small_items(imported, tmp_path, capsys):
    """One row at frame 10^9 asked for 96.9 GiB; the sequence is now cut where it has no
    rows, and a frame a store cannot number is one sentence."""
    from flows.cli import main

    tracks = _copy_sequence(imported, tmp_path / "seq")
    (tracks.parent / "seqinfo.ini").unlink()  # its seqLength would refuse the frame
    first = tracks.read_text().splitlines()[0].split(",")
    tracks.write_text(tracks.read_text() + ",".join(["1000000000", *first[1:]]) + "\n")
    store = tmp_path / "late.zarr"
    assert main(["import-tracks", str(tracks), "--store", str(store)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["items"] == 2
    from storage.store import Store

    assert Store.open(str(store)).frames <= 100
    tracks.write_text(tracks.read_text() + ",".join(["3000000000", *first[1:]]) + "\n")
    assert main(["import-tracks", str(tracks), "--store", str(tmp_path / "x.zarr")]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "3000000000" in error and str(tracks) in error


# ---- every family a model: issue 25 ----------------------------------------------------------


def test_a_users_path_import_retrain_score_with_whatever_family_wins(
    imported, own_registry, tmp_path, capsys
):
    """import-tracks --gt -> retrain (the model first, then every family against it, in a
    registry of this test's own) -> tp score with @champion; and tp score with the
    gradient-boosting version gives that family's own scores, row for row, as it does for
    the learned model."""
    from mlflow import MlflowClient

    from flows.cli import main
    from storage.mlflow_store import load_model
    from storage.registry import MODEL_NAME, champion_version
    from tp_models.families.fitted import FittedFamily
    from tp_models.families.names import CLASSICAL_FAMILIES
    from tp_models.serving.rows import score_rows
    from tp_models.tracks.files import read_tracks

    gate = ["--not-worse", "roc_auc_full", "p_d_at_fcr_1pct_full"]
    out = ["--checkpoints", str(tmp_path / "ck"), "--out", str(tmp_path / "retrain")]
    store = ["--store", imported["store"], "--max-epochs", "2", *gate, *out]
    # A first night: the learned model alone becomes the champion.
    assert main(["retrain", *store, "--families", "model"]) == 0
    before = json.loads(capsys.readouterr().out)["champion"]
    # Every family against it, ranked by the gate's metrics; the best that passes wins.
    assert main(["retrain", *store]) == 0
    decision = json.loads(capsys.readouterr().out)
    families = decision["families"]
    challengers = [v for v in families if v != before]
    assert sorted(families[v] for v in challengers) == sorted(["transformer", *CLASSICAL_FAMILIES])
    assert set(decision["metrics"]) == {*challengers, before}
    assert decision["reason"].startswith("Challengers ranked by roc_auc_full, p_d_at_fcr_1pct_full")
    assert decision["champion"] == champion_version()
    assert decision["champion"] == (decision["challenger"] if decision["promoted"] else before)
    for version in challengers:
        tags = MlflowClient().get_model_version(MODEL_NAME, version).tags
        assert json.loads(tags["promotion.families"]) == families
        assert tags["family"] == families[version]
    boosting = next(v for v, f in families.items() if f == "gradient_boosting")
    source = _copy_sequence(imported, tmp_path / "in")
    rows = read_tracks(source).rows
    for uri in (f"models:/track-persistence/{boosting}", "models:/track-persistence@champion"):
        out = tmp_path / uri.rsplit("/", 1)[1].replace("@", "")
        assert main(["score", str(source), "--out", str(out), "--model-uri", uri]) == 0
        capsys.readouterr()
        model = load_model(uri).pipeline
        if uri.endswith(boosting):
            assert isinstance(model, FittedFamily) and model.family == "gradient_boosting"
        lines = (out / "tracks.txt").read_text().splitlines()
        p = np.array([float(line.split(",")[-2]) for line in lines])
        np.testing.assert_allclose(p, score_rows(model, rows), atol=2e-6)
