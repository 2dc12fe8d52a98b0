"""train-tokenizer, cache-features and MagVit/hybrid training on real stores and MLflow."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import zarr

from flows.cache_features import cache_features
from flows.cli import main
from flows.evaluate import evaluate
from flows.train import train
from storage.features import LATENTS
from storage.store import Store
from storage.track_reader import TrackSource
from tasks.specs import EvaluateSpec, FeaturesSpec, TrainSpec
from tp_models.magvit import MagVitTokenizer, load_tokenizer
from tp_models.magvit.sampling import sample_latents_along_track

pytestmark = pytest.mark.usefixtures("prefect_harness", "mlflow_uri")


def test_tokenizer_is_registered_with_its_checkpoint(tokenizer):
    summary = tokenizer["summary"]
    assert summary["heldout_psnr"] > 10 and 0 < summary["heldout_codebook_usage"] <= 1
    model = load_tokenizer(summary["checkpoint"])  # strict load of the registered weights
    assert model.config.latent_dim == 16 and model.config.codebook_size == 64


def test_cached_latents_are_the_encoder_output(tokenizer, small_store):
    features = Store.open(small_store).features(tokenizer["summary"]["checkpoint_hash"])
    assert features.done_chunks().all() and features.group.attrs["complete"]
    model = load_tokenizer(tokenizer["summary"]["checkpoint"])
    videos = zarr.open_group(small_store, mode="r")["videos"][:3]
    with torch.inference_mode():
        expected, _ = model.encode(videos)
    cached = features.read(LATENTS, 0, 3).astype(np.float32)
    np.testing.assert_allclose(cached, expected.numpy(), rtol=1e-2, atol=1e-2)
    assert cached.shape == (3, 4, 16, 8, 8)  # 13 frames -> 4 steps, 64 px / 8


def test_cache_rerun_encodes_nothing_and_resumes_a_lost_chunk(tokenizer, small_store):
    params = FeaturesSpec.model_validate(  # the same checkpoint by its alias: the hash is the key
        {
            "store": small_store,
            "tokenizer_uri": "models:/magvit-tokenizer@candidate",
            "compute": {"workers": 1},
            "checkpoints": str(tokenizer["checkpoints"]),
        }
    )
    assert cache_features(params)["videos_encoded"] == 0
    features = Store.open(small_store).features(tokenizer["summary"]["checkpoint_hash"])
    before = features.read(LATENTS, 20, 30)
    features.group["_chunk_checksum"][2] = 0  # as if killed before chunk 2's done marker
    assert cache_features(params)["videos_encoded"] == 10
    np.testing.assert_array_equal(features.read(LATENTS, 20, 30), before)


def test_reader_samples_cached_latents_along_tracks(tokenizer, small_store):
    source = TrackSource.open(
        Store.open(small_store), features_hash=tokenizer["summary"]["checkpoint_hash"]
    )
    batch, _ = next(source.chunk_batches(np.arange(10)))
    track = 0
    video = int(batch.video[track])
    latents = source.features.read(LATENTS, video, video + 1)[0].astype(np.float32)
    expected = sample_latents_along_track(
        latents, batch.position[track : track + 1], 64, 13, time_rule="completed"
    )[0]
    np.testing.assert_allclose(
        batch.extras["magvit"][track].astype(np.float32), expected, atol=1e-2
    )


def test_hybrid_training_reads_the_cache_and_never_runs_the_encoder(
    tokenizer, small_store, tmp_path, monkeypatch
):
    def refuse(*args, **kwargs):
        raise AssertionError("training must read cached features, not run the encoder")

    monkeypatch.setattr(MagVitTokenizer, "encode", refuse)
    monkeypatch.setattr(MagVitTokenizer, "forward", refuse)
    params = TrainSpec.model_validate(
        {
            "store": small_store,
            "model": {"features": "hybrid"},
            "training": {"max_epochs": 2},
            "checkpoints": str(tmp_path),
            "tokenizer_uri": tokenizer["summary"]["tokenizer_uri"],
        }
    )
    summary = train(params)
    assert summary["features"] == "hybrid"
    report = evaluate(
        EvaluateSpec(store=small_store, model_uri=summary["model_uri"], out=str(tmp_path / "r"))
    )
    assert "model" in report["scorers"]


def test_magvit_before_caching_says_what_to_run(
    tokenizer, small_store, tiny_store, tmp_path, capsys
):
    import shutil

    uri = tokenizer["summary"]["tokenizer_uri"]
    copy = tmp_path / "uncached.zarr"
    shutil.copytree(small_store, copy)
    del zarr.open_group(str(copy), mode="r+")["features"]
    args = ["train", "--features", "magvit", "--tokenizer-uri", uri]
    assert main([*args, "--store", str(copy)]) == 2
    assert "tp cache-features" in capsys.readouterr().err
    # a tokenizer trained on other data could have seen this model's test videos
    assert main([*args, "--store", tiny_store]) == 2
    assert "tp train-tokenizer" in capsys.readouterr().err


def test_frame_count_the_encoder_cannot_take(tmp_path, capsys):
    store = tmp_path / "ten.zarr"
    args = [
        "generate",
        "--store",
        str(store),
        "--persistent",
        "2",
        "--brief",
        "2",
        "--noise",
        "0",
        "--mixed",
        "0",
        "--frames",
        "10",
        "--size",
        "64",
        "--workers",
        "1",
    ]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["train-tokenizer", "--store", str(store), "--steps", "1"]) == 2
    assert "1 + 4" in capsys.readouterr().err.replace("1+4", "1 + 4")
