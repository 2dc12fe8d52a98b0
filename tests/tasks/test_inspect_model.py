"""Model figures for every sequence model: attention only where the model has it."""

from __future__ import annotations

import numpy as np

from tasks.inspect_model import attention_figures
from tests.tp_models.batches import track_batch
from tp_models.model import ModelConfig, build_pipeline

SMALL = {"d_model": 16, "n_heads": 2, "n_layers": 1, "ff_dim": 32, "feature_dim": 16}


def test_attention_figures_for_the_transformer_and_none_for_the_gru(tmp_path) -> None:
    observed = np.ones((2, 6), dtype=bool)
    batch = track_batch(observed, position=np.full((2, 6, 2), 30.0, np.float32), area=9.0)
    batch.label = np.array([1, 0], dtype=np.int8)
    tracks = np.array([0, 1])
    transformer = build_pipeline(ModelConfig(**SMALL), seed=0)
    drawn = attention_figures(transformer, batch, tracks, tmp_path)
    assert len(drawn) == 2 and all(path.exists() for path in drawn)
    gru = build_pipeline(ModelConfig(**SMALL, sequence="gru"), seed=0)
    assert attention_figures(gru, batch, tracks, tmp_path / "gru") == []
