"""``ModelConfig``: everything that fixes the persistence model's architecture (and nothing
about training), and the feature sets it can read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from annotated_types import doc

from tp_models.core.config import known_fields

FEATURE_SETS = ("statistical", "magvit", "hybrid")


@dataclass(frozen=True)
class ModelConfig:
    """Everything that fixes the architecture (and nothing about training)."""

    features: Annotated[
        Literal["statistical", "magvit", "hybrid"], doc("what the model reads of each track")
    ] = "statistical"
    hybrid_members: tuple[str, ...] = ("statistical", "magvit")
    frame_size: tuple[int, int] = (128, 128)  # (height, width), to normalise positions
    motion_scale: float = 4.0  # pixels/frame where velocity features stop being linear
    use_appearance: bool = False  # add size + colour to the statistical features
    track_features: Annotated[
        bool,
        doc(
            "also read the hand-made per-frame features gradient boosting reads (counts, "
            "motion, area, innovation likelihoods, clutter-map count)"
        ),
    ] = True
    feature_dim: int = 64
    extractor_hidden_dim: int = 64
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 4
    ff_dim: int = 128
    dropout: float = 0.1
    max_len: int = 500
    causal: bool = True
    positions: str = "track"  # "track": frames since first observation; "frame": absolute
    head_hidden_dim: int = 64
    # Options for extractors registered elsewhere (e.g. MagVit latent size); JSON values.
    extractor_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.features not in FEATURE_SETS:
            raise ValueError(f"features must be one of {FEATURE_SETS}, got {self.features!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        # Normalise JSON lists back to tuples so from_dict(to_dict(c)) == c.
        object.__setattr__(self, "hybrid_members", tuple(self.hybrid_members))
        object.__setattr__(self, "frame_size", tuple(int(v) for v in self.frame_size))

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict (tuples become lists)."""
        out = dataclasses.asdict(self)
        out["hybrid_members"] = list(self.hybrid_members)
        out["frame_size"] = list(self.frame_size)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Inverse of ``to_dict``; unknown keys are an error, not silently dropped. A config
        from before ``track_features`` existed describes a model without them."""
        return cls(**{"track_features": False, **known_fields(cls, data)})
