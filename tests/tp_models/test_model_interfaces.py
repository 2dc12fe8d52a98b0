"""Contracts of the modular model's parts: dimensions, outputs, configs, features."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import Tensor

from tests.tp_models.batches import track_batch
from tp_models.core.batch import TrackBatch
from tp_models.core.scorer import PersistenceScorer
from tp_models.model import (
    KINEMATIC_FEATURE_NAMES,
    ConcatExtractor,
    FeatureExtractor,
    ModelConfig,
    ModularTrackingPipeline,
    PersistenceHead,
    SimpleStatisticalExtractor,
    SimpleTransformerSequence,
    TrackInputs,
    batch_to_tensors,
    build_pipeline,
    kinematic_features,
    valid_step_mask,
)
from tp_models.model import extractors as extractors_module

SMALL = ModelConfig(d_model=16, n_heads=2, n_layers=1, ff_dim=32, feature_dim=16)


def test_dimension_mismatch_names_both_components() -> None:
    with pytest.raises(ValueError) as err:
        ModularTrackingPipeline(
            SimpleStatisticalExtractor(output_dim=64),
            SimpleTransformerSequence(input_dim=32, d_model=32),
            PersistenceHead(input_dim=32),
        )
    assert str(err.value) == (
        "SimpleStatisticalExtractor.output_dim=64 does not match "
        "SimpleTransformerSequence.input_dim=32"
    )
    with pytest.raises(
        ValueError,
        match=r"SimpleTransformerSequence.output_dim=32 .*"
        r"PersistenceHead.input_dim=16",
    ):
        ModularTrackingPipeline(
            SimpleStatisticalExtractor(output_dim=32),
            SimpleTransformerSequence(input_dim=32, d_model=32),
            PersistenceHead(input_dim=16),
        )


def test_pipeline_outputs_and_intermediates() -> None:
    pipeline = build_pipeline(SMALL, seed=0).eval()
    x = pipeline.tensors(random_batch(4, 12))
    out = pipeline(x)
    assert set(out) == {"logits", "persistence"}
    assert out["logits"].shape == (4, 12)
    torch.testing.assert_close(out["persistence"], out["logits"].sigmoid())
    full = pipeline(x, return_intermediates=True)
    assert full["features"].shape == (4, 12, 16)
    assert full["sequence"].shape == (4, 12, 16)
    assert full["padding_mask"].dtype == torch.bool
    assert full["attention_0"].shape == (4, 2, 12, 12)
    torch.testing.assert_close(full["logits"], out["logits"])


def test_pipeline_is_a_persistence_scorer() -> None:
    pipeline = build_pipeline(SMALL, seed=0)
    assert isinstance(pipeline, PersistenceScorer)
    assert pipeline.name == "modular-statistical"


def test_config_round_trip_and_strictness() -> None:
    config = ModelConfig(n_layers=2, frame_size=(96, 160), extractor_options={"latent": 8})
    data = json.loads(json.dumps(config.to_dict()))
    assert ModelConfig.from_dict(data) == config
    with pytest.raises(ValueError, match="unknown ModelConfig field"):
        ModelConfig.from_dict({**data, "n_layer": 3})
    with pytest.raises(ValueError, match="features must be one of"):
        ModelConfig(features="pixels")


def test_unknown_extractor_name_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no feature extractor named 'colour'"):
        build_pipeline(ModelConfig(features="hybrid", hybrid_members=("statistical", "colour")))


def test_magvit_extractor_projects_latents_and_zeroes_padding() -> None:
    from tp_models.model import MagVitFeatureExtractor

    extractor = MagVitFeatureExtractor(latent_dim=8, output_dim=4, hidden_dim=6)
    observed = torch.tensor([[False, True, True, False]])
    latents = torch.randn(1, 4, 8)
    out = extractor({"magvit": latents, "observed": observed})
    assert out.shape == (1, 4, 4)
    assert torch.all(out[0, 0] == 0) and torch.any(out[0, 1] != 0)
    with pytest.raises(ValueError, match="16 channels, the extractor expects 8"):
        extractor({"magvit": torch.randn(1, 4, 16), "observed": observed})


class FakeLatentExtractor(FeatureExtractor):
    """Stands in for the MagVit extractor: reads per-frame latents from extras."""

    input_keys = ("observed", "latents")

    def __init__(self, latent_dim: int):
        super().__init__()
        self.output_dim = latent_dim

    def forward(self, x: TrackInputs) -> Tensor:
        return x["latents"]


def test_hybrid_concatenates_extractors_fed_from_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        extractors_module._EXTRACTOR_BUILDERS,
        "magvit",
        lambda config: FakeLatentExtractor(config.extractor_options["latent_dim"]),
    )
    config = ModelConfig(features="hybrid", extractor_options={"latent_dim": 8}, **_small_kwargs())
    pipeline = build_pipeline(config, seed=0).eval()
    extractor = pipeline.extractor
    assert isinstance(extractor, ConcatExtractor)
    assert extractor.output_dim == 16 + 8
    assert pipeline.sequence.input_dim == 24
    assert set(pipeline.input_keys) == {"position", "observed", "track_features", "latents"}

    batch = random_batch(3, 10)
    with pytest.raises(KeyError, match="latents"):
        pipeline.score(batch)
    batch.extras["latents"] = np.random.default_rng(0).random((3, 10, 8)).astype(np.float32)
    scores = pipeline.score(batch)
    assert scores.shape == (3, 10) and np.isfinite(scores[batch.observed]).all()
    x = pipeline.tensors(batch)
    torch.testing.assert_close(extractor(x)[..., 16:], x["latents"])


def _small_kwargs() -> dict:
    return {"d_model": 16, "n_heads": 2, "n_layers": 1, "ff_dim": 32, "feature_dim": 16}


def random_batch(b: int, t: int, seed: int = 0) -> TrackBatch:
    rng = np.random.default_rng(seed)
    observed = rng.random((b, t)) < 0.7
    position = (rng.random((b, t, 2)) * 128).astype(np.float32)
    position[~observed] = np.nan
    return track_batch(observed, position=position, label=1)


def test_kinematic_features_by_hand() -> None:
    # Observed at frames 2, 3 and 5 (not 0, 1, 4): padding, a step, a gap, a step.
    t = 7
    observed = torch.zeros(1, t, dtype=torch.bool)
    observed[0, [2, 3, 5]] = True
    position = torch.full((1, t, 2), float("nan"))
    position[0, 2] = torch.tensor([10.0, 20.0])
    position[0, 3] = torch.tensor([14.0, 20.0])
    position[0, 5] = torch.tensor([14.0, 28.0])
    feats = kinematic_features(position, observed, frame_size=(100, 200), motion_scale=1.0)[0]
    col = {name: feats[:, i] for i, name in enumerate(KINEMATIC_FEATURE_NAMES)}
    assert torch.isfinite(feats).all()
    assert torch.all(feats[:2] == 0)  # leading padding
    assert col["x"][2] == pytest.approx(10 / 200 * 2 - 1)
    assert col["y"][4] == pytest.approx(20 / 100 * 2 - 1)  # carried forward
    assert col["vx"][3] == pytest.approx(float(np.arcsinh(4.0)))
    assert col["vx"][4] == 0 and col["observed"][4] == 0  # unseen: zero velocity, flagged
    assert col["vy"][5] == pytest.approx(float(np.arcsinh(4.0)))  # 8 px over a 2-frame gap
    assert col["ax"][5] == pytest.approx(float(np.arcsinh(-2.0)))  # (0 - 4) / 2
    assert col["turn"][5] == pytest.approx(0.5)  # +90 degrees
    assert col["has_velocity"].tolist() == [0, 0, 0, 1, 0, 1, 0]
    assert col["frames_since_obs"][6] == pytest.approx(float(np.log1p(1)))
    assert col["log_n_obs"][6] == pytest.approx(float(np.log1p(3)))
    assert col["obs_fraction"][6] == pytest.approx(3 / 5)


def test_valid_steps() -> None:
    observed = torch.tensor([[0, 1, 0, 1, 1, 0], [0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0]]).bool()
    assert valid_step_mask(observed, "last_observation").int().tolist() == [
        [0, 1, 1, 1, 1, 0],
        [0, 0, 0, 0, 0, 0],
        [1, 0, 0, 0, 0, 0],
    ]
    assert valid_step_mask(observed)[0].int().tolist() == [0, 1, 1, 1, 1, 1]
    # forget_after: at most that many steps past the last observation (a one-hit track of a
    # long sequence is not labelled to its end).
    assert valid_step_mask(observed, "end", forget_after=2).int().tolist() == [
        [0, 1, 1, 1, 1, 1],
        [0, 0, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
    ]
    assert valid_step_mask(observed, "end", forget_after=0).equal(
        valid_step_mask(observed, "last_observation")
    )


def test_appearance_is_off_by_default() -> None:
    batch = random_batch(2, 8)
    batch.area[:] = 50.0
    batch.color[:] = 100.0
    plain = build_pipeline(SMALL, seed=0).eval()
    assert "color" not in plain.input_keys
    rich = build_pipeline(ModelConfig(use_appearance=True, **_small_kwargs()), seed=0).eval()
    assert {"area", "color"} <= set(rich.input_keys)
    before_plain, before_rich = plain.score(batch), rich.score(batch)
    batch.color[:] = 200.0
    np.testing.assert_array_equal(plain.score(batch), before_plain)
    assert not np.allclose(rich.score(batch), before_rich)


def test_batch_to_tensors_clears_nan_and_adds_label() -> None:
    batch = random_batch(3, 6)
    x = batch_to_tensors(batch, keys=("position", "observed"), with_label=True)
    assert set(x) == {"position", "observed", "label"}
    assert torch.isfinite(x["position"]).all()
    assert x["observed"].dtype == torch.bool and x["label"].dtype == torch.float32
