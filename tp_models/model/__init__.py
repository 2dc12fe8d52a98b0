"""The modular persistence model: feature extractor -> sequence model -> task head.

Pure PyTorch. ``build_pipeline(ModelConfig())`` gives a model that is also a
``tp_models.core.scorer.PersistenceScorer`` (``name``, ``score(TrackBatch)``), so it is
evaluated side by side with the classical baselines. ``training.fit`` trains it.
"""

from tp_models.core.lazy import lazy_exports

# Each submodule and the names it defines, imported on first use (torch is not imported
# by a caller that only reads the configs).
_EXPORTS = {
    "config": ("ModelConfig", "TrainConfig"),
    "extractors": (
        "ConcatExtractor",
        "MagVitFeatureExtractor",
        "SimpleStatisticalExtractor",
        "build_extractor",
        "register_extractor",
    ),
    "features": (
        "KINEMATIC_FEATURE_NAMES",
        "batch_to_tensors",
        "kinematic_features",
        "leading_padding_mask",
        "valid_step_mask",
    ),
    "heads": ("PersistenceHead",),
    "interfaces": (
        "FeatureExtractor",
        "ModularTrackingPipeline",
        "SequenceModel",
        "TaskHead",
        "TrackInputs",
    ),
    "pipeline": ("build_pipeline", "checkpoint_dict", "load_pipeline", "save_checkpoint"),
    "recurrent": ("GRUSequence",),
    "sequence": ("SimpleTransformerSequence",),
    "training": ("FitResult", "fit", "validation_metrics"),
}


__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
