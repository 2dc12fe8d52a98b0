"""The registered model: weights-only checkpoints in an MLflow pyfunc, on a real SQLite registry.

Round trips give identical scores; tracker rows come back one per row in input order; a
crafted pickle in the artifact store or a crafted registry value is refused and runs nothing.
"""

from __future__ import annotations

import json
import os
import pickle
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch

from storage.errors import StoreError, UserError
from storage.mlflow_store import (
    CHECKPOINT_DATA,
    load_model,
    log_and_register,
    tokenizer_checkpoint,
)
from tests.conftest import mlflow_backend
from tests.integration.helpers import BIN, free_port, process, wait_for
from tests.tp_models.test_families import labelled
from tests.tp_models.track_files import random_rows
from tp_models.families.fit import fit_family
from tp_models.families.fitted import FittedFamily, family_checkpoint
from tp_models.magvit import MagVitTokenizer, TokenizerConfig, checkpoint_hash, save_tokenizer
from tp_models.model import ModelConfig, build_pipeline, checkpoint_dict, save_checkpoint
from tp_models.serving.rows import score_rows
from tp_models.serving.served import track_rows

SMALL_MODEL = ModelConfig(
    feature_dim=16,
    extractor_hidden_dim=16,
    d_model=16,
    n_heads=2,
    n_layers=1,
    ff_dim=32,
    head_hidden_dim=16,
    max_len=64,
)
TINY_TOKENIZER = TokenizerConfig(
    channels=(4, 8, 8), decoder_channels=(4, 8, 8), latent_dim=8, codebook_size=16
)


def tracker_rows(seed: int = 0) -> pd.DataFrame:
    """Three tracks over 12 frames (one with a gap, one brief), shuffled as a file sorted by
    something else would be."""
    rng = np.random.default_rng(seed)
    records = []
    for track, frames, start, step in (
        (1, range(1, 13), (20.0, 30.0), (2.0, 1.0)),
        (2, [2, 3, 5, 6, 9, 10, 11], (90.0, 40.0), (-1.0, 0.5)),
        (7, [4, 5], (60.0, 100.0), (0.0, 0.0)),
    ):
        for f in frames:
            x, y = start[0] + step[0] * f + rng.normal(0, 0.5), start[1] + step[1] * f
            records.append(dict(frame=f, id=track, bb_left=x - 4, bb_top=y - 4))
    table = pd.DataFrame(records).assign(bb_width=8.0, bb_height=8.0, conf=1.0)
    table = table.assign(x=-1.0, y=-1.0, z=-1.0)
    return table.iloc[rng.permutation(len(table))].reset_index(drop=True)


def _files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A real MLflow SQLite registry whose artifacts stay in tmp (not ./mlruns)."""
    root = tmp_path_factory.mktemp("registry")
    with mlflow_backend(f"sqlite:///{root / 'mlflow.db'}"):
        experiment = mlflow.create_experiment("served", artifact_location=(root / "art").as_uri())
        mlflow.set_experiment(experiment_id=experiment)
        yield root


def _register(checkpoint: Path, name: str, params: dict[str, str] | None = None) -> str:
    with mlflow.start_run():
        mlflow.log_params(params or {})
        log_and_register(checkpoint, name)
    return f"models:/{name}@candidate"


def gradient_boosting() -> FittedFamily:
    """A gradient-boosting family fitted on labelled random tracks in a 128-px frame."""
    train, val = (
        labelled(random_rows(seed=seed, n_tracks=150, frame_size=(128, 128)), seed)
        for seed in (1, 2)
    )
    return fit_family("gradient_boosting", train, val, (128, 128))


@pytest.fixture(scope="module", params=["transformer", "gradient_boosting"])
def model(registry, request):
    """A small persistence model, the learned one or a classical family, registered with an
    operating threshold that splits the rows (each served test runs with both)."""
    family = request.param
    learned = family == "transformer"
    pipeline = build_pipeline(SMALL_MODEL, seed=3) if learned else gradient_boosting()
    rows = tracker_rows()
    scores = score_rows(pipeline, track_rows(rows, np.arange(len(rows)), (128, 128), ""))
    threshold = float(np.median(scores))
    checkpoint = registry / f"model-{family}.pt"
    metadata = {"operating_threshold": threshold}
    if learned:
        save_checkpoint(pipeline, checkpoint, metadata)
    else:
        torch.save(family_checkpoint(pipeline, metadata), checkpoint)
    uri = _register(
        checkpoint,
        f"track-persistence-{family.replace('_', '-')}",
        {"features.checkpoint_hash": "None"},
    )
    return {"uri": uri, "pipeline": pipeline, "threshold": threshold, "checkpoint": checkpoint}


def test_a_pickle_planted_in_the_gradient_boosting_model_is_refused(registry, tmp_path):
    """The skops payload inside a family checkpoint replaced by a pickle: refused in one
    sentence by our loader and by MLflow's, and nothing in it runs."""
    marker = tmp_path / "pwned"
    checkpoint = family_checkpoint(gradient_boosting())
    torch.save(checkpoint, tmp_path / "good.pt")
    uri = _register(tmp_path / "good.pt", "crafted-skops")
    evil = bytearray(pickle.dumps(WritesMarker(marker)))
    checkpoint["skops"] = torch.frombuffer(evil, dtype=torch.uint8)
    torch.save(checkpoint, _artifact_file(uri))
    with pytest.raises(StoreError, match="weights-only"):
        load_model(uri)
    with pytest.raises(ValueError, match="not a skops file of trusted types"):
        mlflow.pyfunc.load_model(uri)
    assert not marker.exists()


def test_a_model_of_another_version_is_refused_by_name(registry, tmp_path):
    """A registered model whose first layer reads two hand-made features fewer (an earlier
    tp's): one sentence that says so and what to do, not "no weights-only checkpoint"."""
    checkpoint = checkpoint_dict(build_pipeline(SMALL_MODEL, seed=3))
    torch.save(checkpoint, tmp_path / "model.pt")
    uri = _register(tmp_path / "model.pt", "earlier-version")
    first = next(k for k, v in checkpoint["state_dict"].items() if v.ndim == 2)
    checkpoint["state_dict"][first] = checkpoint["state_dict"][first][:, :-2]
    torch.save(checkpoint, _artifact_file(uri))
    with pytest.raises(StoreError, match=f"another version of tp .*wrong shapes: {first}.*retrain"):
        load_model(uri)


@pytest.fixture(scope="module")
def tokenizer(registry):
    model = MagVitTokenizer(TINY_TOKENIZER).eval()
    checkpoint = save_tokenizer(model, registry / "tokenizer.pt")
    digest = checkpoint_hash(checkpoint)
    uri = _register(checkpoint, "magvit-tokenizer", {"tokenizer.checkpoint_hash": digest})
    return {"uri": uri, "model": model, "checkpoint": checkpoint, "hash": digest}


def test_round_trip_through_the_registry_gives_identical_scores(model):
    loaded = load_model(model["uri"])
    loaded, params = loaded.pipeline, loaded.record.params
    assert params["features.checkpoint_hash"] == "None"
    rows = tracker_rows(seed=1)
    table = track_rows(rows, np.arange(len(rows)), (128, 128), "")
    expected = score_rows(model["pipeline"], table)
    np.testing.assert_array_equal(score_rows(loaded, table), expected)
    served = mlflow.pyfunc.load_model(model["uri"]).predict(rows)
    np.testing.assert_array_equal(served["p_persistent"].to_numpy(), expected)


def test_pyfunc_scores_every_row_once_in_input_order_online(model):
    rows = tracker_rows()
    out = mlflow.pyfunc.load_model(model["uri"]).predict(rows)
    assert list(out.columns) == ["p_persistent", "confirmed"] and out.index.equals(rows.index)
    # Each row's score is the one it gets when the file ends at its frame: its track's past
    # and the scene's (the other tracks' births and detections so far), nothing later.
    for i, row in rows.iterrows():
        past = rows[rows["frame"] <= row["frame"]]
        then = score_rows(model["pipeline"], track_rows(past, np.arange(len(past)), (128, 128), ""))
        assert out.loc[i, "p_persistent"] == pytest.approx(then[past.index.get_loc(i)], abs=1e-6)
    confirmed = out["confirmed"].to_numpy()
    np.testing.assert_array_equal(confirmed, out["p_persistent"].to_numpy() >= model["threshold"])
    assert confirmed.any() and not confirmed.all()


def test_sequences_are_scored_apart_and_frame_size_rescales(model):
    served = mlflow.pyfunc.load_model(model["uri"])
    first, second = tracker_rows(seed=1), tracker_rows(seed=2)
    both = pd.concat([first.assign(seq="a"), second.assign(seq="b")], ignore_index=True)
    out = served.predict(both)["p_persistent"].to_numpy()
    np.testing.assert_allclose(out[: len(first)], served.predict(first)["p_persistent"], atol=1e-7)
    np.testing.assert_allclose(out[len(first) :], served.predict(second)["p_persistent"], atol=1e-7)
    # The same scene in a frame twice as large, stated per row, scores the same.
    doubled = first.assign(**{c: first[c] * 2 for c in ("bb_left", "bb_top", "bb_width")})
    doubled = doubled.assign(bb_height=doubled["bb_height"] * 2, im_width=256, im_height=256)
    np.testing.assert_allclose(
        served.predict(doubled)["p_persistent"], served.predict(first)["p_persistent"], atol=1e-6
    )
    from mlflow.exceptions import MlflowException  # a bad request: a 400 with the sentence

    with pytest.raises(MlflowException, match="im_height"):
        served.predict(first.assign(im_width=256))


def test_tokenizer_round_trip_and_served_latents(tokenizer, tmp_path):
    path, digest = tokenizer_checkpoint(tokenizer["uri"], tmp_path / "checkpoints")
    assert digest == tokenizer["hash"] == checkpoint_hash(path)
    assert path == tmp_path / "checkpoints" / f"{digest}.pt"
    video = np.random.default_rng(0).integers(0, 256, (2, 5, 16, 16, 3), dtype=np.uint8)
    served = mlflow.pyfunc.load_model(tokenizer["uri"]).predict(video)
    np.testing.assert_array_equal(served, tokenizer["model"].encode(video)[0].numpy())


def test_a_tokenizer_given_as_the_persistence_model_is_named_the_wrong_kind(tokenizer):
    with pytest.raises(StoreError) as error:
        load_model(tokenizer["uri"])
    message = str(error.value)
    assert tokenizer["uri"] in message and "tokenizer" in message and "retrain" not in message
    assert "tp train`" in message


@pytest.mark.parametrize(
    "uri", ["http://127.0.0.1:1/model", "https://example.invalid/m", "ftp://example.invalid/x"]
)
def test_a_model_uri_mlflow_cannot_load_is_one_sentence(registry, uri):
    """`--model-uri http://...` was `ValueError: not enough values to unpack`."""
    with pytest.raises(UserError) as error:
        load_model(uri)
    message = str(error.value)
    assert message.startswith(f"model_uri: {uri!r} ") and "models:/" in message
    assert "\n" not in message


class WritesMarker:
    """Unpickling this runs a shell command: what a crafted registry entry would carry."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _artifact_file(model_uri: str) -> Path:
    info = mlflow.models.get_model_info(model_uri)
    location = mlflow.get_logged_model(info.model_id).artifact_location
    return Path(urlparse(location).path if "://" in location else location) / CHECKPOINT_DATA


@pytest.mark.parametrize("wrapping", ["pickle", "torch.save"])
def test_crafted_pickle_in_the_artifact_store_is_refused_and_runs_nothing(
    model, tmp_path, wrapping
):
    marker = tmp_path / "pwned"
    evil = {"format": "tp_models.model.checkpoint/1", "config": WritesMarker(marker)}
    payload = tmp_path / "evil.pt"
    if wrapping == "pickle":
        payload.write_bytes(pickle.dumps(evil))
    else:
        torch.save(evil, payload)
    pickle.loads(pickle.dumps(WritesMarker(tmp_path / "proof")))  # the payload does run code
    assert (tmp_path / "proof").exists() and not marker.exists()

    uri = _register(model["checkpoint"], f"crafted-{wrapping.replace('.', '-')}")
    _artifact_file(uri).write_bytes(payload.read_bytes())
    with pytest.raises(StoreError, match="weights-only"):
        load_model(uri)
    with pytest.raises(Exception, match="(?i)weights.only|unpickl"):
        mlflow.pyfunc.load_model(uri)
    assert not marker.exists()


def test_crafted_checkpoint_hash_in_the_registry_is_refused(tokenizer, registry, tmp_path):
    uri = _register(
        tokenizer["checkpoint"], "crafted-hash", {"tokenizer.checkpoint_hash": "../../x"}
    )
    folder = tmp_path / "a" / "b" / "checkpoints"
    before = _files_under(tmp_path) | _files_under(registry)
    with pytest.raises(StoreError, match="not a 16-character hex checkpoint hash"):
        tokenizer_checkpoint(uri, folder)
    with pytest.raises(StoreError, match="tokenizer.checkpoint_hash='../../x'"):
        load_model(uri)
    assert _files_under(tmp_path) | _files_under(registry) == before


def test_a_bad_request_is_mlflows_bad_request_with_the_sentence(model):
    """The served model's input errors are MlflowException BAD_REQUEST (a 400 whose message
    is the sentence), not a generic error with a stack trace."""
    from mlflow.exceptions import MlflowException

    rows = tracker_rows(seed=2)
    rows.loc[3, "bb_width"] = 0
    with pytest.raises(MlflowException) as error:
        mlflow.pyfunc.load_model(model["uri"]).predict(rows)
    assert error.value.error_code == "BAD_REQUEST"
    assert "column 'bb_width' must be positive" in error.value.message
    assert error.value.get_http_status_code() == 400


@pytest.mark.slow
def test_mlflow_models_serve_answers_tracker_rows(model, registry, tmp_path):
    """`mlflow models serve` on loopback: MOTChallenge rows as JSON records in, per-row out."""
    port = free_port()
    args = [str(BIN / "mlflow"), "models", "serve", "-m", model["uri"], "--env-manager", "local"]
    args += ["-p", str(port), "-h", "127.0.0.1"]
    # No PYTHONPATH: the server must find tp_models in the model's packaged code.
    # The venv's bin on PATH: mlflow starts `uvicorn` by name, as in an activated venv.
    env = {"MLFLOW_TRACKING_URI": os.environ["MLFLOW_TRACKING_URI"]}
    env["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    env["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "false"  # serves without any unpickling
    rows = tracker_rows(seed=4)
    request = json.dumps({"dataframe_records": rows.to_dict(orient="records")}).encode()

    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    with process(args, env=env, log=tmp_path / "serve.log") as server:
        wait_for(lambda: answers() or server.poll() is not None, 50, "mlflow models serve")
        assert server.poll() is None, (tmp_path / "serve.log").read_text()[-2000:]
        post = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=request,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(post, timeout=20) as response:
            predictions = json.loads(response.read())["predictions"]
        bad = rows.copy()
        bad.loc[0, "bb_width"] = -1
        refused = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=json.dumps({"dataframe_records": bad.to_dict(orient="records")}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(refused, timeout=20)
        assert answer.value.code == 400
        body = json.loads(answer.value.read())
        assert "column 'bb_width' must be positive" in body["message"]
        assert "stack_trace" not in body and str(Path.cwd()) not in json.dumps(body)
    expected = mlflow.pyfunc.load_model(model["uri"]).predict(rows)
    assert len(predictions) == len(rows)
    got = np.array([p["p_persistent"] for p in predictions])
    np.testing.assert_allclose(got, expected["p_persistent"].to_numpy(), atol=1e-6)
    assert [p["confirmed"] for p in predictions] == expected["confirmed"].tolist()
