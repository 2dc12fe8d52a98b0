"""The modular persistence model: feature extractor -> sequence model -> task head.

Pure PyTorch. ``build_pipeline(ModelConfig())`` gives a model that is also a
``tp_models.core.scorer.PersistenceScorer`` (``name``, ``score(TrackBatch)``), so it is
evaluated side by side with the classical baselines. ``training.fit`` trains it.
"""

from tp_models.model.config import ModelConfig
from tp_models.model.extractors import (
    ConcatExtractor,
    MagVitFeatureExtractor,
    SimpleStatisticalExtractor,
    build_extractor,
    register_extractor,
)
from tp_models.model.features import (
    KINEMATIC_FEATURE_NAMES,
    batch_to_tensors,
    kinematic_features,
    leading_padding_mask,
    valid_step_mask,
)
from tp_models.model.heads import PersistenceHead
from tp_models.model.interfaces import (
    FeatureExtractor,
    ModularTrackingPipeline,
    SequenceModel,
    TaskHead,
    TrackInputs,
)
from tp_models.model.pipeline import build_pipeline, checkpoint_dict, load_pipeline, save_checkpoint
from tp_models.model.recurrent import GRUSequence
from tp_models.model.sequence import SimpleTransformerSequence
from tp_models.model.training import FitResult, TrainConfig, fit, validation_metrics

__all__ = [
    "KINEMATIC_FEATURE_NAMES",
    "ConcatExtractor",
    "MagVitFeatureExtractor",
    "FeatureExtractor",
    "FitResult",
    "GRUSequence",
    "ModelConfig",
    "ModularTrackingPipeline",
    "PersistenceHead",
    "SequenceModel",
    "SimpleStatisticalExtractor",
    "SimpleTransformerSequence",
    "TaskHead",
    "TrackInputs",
    "TrainConfig",
    "batch_to_tensors",
    "build_extractor",
    "build_pipeline",
    "checkpoint_dict",
    "validation_metrics",
    "fit",
    "kinematic_features",
    "leading_padding_mask",
    "load_pipeline",
    "register_extractor",
    "save_checkpoint",
    "valid_step_mask",
]
