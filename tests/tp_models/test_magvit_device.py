"""The tokenizer on a device: evaluation and feature encoding run where the model is, and
what a GPU run writes loads on the CPU. GPU checks run only where CUDA exists."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from tests.tp_models.magvit_helpers import TINY, moving_squares
from tp_models.core.device import DeviceError
from tp_models.magvit.checkpoint import load_tokenizer, save_tokenizer
from tp_models.magvit.tokenizer import MagVitTokenizer
from tp_models.magvit.training import (
    TokenizerTrainConfig,
    codebook_perplexity,
    codebook_usage,
    evaluate_tokenizer,
    fit_tokenizer,
    psnr,
)

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
without_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
STEPS = TokenizerTrainConfig(steps=3, batch_size=2, clip_frames=5, crop_size=16, log_every=1)


@pytest.fixture(scope="module")
def videos() -> np.ndarray:
    return moving_squares(5, 5, 16, seed=3)


@pytest.fixture(scope="module")
def trained(videos) -> MagVitTokenizer:
    torch.manual_seed(0)
    model = MagVitTokenizer(TINY)
    fit_tokenizer(model, [videos[:2]], STEPS)
    return model


def test_evaluate_tokenizer_equals_the_metrics_of_a_plain_reconstruction(trained, videos) -> None:
    trained.train()
    scores = evaluate_tokenizer(trained, videos, batch_size=2)
    assert trained.training  # left as it was found
    trained.eval()
    recon = trained.reconstruct(videos)
    codes = trained.encode(videos)[1]
    assert scores["psnr"] == pytest.approx(psnr(recon.permute(0, 2, 3, 4, 1), videos), rel=1e-6)
    assert scores["codebook_usage"] == codebook_usage(codes, TINY.codebook_size)
    assert scores["codebook_perplexity"] == pytest.approx(
        codebook_perplexity(codes, TINY.codebook_size), rel=1e-12
    )


def test_encode_latents_is_encode_in_batches_on_the_host(trained, videos) -> None:
    latents = trained.encode_latents(videos, batch_size=2)
    expected = trained.encode(videos)[0].numpy()
    assert isinstance(latents, np.ndarray) and latents.dtype == np.float32
    np.testing.assert_allclose(latents, expected, rtol=1e-5, atol=1e-6)
    half = trained.encode_latents(videos, batch_size=2, dtype=torch.float16)
    assert half.dtype == np.float16
    np.testing.assert_array_equal(half, latents.astype(np.float16))
    with pytest.raises(ValueError, match="videos is empty"):
        trained.encode_latents(videos[:0])


def test_checkpoints_load_on_a_named_device(trained, tmp_path) -> None:
    path = save_tokenizer(trained, tmp_path / "tok.pt")
    loaded = load_tokenizer(path, map_location="auto")
    expected_type = "cuda" if torch.cuda.is_available() else "cpu"
    assert next(loaded.parameters()).device.type == expected_type
    with pytest.raises(DeviceError, match="device parameter"):
        load_tokenizer(path, map_location="gpu")


@without_cuda
def test_training_on_a_missing_gpu_fails_before_any_step(videos) -> None:
    model = MagVitTokenizer(TINY)
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(DeviceError, match="sees none"):
        fit_tokenizer(model, [videos[:2]], STEPS, device="cuda")
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


@needs_cuda
def test_train_evaluate_and_encode_on_a_gpu(trained, videos, tmp_path) -> None:
    on_gpu = copy.deepcopy(trained)
    history = fit_tokenizer(on_gpu, [videos[:2]], STEPS, device="cuda")
    assert next(on_gpu.parameters()).is_cuda and len(history) == STEPS.steps
    on_cpu = load_tokenizer(save_tokenizer(on_gpu, tmp_path / "gpu.pt"), map_location="cpu")
    assert next(on_cpu.parameters()).device.type == "cpu"
    gpu_scores = evaluate_tokenizer(on_gpu, videos, batch_size=2)
    cpu_scores = evaluate_tokenizer(on_cpu, videos, batch_size=2)
    # cuDNN convolutions may use TF32: the same weights agree to ~1e-3, not bit for bit.
    assert gpu_scores["psnr"] == pytest.approx(cpu_scores["psnr"], abs=0.05)
    np.testing.assert_allclose(
        on_gpu.encode_latents(videos), on_cpu.encode_latents(videos), rtol=1e-2, atol=1e-2
    )
