"""Checkpoints round-trip exactly and refuse anything that does not fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.tp_models.magvit_helpers import TINY  # noqa: E402 - one tiny config for all tests
from tp_models.magvit.checkpoint import (
    CheckpointMismatchError,
    checkpoint_hash,
    load_tokenizer,
    load_tokenizer_weights,
    save_tokenizer,
)
from tp_models.magvit.tokenizer import MagVitTokenizer, TokenizerConfig


def random_video(frames: int = 9, size: int = 32) -> np.ndarray:
    rng = np.random.default_rng(0)
    video = np.zeros((2, frames, size, size, 3), np.uint8)
    video[:, :, 8:16, 10:18] = rng.integers(0, 256, (2, frames, 8, 8, 3))
    return video


@pytest.fixture
def saved(tmp_path: Path) -> tuple[MagVitTokenizer, Path]:
    torch.manual_seed(0)
    model = MagVitTokenizer(TINY).eval()
    with torch.no_grad():  # move away from the init so a fresh model cannot pass by luck
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.1)
    return model, save_tokenizer(model, tmp_path / "tok.pt")


def test_round_trip_gives_identical_codes_and_weights(saved: tuple) -> None:
    model, path = saved
    loaded = load_tokenizer(path)
    assert loaded.config == TINY
    assert not loaded.training
    video = random_video()
    latents, codes = model.encode(video)
    latents2, codes2 = loaded.encode(video)
    assert torch.equal(codes, codes2)
    assert torch.equal(latents, latents2)
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key


def test_a_fresh_model_gives_different_codes(saved: tuple) -> None:
    # Guards the round-trip test: random weights must not reproduce the codes.
    model, _ = saved
    torch.manual_seed(1)
    _, codes = model.encode(random_video())
    _, fresh_codes = MagVitTokenizer(TINY).eval().encode(random_video())
    assert not torch.equal(codes, fresh_codes)


def test_checkpoint_hash_is_short_stable_and_content_based(saved: tuple, tmp_path: Path) -> None:
    model, path = saved
    digest = checkpoint_hash(path)
    assert len(digest) == 16 and int(digest, 16) >= 0
    assert checkpoint_hash(save_tokenizer(model, tmp_path / "again.pt")) == digest
    with torch.no_grad():
        model.decoder.proj_in.bias.add_(1.0)
    assert checkpoint_hash(save_tokenizer(model, tmp_path / "changed.pt")) != digest


def test_expected_config_mismatch_names_the_field(saved: tuple) -> None:
    _, path = saved
    other = TokenizerConfig(**{**TINY.to_dict(), "latent_dim": 16})
    with pytest.raises(CheckpointMismatchError, match=r"latent_dim=32 \(expected 16\)"):
        load_tokenizer(path, expected_config=other)
    with pytest.raises(CheckpointMismatchError, match="latent_dim"):
        load_tokenizer_weights(MagVitTokenizer(other), path)


def _tamper(path: Path, edit) -> Path:
    payload = torch.load(path, weights_only=True)
    edit(payload)
    torch.save(payload, path)
    return path


def test_missing_key_is_named(saved: tuple) -> None:
    _, path = saved
    _tamper(path, lambda p: p["state_dict"].pop("decoder.proj_in.weight"))
    with pytest.raises(CheckpointMismatchError, match=r"missing keys: decoder\.proj_in\.weight"):
        load_tokenizer(path)


def test_unexpected_key_is_named(saved: tuple) -> None:
    _, path = saved
    _tamper(path, lambda p: p["state_dict"].__setitem__("head.extra", torch.zeros(3)))
    with pytest.raises(CheckpointMismatchError, match=r"unexpected keys: head\.extra"):
        load_tokenizer(path)


def test_wrong_shape_is_named(saved: tuple) -> None:
    _, path = saved
    _tamper(path, lambda p: p["state_dict"].__setitem__("encoder.proj_out.bias", torch.zeros(7)))
    with pytest.raises(CheckpointMismatchError, match=r"wrong shapes: encoder\.proj_out\.bias"):
        load_tokenizer(path)


def test_config_that_does_not_match_the_weights_is_refused(saved: tuple) -> None:
    _, path = saved
    _tamper(path, lambda p: p["config"].__setitem__("latent_dim", 48))
    with pytest.raises(CheckpointMismatchError, match="wrong shapes"):
        load_tokenizer(path)


def test_not_a_checkpoint_is_refused(tmp_path: Path) -> None:
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointMismatchError, match="not a tokenizer checkpoint"):
        load_tokenizer(tmp_path / "other.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a zip file")
    with pytest.raises(CheckpointMismatchError, match="not a readable"):
        load_tokenizer(tmp_path / "garbage.pt")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_tokenizer(tmp_path / "missing.pt")


class _Payload:
    """Arbitrary pickled objects must never be unpickled (weights_only=True)."""


def test_pickled_code_is_refused(saved: tuple) -> None:
    _, path = saved
    _tamper(path, lambda p: p.__setitem__("extra", _Payload()))
    with pytest.raises(CheckpointMismatchError, match="not a readable"):
        load_tokenizer(path)
