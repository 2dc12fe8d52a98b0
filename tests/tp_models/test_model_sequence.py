"""Causality, attention and padding of the sequence model and the whole pipeline."""

from __future__ import annotations

import pytest
import torch

from tp_models.model import ModelConfig, SimpleTransformerSequence, build_pipeline

# Kinematic inputs only: these tests feed tensors; the track features are tested on batches.
CONFIG = ModelConfig(
    d_model=32, n_heads=4, n_layers=2, ff_dim=64, feature_dim=32, track_features=False
)


def track_inputs(b: int = 6, t: int = 20, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    observed = torch.rand(b, t, generator=gen) < 0.75
    observed[0, :7] = False  # late start: leading padding
    observed[1] = False  # never observed: all padding
    return {"position": torch.rand(b, t, 2, generator=gen) * 128, "observed": observed}


@pytest.mark.parametrize("cut", [0, 5, 11, 18])
def test_pipeline_is_causal(cut: int) -> None:
    pipeline = build_pipeline(CONFIG, seed=0).eval()
    x = track_inputs()
    changed = {k: v.clone() for k, v in x.items()}
    gen = torch.Generator().manual_seed(1)
    changed["position"][:, cut + 1 :] = (
        torch.rand(changed["position"][:, cut + 1 :].shape, generator=gen) * 500
    )
    changed["observed"][:, cut + 1 :] = ~changed["observed"][:, cut + 1 :]
    with torch.no_grad():
        before = pipeline(x)["logits"]
        after = pipeline(changed)["logits"]
    torch.testing.assert_close(after[:, : cut + 1], before[:, : cut + 1], atol=1e-6, rtol=0)
    # The perturbation does reach later steps, so the comparison above can fail.
    assert not torch.allclose(after[:, cut + 1 :], before[:, cut + 1 :], atol=1e-3)


def test_non_causal_model_sees_the_future() -> None:
    sequence = SimpleTransformerSequence(
        input_dim=8, d_model=8, n_heads=2, n_layers=1, causal=False
    ).eval()
    x = torch.randn(2, 10, 8)
    changed = x.clone()
    changed[:, 9] += torch.randn(8)  # not a constant: LayerNorm removes those
    with torch.no_grad():
        assert not torch.allclose(sequence(x)[:, 0], sequence(changed)[:, 0], atol=1e-6)


def test_attention_weights_are_stored_and_causal() -> None:
    pipeline = build_pipeline(CONFIG, seed=0).eval()
    x = track_inputs()
    with torch.no_grad():
        pipeline(x)
    attention = pipeline.get_attention()
    assert len(attention) == CONFIG.n_layers
    padding = x["observed"].cumsum(1) == 0  # before the first observation
    for weights in attention:
        assert weights.shape == (6, CONFIG.n_heads, 20, 20)
        torch.testing.assert_close(weights.sum(-1), torch.ones(6, CONFIG.n_heads, 20))
        above = torch.ones(20, 20, dtype=torch.bool).triu(1)
        assert torch.all(weights[..., above] == 0)
        # Valid queries give padded keys no weight.
        valid_q_padded_k = (~padding).unsqueeze(2) & padding.unsqueeze(1)  # (B, Tq, Tk)
        assert torch.all(weights.permute(0, 2, 3, 1)[valid_q_padded_k] == 0)
        # Weights vary (not a trivial identity), so the checks above mean something.
        assert weights[2, :, -1].max() < 0.99


def test_fast_attention_path_matches_stored_path() -> None:
    pipeline = build_pipeline(CONFIG, seed=0).eval()
    x = track_inputs()
    with torch.no_grad():
        with pipeline.attention_storage(True):
            slow = pipeline(x)["logits"]
        with pipeline.attention_storage(False):
            fast = pipeline(x)["logits"]
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)
    with pytest.raises(RuntimeError, match="no attention weights stored"):
        pipeline.get_attention()


def test_padding_gives_no_nan_in_outputs_or_gradients() -> None:
    pipeline = build_pipeline(CONFIG, seed=0).train()
    x = track_inputs()
    x["position"][~x["observed"]] = float("nan")  # raw NaN where unobserved
    for storing in (True, False):
        with pipeline.attention_storage(storing):
            out = pipeline(x)
        assert torch.isfinite(out["logits"]).all()
        pipeline.zero_grad()
        out["logits"].sum().backward()
        assert all(
            torch.isfinite(p.grad).all() for p in pipeline.parameters() if p.grad is not None
        )


def test_track_positions_make_scores_independent_of_start_frame() -> None:
    pipeline = build_pipeline(CONFIG, seed=0).eval()
    x = track_inputs(b=3, t=20)
    x["observed"][:, 15:] = False
    shifted = {
        "position": torch.roll(x["position"], 5, dims=1),
        "observed": torch.roll(x["observed"], 5, dims=1),
    }
    with torch.no_grad():
        a = pipeline(x)["logits"]
        b = pipeline(shifted)["logits"]
    valid = x["observed"].cumsum(1) > 0
    valid[:, 15:] = False
    torch.testing.assert_close(
        b[:, 5:][valid[:, :15]], a[:, :15][valid[:, :15]], atol=1e-5, rtol=1e-5
    )


def test_sequence_longer_than_max_len_is_refused() -> None:
    sequence = SimpleTransformerSequence(input_dim=8, d_model=8, n_heads=2, n_layers=1, max_len=16)
    with pytest.raises(ValueError, match="max_len=16"):
        sequence(torch.zeros(1, 17, 8))
