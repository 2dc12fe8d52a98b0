"""Feature extractors: per-frame track inputs -> (B, T, F) features.

``SimpleStatisticalExtractor`` sees kinematics only by default. ``ConcatExtractor``
combines any extractors (the "hybrid" feature set). Other extractors (MagVit latents)
plug in through ``register_extractor`` without changes here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from tp_models.core.batch import TrackBatch
from tp_models.model.config import ModelConfig
from tp_models.model.features import (
    APPEARANCE_FEATURE_NAMES,
    KINEMATIC_FEATURE_NAMES,
    TRACK_FEATURE_NAMES,
    TRACK_FEATURES_INPUT,
    appearance_features,
    kinematic_features,
    leading_padding_mask,
    to_model_frame,
    track_feature_inputs,
)
from tp_models.model.interfaces import FeatureExtractor, TrackInputs


class SimpleStatisticalExtractor(FeatureExtractor):
    """Causal kinematic features of a track through a 2-layer MLP.

    ``use_appearance`` (default off) adds the last observed size and colour. It is off
    by default because appearance gave the label away in the seed data and the design
    wants the statistical model to show what motion alone can do; turn it on only to
    measure how much appearance adds.

    ``use_track_features`` adds the hand-made per-frame features gradient boosting reads
    (``features.TRACK_FEATURE_NAMES``: counts, motion summaries, area, innovation
    likelihoods, the clutter-map count and the scene's rates). The last three read the other
    tracks of the video, so these come from the whole batch (``batch_inputs``), not from one
    track.
    """

    def __init__(
        self,
        output_dim: int = 64,
        hidden_dim: int = 64,
        frame_size: tuple[int, int] = (128, 128),
        motion_scale: float = 4.0,
        use_appearance: bool = False,
        use_track_features: bool = False,
    ):
        super().__init__()
        self.output_dim = output_dim
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        self.motion_scale = float(motion_scale)
        self.use_appearance = use_appearance
        self.use_track_features = use_track_features
        self.input_keys = (
            "position",
            "observed",
            *(("area", "color") if use_appearance else ()),
            *((TRACK_FEATURES_INPUT,) if use_track_features else ()),
        )
        self.raw_dim = (
            len(KINEMATIC_FEATURE_NAMES)
            + (len(APPEARANCE_FEATURE_NAMES) if use_appearance else 0)
            + (len(TRACK_FEATURE_NAMES) if use_track_features else 0)
        )
        self.mlp = nn.Sequential(
            nn.Linear(self.raw_dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, output_dim),
        )

    def raw_features(self, x: TrackInputs) -> Tensor:
        """(B, T, raw_dim) hand-made features before the MLP. Tracks that carry their own
        frame size (imported from videos of any size) are first mapped into the model's."""
        observed = x["observed"].bool()
        position, area = x["position"], x.get("area")
        if "frame_size" in x:
            position, area = to_model_frame(position, area, x["frame_size"], self.frame_size)
        feats = kinematic_features(position, observed, self.frame_size, self.motion_scale)
        if self.use_appearance:
            appearance = appearance_features(observed, area, x["color"], self.frame_size)
            feats = torch.cat([feats, appearance], dim=-1)
        if self.use_track_features:
            feats = torch.cat([feats, x[TRACK_FEATURES_INPUT].to(feats.dtype)], dim=-1)
        return feats

    def batch_inputs(self, batch: TrackBatch) -> dict[str, np.ndarray]:
        if not self.use_track_features:
            return {}
        return {TRACK_FEATURES_INPUT: track_feature_inputs(batch, self.frame_size)}

    def forward(self, x: TrackInputs) -> Tensor:
        out = self.mlp(self.raw_features(x))
        # The MLP maps the all-zero padding input to its biases; zero it so padded frames
        # carry no information at all, whatever the weights.
        padding = leading_padding_mask(x["observed"]).unsqueeze(-1)
        return out.masked_fill(padding, 0.0)


class MagVitFeatureExtractor(FeatureExtractor):
    """Cached MagVit latents along the track, projected to ``output_dim``.

    Input ``magvit`` (B, T, C): the video's latents sampled at the track's position in
    every frame (bilinear in space, the latest latent step whose frames are all <= t in
    time, zeros before the first observation), done once by the data reader from the
    Zarr feature cache (`tp_models.magvit.sampling.sample_latents_along_track`). Sampling
    there rather than here keeps a batch at (B, T, C) instead of (B, T', C, h, w) per track.
    """

    def __init__(self, latent_dim: int = 256, output_dim: int = 64, hidden_dim: int = 64):
        super().__init__()
        self.latent_dim = latent_dim
        self.output_dim = output_dim
        self.input_keys = ("magvit", "observed")
        self.norm = nn.LayerNorm(latent_dim)
        self.mlp = nn.Sequential(
            nn.Linear(latent_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, output_dim)
        )

    def forward(self, x: TrackInputs) -> Tensor:
        latents = x["magvit"].float()
        if latents.shape[-1] != self.latent_dim:
            raise ValueError(
                f"magvit features have {latents.shape[-1]} channels, the extractor expects "
                f"{self.latent_dim}: cache features with the tokenizer this model was built for"
            )
        padding = leading_padding_mask(x["observed"]).unsqueeze(-1)
        return self.mlp(self.norm(latents)).masked_fill(padding, 0.0)


class ConcatExtractor(FeatureExtractor):
    """Concatenation of extractors along the feature axis (the "hybrid" feature set)."""

    def __init__(self, extractors: Sequence[FeatureExtractor]):
        super().__init__()
        if not extractors:
            raise ValueError("ConcatExtractor needs at least one extractor")
        self.extractors = nn.ModuleList(extractors)
        self.output_dim = sum(e.output_dim for e in extractors)
        self.input_keys = tuple(dict.fromkeys(k for e in extractors for k in e.input_keys))

    def forward(self, x: TrackInputs) -> Tensor:
        return torch.cat([e(x) for e in self.extractors], dim=-1)

    def batch_inputs(self, batch: TrackBatch) -> dict[str, np.ndarray]:
        return {k: v for e in self.extractors for k, v in e.batch_inputs(batch).items()}


ExtractorBuilder = Callable[["ModelConfig"], FeatureExtractor]
_EXTRACTOR_BUILDERS: dict[str, ExtractorBuilder] = {}


def register_extractor(name: str, builder: ExtractorBuilder) -> None:
    """Make ``build_extractor(name, config)`` available, e.g. for the MagVit extractor.

    A builder takes the ``ModelConfig`` (its ``extractor_options`` carry anything
    extractor-specific, such as a latent size) and returns a ``FeatureExtractor``.
    """
    _EXTRACTOR_BUILDERS[name] = builder


def build_extractor(name: str, config: ModelConfig) -> FeatureExtractor:
    """The extractor called ``name``, built from ``config``."""
    if name not in _EXTRACTOR_BUILDERS:
        raise ValueError(
            f"no feature extractor named {name!r} is registered (have "
            f"{sorted(_EXTRACTOR_BUILDERS)}); import the module that calls "
            f"tp_models.model.extractors.register_extractor({name!r}, ...) first"
        )
    return _EXTRACTOR_BUILDERS[name](config)


def _build_statistical(config: ModelConfig) -> FeatureExtractor:
    return SimpleStatisticalExtractor(
        output_dim=config.feature_dim,
        hidden_dim=config.extractor_hidden_dim,
        frame_size=config.frame_size,
        motion_scale=config.motion_scale,
        use_appearance=config.use_appearance,
        use_track_features=config.track_features,
    )


def _build_magvit(config: ModelConfig) -> FeatureExtractor:
    return MagVitFeatureExtractor(
        latent_dim=int(config.extractor_options.get("latent_dim", 256)),
        output_dim=config.feature_dim,
        hidden_dim=config.extractor_hidden_dim,
    )


register_extractor("statistical", _build_statistical)
register_extractor("magvit", _build_magvit)
