"""The tokenizer's two configs, ``TokenizerConfig`` (its architecture, stored in every
checkpoint) and ``TokenizerTrainConfig`` (how it is trained), and the frame-count rule both
check: plain data, importable without torch (the CLI builds its options from them)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal

from annotated_types import Ge, Interval, doc

from tp_models.core.config import known_fields


def check_num_frames(frames: int, temporal_downsample: int = 4) -> None:
    if frames < 1 or (frames - 1) % temporal_downsample != 0:
        raise ValueError(
            f"The video has {frames} frames, but the causal tokenizer needs "
            f"1 + {temporal_downsample}*n frames (e.g. 1, 5, ..., 25): frame 0 is encoded "
            f"alone and every following {temporal_downsample} frames form one latent step."
        )


@dataclass(frozen=True)
class TokenizerConfig:
    """Architecture of a :class:`MagVitTokenizer`; a checkpoint stores it as a dict.

    ``channels`` are the widths of the encoder levels, from the first (after a 2x2 patchify
    stem) to the deepest; a level is added per downsampling step and the list is padded with
    its last value. The default 16-32-64 encoder (0.3 M parameters) is sized for >= 10
    videos/s of 25x128x128 on two CPU cores. A codebook of 2**10 suits these sparse scenes: a
    held-out set of a few dozen videos has a few thousand non-background tokens, so "fraction
    of the codebook used" stays meaningful (with 2**14 most entries could never be reached),
    and the LFQ entropy
    loss costs ``tokens x codebook_size`` memory per batch.
    """

    in_channels: Annotated[int, doc("input channels (RGB)")] = 3
    channels: Annotated[tuple[int, ...], doc("encoder channels per stage")] = (16, 32, 64)
    num_res_blocks: Annotated[int, doc("residual blocks per encoder stage")] = 1
    decoder_channels: Annotated[tuple[int, ...], doc("decoder channels per stage")] = (32, 64, 96)
    decoder_res_blocks: Annotated[int, doc("residual blocks per decoder stage")] = 1
    latent_dim: Annotated[int, Ge(1), doc("continuous latent channels (cached features)")] = 256
    codebook_size: Annotated[int, Ge(2), doc("LFQ codebook entries (a power of two)")] = 1024
    # Measured cache sizes for 2,500 videos, float16, blosc zstd + shuffle: 256 channels at
    # 16x16 cells 1.24 GB (over the 1 GB budget), at 8x8 0.31 GB.
    spatial_downsample: Annotated[
        int, Ge(2), doc("pixels per latent cell side (128 px / 16 = 8x8 cells)")
    ] = 16
    temporal_downsample: Annotated[int, doc("frames per latent step")] = 4
    diversity_gamma: Annotated[
        float, doc("weight of LFQ's codebook-diversity term in its entropy loss")
    ] = 1.0
    # LFQ's entropy loss soft-assigns each token with softmax(2 * inv_temperature * x . code).
    # LFQ's default of 100 saturates as soon as |x| > ~0.01, the entropy term then has no
    # gradient and the codebook collapsed to one code (measured: 1 of 1024 after 10 steps).
    # At 1.0 the soft assignment stays informative: ~50-65 % of the codebook used.
    inv_temperature: Annotated[
        float, doc("LFQ's inverse temperature of the soft code assignment")
    ] = 1.0

    def __post_init__(self) -> None:
        # Normalise lists (e.g. from JSON) to tuples so equality and hashing behave.
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        object.__setattr__(self, "decoder_channels", tuple(int(c) for c in self.decoder_channels))
        for name in ("spatial_downsample", "temporal_downsample", "codebook_size"):
            value = getattr(self, name)
            if value < 1 or value & (value - 1):
                raise ValueError(f"TokenizerConfig.{name} must be a power of two, got {value}.")
        if self.spatial_downsample < 2:
            raise ValueError("TokenizerConfig.spatial_downsample must be >= 2 (the stem is 2x2).")
        if self.codebook_size < 2:
            raise ValueError("TokenizerConfig.codebook_size must be >= 2.")
        if not self.channels or not self.decoder_channels:
            raise ValueError("TokenizerConfig.channels and decoder_channels must not be empty.")

    @property
    def codebook_bits(self) -> int:
        return int(math.log2(self.codebook_size))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["channels"] = list(self.channels)
        data["decoder_channels"] = list(self.decoder_channels)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenizerConfig:
        return cls(**known_fields(cls, data))

    def latent_steps(self, frames: int) -> int:
        """Number of latent time steps for ``frames`` frames (raises if not ``1 + k*n``)."""
        check_num_frames(frames, self.temporal_downsample)
        return 1 + (frames - 1) // self.temporal_downsample


@dataclass(frozen=True)
class TokenizerTrainConfig:
    """Optimisation settings; the loss weights multiply the unweighted LFQ terms.

    ``clip_frames`` / ``crop_size`` train on random sub-clips (``1 + 4n`` frames) and
    object-centred square crops: the model is convolutional and causal, so what it learns
    on crops transfers to full 25x128x128 videos, at a fraction of the cost per step.
    """

    steps: Annotated[int, Ge(1), doc("optimisation steps")] = 800
    batch_size: Annotated[int, Ge(1), doc("video clips per step")] = 16
    lr: Annotated[float, Interval(gt=0, lt=1), doc("AdamW learning rate")] = 2e-3
    weight_decay: Annotated[float, doc("AdamW weight decay")] = 0.0
    warmup_steps: Annotated[int, doc("steps of linear learning-rate warm-up")] = 50
    min_lr_ratio: Annotated[
        float, doc("final learning rate of the cosine decay, as a share of lr")
    ] = 0.05
    grad_clip: Annotated[float, doc("max gradient norm")] = 1.0
    seed: Annotated[int, Ge(0), doc("weights and batch sampling")] = 0
    recon_loss: Annotated[Literal["l1", "mse"], doc("reconstruction loss")] = "mse"
    recon_weight: Annotated[float, doc("weight of the reconstruction loss")] = 1.0
    # The reconstruction MSE is small (most pixels are black and easy), so the LFQ terms
    # are kept small too: at 0.1 the entropy term dominated and PSNR stayed below black.
    entropy_weight: Annotated[float, doc("weight of LFQ's entropy loss")] = 0.01
    commitment_weight: Annotated[float, doc("weight of LFQ's commitment loss")] = 0.01
    clip_frames: Annotated[int | None, doc("frames per training clip (None: whole videos)")] = 9
    crop_size: Annotated[
        int | None, doc("square crop per training clip in px (None: whole frames)")
    ] = 32
    # Fraction of crops centred on objects (the rest uniform, mostly black). Measured on the
    # default store, 800 steps, 8x8 cells: 1.0 -> held-out PSNR 27.9 dB, 76 % codebook
    # usage; 0.5 -> 26.0 dB, 3 % (the background is learned anyway, the objects less).
    object_crop_fraction: Annotated[
        float, doc("fraction of crops centred on objects (the rest uniform)")
    ] = 1.0
    # Fading the entropy term out (linearly, to 0 at this step) was meant to stop background
    # tokens being spread over the codebook; measured at 200 of 800 steps: held-out PSNR
    # 27.2 dB (no gain) and the codebook collapsed to 0.6 % usage. Off by default.
    entropy_fade_steps: Annotated[
        int | None, doc("fade the entropy loss to 0 at this step (None: never)")
    ] = None
    log_every: Annotated[int, doc("steps between logged metrics")] = 50
    num_threads: Annotated[int | None, doc("torch CPU threads (None: torch's default)")] = None

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("TokenizerTrainConfig.steps and batch_size must be >= 1.")
        if self.recon_loss not in ("l1", "mse"):
            raise ValueError(f"recon_loss must be 'l1' or 'mse', got {self.recon_loss!r}.")
        if self.clip_frames is not None:
            check_num_frames(self.clip_frames)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenizerTrainConfig:
        return cls(**known_fields(cls, data))
