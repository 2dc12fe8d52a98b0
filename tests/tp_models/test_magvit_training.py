"""The pure-torch training loop learns, and its metrics mean what they say."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.tp_models.magvit_helpers import TINY, moving_squares
from tp_models.magvit.tokenizer import MagVitTokenizer, to_model_input
from tp_models.magvit.training import (
    TokenizerTrainConfig,
    codebook_perplexity,
    codebook_usage,
    evaluate_tokenizer,
    fit_tokenizer,
    psnr,
    reconstruction_grid,
)


def test_tiny_tokenizer_loss_falls_over_30_steps() -> None:
    torch.manual_seed(0)
    model = MagVitTokenizer(TINY)
    videos = moving_squares(4, 5, 32)
    config = TokenizerTrainConfig(
        steps=30,
        batch_size=4,
        lr=3e-3,
        warmup_steps=3,
        clip_frames=None,
        crop_size=None,
        log_every=1,
        seed=0,
    )
    logged: list[tuple[int, dict[str, float]]] = []
    history = fit_tokenizer(model, [videos], config, on_log=lambda s, m: logged.append((s, m)))
    assert len(history) == 30 and [s for s, _ in logged] == list(range(30))
    assert {"loss", "recon", "entropy", "commitment", "psnr", "lr"} <= set(logged[0][1])
    first = np.mean([h["recon"] for h in history[:3]])
    last = np.mean([h["recon"] for h in history[-3:]])
    assert last < 0.5 * first, (first, last)
    assert history[-1]["psnr"] > history[0]["psnr"] + 3
    assert not model.training
    scores = evaluate_tokenizer(model, videos, batch_size=2)
    assert math.isfinite(scores["psnr"]) and 0 < scores["codebook_usage"] <= 1


def test_crops_and_clips_keep_valid_shapes() -> None:
    torch.manual_seed(0)
    model = MagVitTokenizer(TINY)
    config = TokenizerTrainConfig(steps=2, batch_size=2, clip_frames=5, crop_size=16, log_every=1)
    history = fit_tokenizer(model, iter([moving_squares(2, 9, 32)] * 2), config)
    assert len(history) == 2
    with pytest.raises(ValueError, match="1 \\+ 4\\*n"):
        TokenizerTrainConfig(clip_frames=8)


def test_psnr_is_over_whole_frames_in_pixel_units() -> None:
    target = np.zeros((2, 5, 8, 8, 3), np.uint8)
    recon = target + 1  # off by one grey level everywhere
    assert psnr(recon, target) == pytest.approx(20 * math.log10(255), abs=1e-9)
    # float model outputs in [-1, 1] mean the same pixels
    as_float = to_model_input(recon).permute(0, 2, 3, 4, 1)
    assert psnr(as_float, target) == pytest.approx(48.1308, abs=1e-3)
    # one video perfect, one off by 2: per-video values, pooled mean of squared errors
    recon[0] = 0
    recon[1] = 2
    np.testing.assert_allclose(
        psnr(recon, target, reduction="per_video"), [np.inf, 42.1102], atol=1e-3
    )
    assert psnr(recon, target) == pytest.approx(10 * math.log10(255**2 / 2), abs=1e-9)
    # a mask restricts the error to chosen pixels
    mask = np.zeros(target.shape, bool)
    mask[1] = True
    assert psnr(recon, target, mask=mask) == pytest.approx(42.1102, abs=1e-3)


def test_codebook_usage_and_perplexity() -> None:
    codes = torch.tensor([[0, 1], [1, 3]])
    assert codebook_usage(codes, 8) == 3 / 8
    assert codebook_perplexity(torch.tensor([0, 1, 2, 3]), 8) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="outside"):
        codebook_usage(torch.tensor([8]), 8)


def test_reconstruction_grid_stacks_original_over_reconstruction() -> None:
    video = np.zeros((2, 9, 16, 16, 3), np.uint8)
    video[:, 4] = 200
    recon = np.full_like(video, 50)
    grid = reconstruction_grid(video, recon, gap=2)
    # 2 videos x (original, recon) rows; frames 0, 4, 8 as columns
    assert grid.dtype == np.uint8
    assert grid.shape == (4 * 16 + 3 * 2, 3 * 16 + 2 * 2, 3)
    assert (grid[:16, 18:34] == 200).all()  # video 0, frame 4, original
    assert (grid[18:34, :16] == 50).all()  # video 0, frame 0, reconstruction
    model_layout = to_model_input(recon)
    np.testing.assert_array_equal(reconstruction_grid(video, model_layout, gap=2), grid)
