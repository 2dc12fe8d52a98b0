"""Platt scaling on validation: calibrated probabilities, the ranking untouched."""

from __future__ import annotations

import numpy as np

from tests.tp_models.batches import track_batch
from tp_models.evaluation.metrics import expected_calibration_error, pooled_decisions
from tp_models.model import ModelConfig, build_pipeline, checkpoint_dict, load_pipeline
from tp_models.model.calibration import calibrate

SMALL = ModelConfig(d_model=16, n_heads=2, n_layers=1, ff_dim=32, feature_dim=16)


def labelled_batch(seed: int, n: int = 300, frames: int = 12):
    """Random walks; a fifth of them persistent (label 1): an untrained model says ~0.5."""
    rng = np.random.default_rng(seed)
    observed = rng.random((n, frames)) < 0.8
    position = 64 + np.cumsum(rng.normal(0, 1, (n, frames, 2)), axis=1)
    label = (rng.random(n) < 0.2).astype(np.int8)
    return track_batch(observed, position=position, area=20.0, label=label, video=np.arange(n))


def ece(model, batch) -> float:
    return expected_calibration_error(*pooled_decisions(model.score(batch), batch))["ece"]


def test_calibration_fits_on_validation_and_keeps_the_ranking() -> None:
    model = build_pipeline(SMALL, seed=0)
    val, test = labelled_batch(1), labelled_batch(2)
    before_scores, before_ece = model.score(test), ece(model, test)
    scale, shift = calibrate(model, val)
    assert scale > 0 and shift < 0  # towards the base rate of 0.2
    after = model.score(test)
    assert ece(model, test) < min(before_ece / 3, 0.05)
    # Monotone: the order of every score (hence every threshold and ROC point) is kept.
    scored = np.isfinite(before_scores)  # each track's life
    np.testing.assert_array_equal(np.isfinite(after), scored)
    order = np.argsort(before_scores[scored], kind="stable")
    assert np.all(np.diff(after[scored][order]) >= -1e-7)
    # It travels with the weights.
    loaded = load_pipeline(checkpoint_dict(model))
    np.testing.assert_allclose(loaded.score(test), after, atol=1e-6)


def test_validation_of_one_class_leaves_the_identity() -> None:
    model = build_pipeline(SMALL, seed=0)
    one_class = labelled_batch(1)
    one_class.label[:] = 1
    assert calibrate(model, one_class) == (1.0, 0.0)
    assert model.head.calibration.tolist() == [1.0, 0.0]


def test_a_checkpoint_from_before_calibration_loads_with_the_identity() -> None:
    checkpoint = checkpoint_dict(build_pipeline(SMALL, seed=0))
    del checkpoint["state_dict"]["head.calibration"]
    assert load_pipeline(checkpoint).head.calibration.tolist() == [1.0, 0.0]
