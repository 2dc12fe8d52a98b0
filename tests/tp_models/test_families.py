"""Every classical family as a model: fitted on train, calibrated on validation, the same
scores in batch and online, saved and loaded as plain data (never a pickle)."""

from __future__ import annotations

import io
import os
import pickle

import numpy as np
import pytest
import skops.io
import torch

from tests.tp_models.test_online import online_scores
from tests.tp_models.test_streaming import long_sequence
from tests.tp_models.track_files import random_rows
from tp_models.core.calibration import IDENTITY
from tp_models.core.checkpoint import CheckpointMismatchError
from tp_models.families.fit import fit_family
from tp_models.families.fitted import FittedFamily, family_checkpoint, load_family
from tp_models.families.names import CLASSICAL_FAMILIES
from tp_models.scorers.clutter_map import StreamingClutterMap
from tp_models.scorers.existence import AdaptiveIPDA, IPDAExistence
from tp_models.serving.rows import score_rows
from tp_models.tracks.running import HANDMADE_FEATURES
from tp_models.tracks.table import TrackRows, rows_to_batch

CLASSICAL = CLASSICAL_FAMILIES
FRAME = (480, 640)


def labelled(rows: TrackRows, seed: int):
    """A batch of ``rows`` labelled persistent for the tracks seen on most frames of their
    life (the others are brief or flickering): a rule the families can learn."""
    batch, track, _ = rows_to_batch(rows)
    hits = batch.observed.sum(axis=1)
    born = np.argmax(batch.observed, axis=1)
    last = batch.frames - 1 - np.argmax(batch.observed[:, ::-1], axis=1)
    rate = hits / (last - born + 1)
    noise = np.random.default_rng(seed).random(len(batch)) < 0.1
    batch.label[:] = ((hits >= 6) & (rate > 0.75)) ^ noise
    return batch


@pytest.fixture(scope="module")
def fitted() -> dict[str, FittedFamily]:
    train = labelled(random_rows(seed=1, n_tracks=150, frame_size=FRAME), seed=1)
    val = labelled(random_rows(seed=2, n_tracks=150, frame_size=FRAME), seed=2)
    return {name: fit_family(name, train, val, FRAME, seed=0) for name in CLASSICAL}


@pytest.mark.parametrize("family", CLASSICAL)
def test_a_family_is_a_calibrated_probability(fitted, family) -> None:
    model = fitted[family]
    assert model.calibration != IDENTITY  # validation held both classes: it was fitted
    scores = score_rows(model, random_rows(seed=3, n_tracks=40))
    assert np.isfinite(scores).all() and ((scores >= 0) & (scores <= 1)).all()
    assert scores.std() > 1e-3


@pytest.mark.parametrize("family", CLASSICAL)
def test_online_equals_batch(fitted, family) -> None:
    model = fitted[family]
    rows = random_rows(seed=4, n_tracks=30, frame_size=(1080, 1920))  # not the fitted frame
    np.testing.assert_allclose(online_scores(model, rows), score_rows(model, rows), atol=1e-5)


@pytest.mark.parametrize("family", CLASSICAL)
def test_online_equals_batch_on_a_long_sequence(fitted, family) -> None:
    model = fitted[family]
    rows = long_sequence(frames=2000, n_tracks=12)
    np.testing.assert_allclose(online_scores(model, rows), score_rows(model, rows), atol=1e-5)


@pytest.mark.parametrize(
    ("family", "adaptive", "plain"),
    [
        (
            "ipda_adaptive",
            AdaptiveIPDA(clutter_density=1e-3, weight=1.0, scene_weight=3.0, p_detect_weight=0.3),
            IPDAExistence(clutter_density=1e-3),
        ),
        ("clutter_map", StreamingClutterMap(p_detect_weight=0.3), StreamingClutterMap()),
    ],
)
def test_stream_estimates_stream_as_they_score_in_batch(family, adaptive, plain) -> None:
    """IPDA with the clutter density and P_D read from the stream and the streaming clutter
    map with the stream's P_D: their streams read each frame's scene columns and keep each
    track's latest P_D, and give the batch's numbers (weights fixed here, where the fitted
    families above may have tuned them to 0)."""
    model = FittedFamily(family, adaptive, IDENTITY, FRAME)
    off = FittedFamily(family, plain, IDENTITY, FRAME)
    for rows in (random_rows(seed=5, n_tracks=30, frame_size=FRAME), long_sequence(2000, 12)):
        online = online_scores(model, rows)
        np.testing.assert_allclose(online, score_rows(model, rows), atol=1e-5)
        assert np.abs(online - online_scores(off, rows)).max() > 1e-3  # the scene counts


@pytest.mark.parametrize("family", CLASSICAL)
def test_checkpoint_is_weights_only_and_loads_the_same_model(fitted, family) -> None:
    model = fitted[family]
    buffer = io.BytesIO()
    torch.save(family_checkpoint(model, {"operating_threshold": 0.42}), buffer)
    buffer.seek(0)
    loaded = load_family(torch.load(buffer, weights_only=True))
    assert loaded.family == family and loaded.threshold == 0.42
    rows = random_rows(seed=5, n_tracks=20)
    np.testing.assert_array_equal(score_rows(loaded, rows), score_rows(model, rows))


def test_a_pickle_or_an_untrusted_type_in_the_payload_is_refused(fitted) -> None:
    """A planted pickle is not skops' format; a skops file holding a type outside the trusted
    list (here a function, which could be anything) is refused before it is built."""
    import skops.io
    from sklearn.preprocessing import FunctionTransformer

    model = fitted["gradient_boosting"]
    planted = family_checkpoint(model)
    planted["skops"] = torch.frombuffer(
        bytearray(pickle.dumps(model.scorer.model)), dtype=torch.uint8
    )
    with pytest.raises(ValueError, match="not a skops file of trusted types"):
        load_family(planted)
    untrusted = family_checkpoint(model)
    payload = bytearray(skops.io.dumps(FunctionTransformer(os.system)))
    untrusted["skops"] = torch.frombuffer(payload, dtype=torch.uint8)
    with pytest.raises(ValueError, match="UntrustedTypesFoundException.*system"):
        load_family(untrusted)
    # A trusted type that is not a gradient-boosting model is refused as well.
    other = family_checkpoint(model)
    other["skops"] = torch.frombuffer(bytearray(skops.io.dumps([1, 2])), dtype=torch.uint8)
    with pytest.raises(ValueError, match="not a gradient-boosting model"):
        load_family(other)


def test_a_model_of_an_earlier_version_with_other_inputs_is_refused_by_name(fitted) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    earlier = family_checkpoint(fitted["gradient_boosting"])
    rng = np.random.default_rng(0)
    fewer = len(HANDMADE_FEATURES) - 2
    model = HistGradientBoostingClassifier(max_iter=3).fit(
        rng.random((40, fewer)), np.arange(40) % 2
    )
    earlier["skops"] = torch.frombuffer(bytearray(skops.io.dumps(model)), dtype=torch.uint8)
    with pytest.raises(CheckpointMismatchError, match=f"reads {fewer} hand-made features"):
        load_family(earlier)


def test_unknown_family_or_parameter_is_refused(fitted) -> None:
    checkpoint = family_checkpoint(fitted["ipda"])
    with pytest.raises(ValueError, match="unknown family"):
        load_family({**checkpoint, "family": "os.system"})
    with pytest.raises(ValueError, match="has no parameters"):
        load_family({**checkpoint, "params": {**checkpoint["params"], "__class__": 1}})
