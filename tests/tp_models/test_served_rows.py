"""The served form of a checkpoint (tp_models.serving.served), without MLflow: rows in, rows out."""

from __future__ import annotations

import pandas as pd
import pytest

from tp_models.model import ModelConfig, build_pipeline, save_checkpoint
from tp_models.serving.served import (
    DEFAULT_OPERATING_THRESHOLD,
    EXAMPLE_ROWS,
    ServedInputError,
    ServedPersistenceModel,
    load_served,
)

SMALL = dict(d_model=16, n_heads=2, n_layers=1, ff_dim=32, feature_dim=16, max_len=32)


def _served(tmp_path, metadata=None, **config) -> ServedPersistenceModel:
    path = tmp_path / "model.pt"
    save_checkpoint(build_pipeline(ModelConfig(**{**SMALL, **config}), seed=0), path, metadata)
    served = load_served(path)
    assert isinstance(served, ServedPersistenceModel)
    return served


def test_threshold_comes_from_the_checkpoint_or_the_stated_default(tmp_path):
    assert _served(tmp_path, {"operating_threshold": 0.37}).threshold == 0.37
    assert _served(tmp_path).threshold == DEFAULT_OPERATING_THRESHOLD
    rows = pd.DataFrame(EXAMPLE_ROWS)
    out = _served(tmp_path, {"operating_threshold": 0.0}).predict(rows)
    assert len(out) == len(rows) and out["confirmed"].all()
    assert not _served(tmp_path, {"operating_threshold": 1.01}).predict(rows)["confirmed"].any()


def test_bad_rows_are_refused_naming_the_column(tmp_path):
    served = _served(tmp_path)
    rows = pd.DataFrame(EXAMPLE_ROWS)
    with pytest.raises(ServedInputError, match="bb_height, conf"):
        served.predict(rows.drop(columns=["bb_height", "conf"]))
    with pytest.raises(ServedInputError, match="'bb_width' must be positive"):
        served.predict(rows.assign(bb_width=0.0))
    with pytest.raises(ServedInputError, match="'frame' must hold integers"):
        served.predict(rows.assign(frame=1.5))
    with pytest.raises(ValueError, match=r"\(frame, track_id\) pair more than once"):
        served.predict(pd.concat([rows, rows.iloc[:1]]))


def test_a_model_that_needs_video_features_refuses_rows(tmp_path):
    served = _served(tmp_path, features="magvit")
    with pytest.raises(ServedInputError, match="features of the video"):
        served.predict(pd.DataFrame(EXAMPLE_ROWS))


def test_not_a_checkpoint_is_refused(tmp_path):
    import torch

    torch.save({"format": "something-else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="neither a model nor a tokenizer checkpoint"):
        load_served(tmp_path / "other.pt")


def test_an_id_seen_at_frames_1_and_1e9_is_two_tracks_not_gigabytes(tmp_path):
    rows = pd.DataFrame(EXAMPLE_ROWS).iloc[:2].assign(id=1, frame=[1, 10**9])
    served = _served(tmp_path)
    scores = served.predict(rows)["p_persistent"].to_numpy()
    # Unseen for longer than the online scorer keeps a track: the id comes back as new.
    alone = served.predict(rows.iloc[1:].assign(frame=1))["p_persistent"].to_numpy()
    assert scores[1] == pytest.approx(alone[0], abs=1e-6)


def test_a_life_longer_than_scoring_reads_is_one_sentence(tmp_path, monkeypatch):
    import tp_models.serving.rows

    monkeypatch.setattr(tp_models.serving.rows, "MAX_LIFE", 100)
    row = pd.DataFrame(EXAMPLE_ROWS).iloc[:1]
    rows = pd.concat([row.assign(id=1, frame=f) for f in range(1, 151)], ignore_index=True)
    with pytest.raises(ServedInputError, match=r"track 1 spans frames 1 to 150"):
        _served(tmp_path).predict(rows)
