"""The online scorer equals the batch scorer, frame by frame, and refuses what it cannot do."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.tp_models.track_files import TUD_CAMPUS_FRAME_SIZE, random_rows, tud_campus
from tp_models.model import ModelConfig, build_pipeline
from tp_models.serving.online import OnlineScorer
from tp_models.serving.rows import score_rows
from tp_models.tracks.files import read_tracks
from tp_models.tracks.table import TrackRows

SMALL = ModelConfig(d_model=16, n_heads=2, n_layers=2, ff_dim=32, feature_dim=16)


def trained_like(config: ModelConfig, seed: int = 0):
    """Weights moved off their initial values so the test is not about a special init."""
    model = build_pipeline(config, seed=seed)
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(seed)
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def online_scores(model, rows: TrackRows, **options) -> np.ndarray:
    scorer = OnlineScorer(model, frame_size=rows.frame_size, **options)
    out = np.full(len(rows), np.nan)
    for frame in np.unique(rows.frame):  # frames without rows are skipped
        index = np.flatnonzero(rows.frame == frame)
        out[index] = scorer.update(int(frame), rows.take(index))
    return out


@pytest.mark.parametrize("appearance", [False, True])
def test_online_equals_batch(appearance: bool) -> None:
    rows = random_rows(seed=3, n_tracks=15)
    model = trained_like(ModelConfig(**{**SMALL.to_dict(), "use_appearance": appearance}))
    batch = score_rows(model, rows)
    online = online_scores(model, rows, forget_after=None)
    np.testing.assert_allclose(online, batch, atol=1e-5, rtol=0)
    assert batch.std() > 1e-3  # scores vary: equality is not trivial


def test_online_equals_batch_on_tud_campus_with_the_default_model() -> None:
    rows = read_tracks(tud_campus("test"), frame_size=TUD_CAMPUS_FRAME_SIZE).rows
    model = trained_like(ModelConfig(), seed=1)
    np.testing.assert_allclose(online_scores(model, rows), score_rows(model, rows), atol=1e-5)


def test_refuses_an_old_frame_and_a_repeated_id() -> None:
    scorer = OnlineScorer(build_pipeline(SMALL, seed=0))
    scores = scorer.update(5, {"track_id": [1, 2], "x": [10.0, 20.0], "y": [5.0, 6.0]})
    assert scores.shape == (2,) and ((scores > 0) & (scores < 1)).all()
    with pytest.raises(ValueError, match=r"frame 4 is not after the last frame scored \(5\)"):
        scorer.update(4, {"track_id": [1], "x": [10.0], "y": [5.0]})
    with pytest.raises(ValueError, match="frame 6 has track_id 1 more than once"):
        scorer.update(6, {"track_id": [1, 1], "x": [10.0, 11.0], "y": [5.0, 5.0]})


def test_refuses_magvit_models() -> None:
    config = ModelConfig(**{**SMALL.to_dict(), "features": "magvit"})
    with pytest.raises(ValueError, match="online scoring needs the statistical feature set"):
        OnlineScorer(build_pipeline(config, seed=0))


def test_a_track_gone_longer_than_forget_after_starts_afresh() -> None:
    # Kinematics only: the clutter map remembers the first life's birth (another track's,
    # for the map), which is tested below.
    model = trained_like(ModelConfig(**{**SMALL.to_dict(), "track_features": False}))
    scorer = OnlineScorer(model, forget_after=3)
    row = {"track_id": [7], "x": [50.0], "y": [50.0]}
    first = [scorer.update(frame, row)[0] for frame in (1, 2, 3)]
    scorer.update(4, {"track_id": [8], "x": [10.0], "y": [10.0]})
    assert scorer.n_live == 2
    scorer.update(7, {"track_id": [8], "x": [10.0], "y": [10.0]})
    assert scorer.n_live == 1  # track 7 last seen at 3: 4 frames ago
    again = scorer.update(8, row)[0]
    assert again == pytest.approx(first[0], abs=1e-6)  # a new track's first score


def test_after_every_track_is_forgotten_a_new_one_scores_as_after_any_such_past() -> None:
    # The scene's memory stays (a track lived in frames 1-3, far from the new one); all of
    # the forgotten track's own state goes: another track there then gives the same scores.
    model = trained_like(SMALL)
    far = {"track_id": [9], "x": [100.0], "y": [100.0]}
    scorer, fresh = OnlineScorer(model, forget_after=2), OnlineScorer(model, forget_after=2)
    for frame in (1, 2, 3):
        scorer.update(frame, {"track_id": [7], "x": [10.0 + frame], "y": [10.0]})
        fresh.update(frame, {"track_id": [5], "x": [20.0 - frame], "y": [30.0]})
    scorer.update(7, {"track_id": [], "x": [], "y": []})  # track 7 is forgotten here
    assert scorer.n_live == 0
    for frame in (10, 11, 13, 14):
        again = scorer.update(frame, far)
        assert again == pytest.approx(fresh.update(frame, far), abs=1e-6)
    assert scorer.n_live == 1
