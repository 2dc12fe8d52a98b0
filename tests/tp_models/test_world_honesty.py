"""No single attribute of an extracted track tells persistent from non-persistent.

Checked on what a model sees: tracks made by the project's own detector and tracker from
simulated videos (not ground truth), with one classifier per attribute fitted on half the
tracks and scored on the other half. The previous world failed this: the first frame alone
ranked tracks with ROC-AUC 0.87, and the start distance to the border and exactly-zero steps
each gave some labels away.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_predict
from sklearn.tree import DecisionTreeClassifier

from tp_models.perception.tracker import TrackerConfig
from tp_models.tracks.arrays import extract_and_label
from tp_models.world.config import SceneConfig
from tp_models.world.simulate import assign_video_types, simulate

MAX_AUC = 0.6
MAX_FIRST_FRAME_AUC = 0.55


@pytest.fixture(scope="module")
def track_attributes() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Start attributes of every labelled track of 320 default-world videos, and labels."""
    config = SceneConfig()
    types = assign_video_types((128, 128, 32, 32), seed=3)
    batch = simulate(config, types, np.arange(types.size), seed=3)
    arrays, _ = extract_and_label(batch.videos, batch.masks, batch.kind, TrackerConfig())
    valid = np.arange(arrays["label"].shape[1])[None, :] < arrays["n_tracks"][:, None]
    valid &= arrays["label"] >= 0
    observed, position = arrays["observed"][valid], arrays["position"][valid].astype(np.float64)
    rows = np.arange(observed.shape[0])
    first = observed.argmax(axis=1)
    later = observed.copy()
    later[rows, first] = False
    second = np.where(later.any(axis=1), later.argmax(axis=1), -1)
    start = position[rows, first]
    step = np.where(second >= 0, np.hypot(*(position[rows, second] - start).T), np.nan)
    attributes = {
        "first frame is frame 0": (first == 0)[:, None],
        "start frame": first[:, None],
        "start distance to border": np.minimum(start, config.size - 1 - start).min(axis=1)[:, None],
        "area": arrays["area"][valid][rows, first][:, None],
        "colour": arrays["color"][valid][rows, first],
        "exactly-zero first step": (step == 0)[:, None],
    }
    return attributes, arrays["label"][valid]


def one_attribute_auc(values: np.ndarray, labels: np.ndarray) -> float:
    """ROC-AUC of a small tree on one attribute, scored on tracks it was not fitted on."""
    tree = DecisionTreeClassifier(max_leaf_nodes=8, min_samples_leaf=40, random_state=0)
    scores = cross_val_predict(
        tree, values.astype(np.float64), labels, cv=2, method="predict_proba"
    )
    return float(roc_auc_score(labels, scores[:, 1]))


def test_enough_tracks_of_both_labels(track_attributes) -> None:
    _, labels = track_attributes
    assert labels.size > 1500 and 300 < labels.sum() < labels.size - 300


@pytest.mark.parametrize(
    "attribute",
    ["start frame", "start distance to border", "area", "colour", "exactly-zero first step"],
)
def test_no_single_attribute_separates_the_labels(track_attributes, attribute: str) -> None:
    attributes, labels = track_attributes
    assert one_attribute_auc(attributes[attribute], labels) <= MAX_AUC


def test_the_first_frame_carries_no_label_information(track_attributes) -> None:
    """k = 1, first frame alone: the cue the previous world gave away (ROC-AUC 0.87)."""
    attributes, labels = track_attributes
    first_frame = attributes["first frame is frame 0"][:, 0]
    assert 0.05 < first_frame.mean() < 0.5  # objects do start at frame 0, of every kind
    assert roc_auc_score(labels, first_frame) <= MAX_FIRST_FRAME_AUC


def test_the_check_catches_a_leaking_attribute(track_attributes) -> None:
    """The same classifier does find an attribute that gives labels away."""
    _, labels = track_attributes
    rng = np.random.default_rng(0)
    leaking = labels + rng.normal(0.0, 0.7, labels.size)
    assert one_attribute_auc(leaking[:, None], labels) > 0.8
