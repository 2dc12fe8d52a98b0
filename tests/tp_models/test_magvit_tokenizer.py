"""Shapes, causality and conventions of the MAGVIT-style tokenizer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.tp_models.magvit_helpers import TINY, moving_squares
from tp_models.magvit.tokenizer import (
    MagVitTokenizer,
    TokenizerConfig,
    to_model_input,
    to_uint8,
)


def randomised(model: MagVitTokenizer) -> MagVitTokenizer:
    """Give every weight (including zero-initialised residual branches) random values, so a
    causality leak anywhere would show up."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=gen) * 0.2)
    return model.eval()


@pytest.mark.parametrize(("spatial", "grid"), [(8, 16), (16, 8)])
def test_encode_shapes_for_25_frames_of_128px(spatial: int, grid: int) -> None:
    torch.manual_seed(0)
    config = TokenizerConfig(spatial_downsample=spatial)
    model = MagVitTokenizer(config).eval()
    video = moving_squares(1, 25, 128)
    latents, codes = model.encode(video)
    assert latents.shape == (1, 7, 256, grid, grid)
    assert latents.dtype == torch.float32
    assert codes.shape == (1, 7, grid, grid)
    assert codes.dtype == torch.int64
    assert int(codes.min()) >= 0 and int(codes.max()) < config.codebook_size
    assert config.latent_steps(25) == 7


def test_decode_restores_frames_and_range() -> None:
    model = MagVitTokenizer(TINY).eval()
    _, codes = model.encode(moving_squares(2, 25, 32))
    assert codes.shape == (2, 7, 4, 4)
    recon = model.decode(codes)
    assert recon.shape == (2, 3, 25, 32, 32)
    assert float(recon.min()) >= -1.0 and float(recon.max()) <= 1.0


def test_changing_frame_9_leaves_steps_0_to_2_unchanged() -> None:
    torch.manual_seed(0)
    model = randomised(MagVitTokenizer(TINY))
    video = moving_squares(1, 25, 32)
    changed = video.copy()
    changed[:, 9] = np.random.default_rng(1).integers(0, 256, changed[:, 9].shape)
    before, _ = model.encode(video)
    after, _ = model.encode(changed)
    assert torch.equal(before[:, :3], after[:, :3])  # steps 0..2 see frames 0..8 only
    assert not torch.allclose(before[:, 3], after[:, 3])  # step 3 holds frames 9..12


def test_first_frame_is_encoded_alone() -> None:
    torch.manual_seed(0)
    model = randomised(MagVitTokenizer(TINY))
    video = moving_squares(1, 25, 32)
    changed = video.copy()
    changed[:, 1:] = 255 - changed[:, 1:]
    before, _ = model.encode(video)
    after, _ = model.encode(changed)
    assert torch.equal(before[:, 0], after[:, 0])
    assert not torch.allclose(before[:, 1], after[:, 1])


def test_decoder_is_causal_in_time() -> None:
    torch.manual_seed(0)
    model = randomised(MagVitTokenizer(TINY))
    _, codes = model.encode(moving_squares(1, 25, 32))
    changed = codes.clone()
    changed[:, 3] = (changed[:, 3] + 1) % TINY.codebook_size
    before, after = model.decode(codes), model.decode(changed)
    assert torch.equal(before[:, :, :9], after[:, :, :9])  # frames 0..8 come from steps 0..2
    assert not torch.allclose(before[:, :, 9:13], after[:, :, 9:13])


@pytest.mark.parametrize("frames", [24, 26, 8, 0])
def test_frame_count_not_one_plus_4n_raises(frames: int) -> None:
    model = MagVitTokenizer(TINY).eval()
    with pytest.raises(ValueError, match=r"1 \+ 4\*n frames"):
        model.encode(np.zeros((1, frames, 32, 32, 3), np.uint8))


def test_frame_size_not_multiple_of_downsampling_raises() -> None:
    model = MagVitTokenizer(TINY).eval()
    with pytest.raises(ValueError, match="spatial_downsample"):
        model.encode(np.zeros((1, 5, 36, 32, 3), np.uint8))


def test_model_input_range_and_round_trip() -> None:
    video = np.array([0, 1, 127, 128, 254, 255], np.uint8).reshape(1, 1, 1, 6, 1).repeat(3, -1)
    x = to_model_input(video)
    assert x.shape == (1, 3, 1, 1, 6)
    assert float(x.min()) == -1.0 and float(x.max()) == 1.0
    np.testing.assert_array_equal(to_uint8(x), video)
    with pytest.raises(TypeError, match="uint8"):
        to_model_input(video.astype(np.float32))


def test_encode_and_decode_agree_with_forward() -> None:
    torch.manual_seed(0)
    model = MagVitTokenizer(TINY).eval()
    video = moving_squares(2, 9, 32)
    with torch.no_grad():
        out = model(to_model_input(video))
    latents, codes = model.encode(video)
    assert torch.equal(out.codes, codes)
    torch.testing.assert_close(out.latents, latents)
    torch.testing.assert_close(model.decode(codes), out.recon.clamp(-1, 1))


def test_config_dict_round_trip_and_unknown_field() -> None:
    config = TokenizerConfig(spatial_downsample=16, latent_dim=64)
    assert TokenizerConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="bogus"):
        TokenizerConfig.from_dict({**config.to_dict(), "bogus": 1})
    with pytest.raises(ValueError, match="power of two"):
        TokenizerConfig(codebook_size=1000)
