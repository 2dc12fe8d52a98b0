"""A small MAGVIT-v2-style causal video tokenizer with lookup-free quantization (LFQ).

Conventions (the whole package follows them):

* Store layout: videos are ``uint8`` arrays ``(B, T, H, W, 3)``, as the Zarr store holds them.
* Model layout: ``float32`` tensors ``(B, 3, T, H, W)`` in ``[-1, 1]`` (0 -> -1, 255 -> +1);
  :func:`to_model_input` and :func:`to_uint8` convert between the two.
* Time: ``T`` must be ``1 + k * n`` with ``k = temporal_downsample`` (4 by default). Latent
  step 0 encodes frame 0 alone; step ``j >= 1`` encodes frames ``k*(j-1)+1 .. k*j`` (and, through
  the causal convolutions, everything before). 25 frames -> 7 steps.
* Space: ``H`` and ``W`` must be multiples of ``spatial_downsample`` (8 -> 16x16 latents for
  128x128 frames, 16 -> 8x8). Latent cell ``(r, c)`` covers pixels
  ``[s*r, s*r + s) x [s*c, s*c + s)``: every downsampling has kernel == stride, so there is
  no half-cell drift (``sampling.py`` relies on this).
* Quantization: the encoder emits a continuous latent of width ``latent_dim`` (256 by
  default). LFQ projects it linearly to ``log2(codebook_size)`` bits (10 by default),
  quantizes each bit to +-1 (the code index is the bit pattern), and projects back to
  ``latent_dim`` for the decoder. The *continuous* latents are the features for downstream
  models; the codes are the discrete tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# Re-exported: callers have always found them here.
from tp_models.magvit.config import TokenizerConfig as TokenizerConfig
from tp_models.magvit.config import check_num_frames as check_num_frames
from tp_models.magvit.layers import (
    CausalConv3d,
    ChannelRMSNorm,
    Downsample3d,
    ResBlock3d,
    Upsample3d,
)

VideoLike = np.ndarray | torch.Tensor


@dataclass
class TokenizerOutput:
    """What :meth:`MagVitTokenizer.forward` returns; the losses are unweighted."""

    recon: torch.Tensor  # (B, 3, T, H, W), not clamped (clamping would kill gradients)
    codes: torch.Tensor  # (B, T', h, w) int64
    latents: torch.Tensor  # (B, T', C, h, w) continuous, before quantization
    entropy_loss: torch.Tensor  # per-sample entropy - gamma * codebook entropy (LFQ)
    commitment_loss: torch.Tensor  # MSE between the projected bits and their signs
    per_sample_entropy: torch.Tensor
    codebook_entropy: torch.Tensor


def to_model_input(video: VideoLike, device: torch.device | str | None = None) -> torch.Tensor:
    """Store layout ``uint8 (B, T, H, W, 3)`` (or one video ``(T, H, W, 3)``) to model layout
    ``float32 (B, 3, T, H, W)`` in ``[-1, 1]``."""
    tensor = torch.as_tensor(video)
    if tensor.dtype != torch.uint8:
        raise TypeError(f"to_model_input expects uint8 video, got {tensor.dtype}.")
    if tensor.ndim == 4:
        tensor = tensor.unsqueeze(0)
    if tensor.ndim != 5 or tensor.shape[-1] != 3:
        raise ValueError(f"Expected uint8 video (B, T, H, W, 3), got shape {tuple(tensor.shape)}.")
    tensor = tensor.to(device) if device is not None else tensor
    return tensor.permute(0, 4, 1, 2, 3).float().div(127.5).sub(1.0).contiguous()


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """Model layout ``float (B, 3, T, H, W)`` in ``[-1, 1]`` back to store layout ``uint8
    (B, T, H, W, 3)`` (clamped and rounded)."""
    scaled = (video.detach().float().clamp(-1.0, 1.0) + 1.0) * 127.5
    return scaled.round().to(torch.uint8).permute(0, 2, 3, 4, 1).cpu().numpy()


def _level_plan(config: TokenizerConfig) -> list[tuple[bool, bool]]:
    """(time, space) downsampling of each transition between encoder levels.

    Time is downsampled in the first transitions so the expensive deeper levels run on
    fewer frames; space after the 2x2 stem needs ``log2(spatial_downsample) - 1`` steps.
    """
    space_steps = int(math.log2(config.spatial_downsample)) - 1
    time_steps = int(math.log2(config.temporal_downsample))
    return [(k < time_steps, k < space_steps) for k in range(max(space_steps, time_steps))]


def _widths(channels: tuple[int, ...], count: int) -> list[int]:
    return [channels[min(i, len(channels) - 1)] for i in range(count)]


class Encoder(nn.Module):
    def __init__(self, config: TokenizerConfig) -> None:
        super().__init__()
        plan = _level_plan(config)
        widths = _widths(config.channels, len(plan) + 1)
        # A 2x2 patchify stem: full-resolution 3D convolutions would cost most of the
        # encoding budget on pixels that are almost all black.
        self.stem = CausalConv3d(
            config.in_channels, widths[0], (1, 2, 2), stride=(1, 2, 2), spatial_padding=False
        )
        # No residual blocks at the stem's resolution (64x64 for 128x128 frames): there they
        # cost ~60 % of the encoding time, mostly memory-bound norm/activation passes.
        blocks: list[nn.Module] = []
        for k, (time, space) in enumerate(plan):
            blocks.append(Downsample3d(widths[k], widths[k + 1], time=time, space=space))
            blocks.extend(ResBlock3d(widths[k + 1]) for _ in range(config.num_res_blocks))
        self.blocks = nn.Sequential(*blocks)
        self.norm_out = ChannelRMSNorm(widths[-1])
        self.proj_out = nn.Conv3d(widths[-1], config.latent_dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.proj_out(F.silu(self.norm_out(x)))


class Decoder(nn.Module):
    def __init__(self, config: TokenizerConfig) -> None:
        super().__init__()
        plan = _level_plan(config)
        widths = _widths(config.decoder_channels, len(plan) + 1)
        self.proj_in = nn.Conv3d(config.latent_dim, widths[-1], kernel_size=1)
        blocks: list[nn.Module] = [ResBlock3d(widths[-1]) for _ in range(config.decoder_res_blocks)]
        for k in reversed(range(len(plan))):
            time, space = plan[k]
            blocks.append(Upsample3d(widths[k + 1], widths[k], time=time, space=space))
            if k > 0:  # as in the encoder, nothing heavy at the stem's resolution
                blocks.extend(ResBlock3d(widths[k]) for _ in range(config.decoder_res_blocks))
        self.blocks = nn.Sequential(*blocks)
        self.norm_out = ChannelRMSNorm(widths[0])
        self.unstem = Upsample3d(widths[0], config.in_channels, time=False, space=True)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.proj_in(z))
        return self.unstem(F.silu(self.norm_out(x)))


class MagVitTokenizer(nn.Module):
    """Causal video tokenizer: ``encode`` -> (continuous latents, codes), ``decode(codes)``.

    ``encode``/``decode`` are the inference API (no gradients); ``forward`` is for training.
    """

    def __init__(self, config: TokenizerConfig | None = None) -> None:
        super().__init__()
        self.config = config or TokenizerConfig()
        self.encoder = Encoder(self.config)
        self.decoder = Decoder(self.config)
        # Both LFQ loss weights are 1: the LFQ's own weighted sum is ignored, the training
        # loop weighs the unweighted terms (TokenizerTrainConfig holds the weights). The
        # commitment weight must be > 0 or LFQ skips computing that term.
        # Imported here: it costs ~2 s (einx, torch._dynamo), and every command that only
        # reads TokenizerConfig (all of them, through the specs) should not pay for it.
        from vector_quantize_pytorch import LFQ

        self.quantizer = LFQ(
            dim=self.config.latent_dim,
            codebook_size=self.config.codebook_size,
            entropy_loss_weight=1.0,
            commitment_loss_weight=1.0,
            diversity_gamma=self.config.diversity_gamma,
            channel_first=True,
        )

    # -- shapes -----------------------------------------------------------------------------

    def check_input(self, x: torch.Tensor) -> None:
        cfg = self.config
        if x.ndim != 5 or x.shape[1] != cfg.in_channels:
            raise ValueError(
                f"Expected model input (B, {cfg.in_channels}, T, H, W), got {tuple(x.shape)}; "
                "convert store videos (B, T, H, W, 3) uint8 with to_model_input()."
            )
        check_num_frames(x.shape[2], cfg.temporal_downsample)
        height, width = x.shape[3], x.shape[4]
        if height % cfg.spatial_downsample or width % cfg.spatial_downsample:
            raise ValueError(
                f"Frame size {height}x{width} is not a multiple of spatial_downsample="
                f"{cfg.spatial_downsample}."
            )

    def _as_model_input(self, video: VideoLike) -> torch.Tensor:
        device = next(self.parameters()).device
        if isinstance(video, np.ndarray) or video.dtype == torch.uint8:
            return to_model_input(video, device)
        if not video.is_floating_point():
            raise TypeError(f"Video must be uint8 (store layout) or float, got {video.dtype}.")
        return video.to(device)

    # -- training ---------------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> TokenizerOutput:
        """``x``: model layout float ``(B, 3, T, H, W)`` in ``[-1, 1]``."""
        self.check_input(x)
        z = self.encoder(x)
        (quantized, codes, _), breakdown = self.quantizer(
            z, inv_temperature=self.config.inv_temperature, return_loss_breakdown=True
        )
        recon = self.decoder(quantized)
        per_sample, codebook, commitment = breakdown
        return TokenizerOutput(
            recon=recon,
            codes=codes.long(),
            latents=z.permute(0, 2, 1, 3, 4),
            entropy_loss=per_sample - self.config.diversity_gamma * codebook,
            commitment_loss=commitment,
            per_sample_entropy=per_sample,
            codebook_entropy=codebook,
        )

    # -- inference --------------------------------------------------------------------------

    @torch.no_grad()
    def encode(self, video: VideoLike) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode videos.

        ``video``: ``uint8 (B, T, H, W, 3)`` in store layout (numpy or torch), or a float
        tensor already in model layout ``(B, 3, T, H, W)`` in ``[-1, 1]``.
        Returns ``latents`` float32 ``(B, T', C, h, w)`` (continuous, before quantization)
        and ``codes`` int64 ``(B, T', h, w)`` in ``[0, codebook_size)``.
        """
        x = self._as_model_input(video)
        self.check_input(x)
        z = self.encoder(x)
        codes = self.codes_from_latents(z)
        return z.permute(0, 2, 1, 3, 4).contiguous(), codes

    @torch.no_grad()
    def encode_latents(
        self, videos: VideoLike, batch_size: int = 8, dtype: torch.dtype = torch.float32
    ) -> np.ndarray:
        """Continuous latents of store-layout uint8 videos ``(N, T, H, W, 3)`` as one host
        array ``(N, T', C, h, w)`` of ``dtype``: what a feature cache stores. Batches of
        ``batch_size`` videos go to the model's device (a GPU if it is on one) as uint8 and
        come back already cast, so the transfer each way is as small as it can be."""
        parts = [
            self.encode(videos[start : start + batch_size])[0].to(dtype).cpu().numpy()
            for start in range(0, len(videos), batch_size)
        ]
        if not parts:
            raise ValueError("videos is empty; pass at least one video (N >= 1) to encode.")
        return np.concatenate(parts)

    def codes_from_latents(self, z: torch.Tensor) -> torch.Tensor:
        """Codes of continuous latents in encoder layout ``(B, C, T', h, w)``: the sign
        bits of LFQ's projection, most significant bit first (as LFQ numbers them)."""
        bits = self.quantizer.project_in(z.permute(0, 2, 3, 4, 1)) > 0
        weights = self.quantizer.mask.to(z.device)  # 2**(bits-1) .. 1
        return (bits.long() * weights).sum(dim=-1)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Decode codes ``(B, T', h, w)`` to model layout ``(B, 3, T, H, W)`` in ``[-1, 1]``
        (clamped); use :func:`to_uint8` for store layout."""
        codes = torch.as_tensor(codes, device=next(self.parameters()).device)
        if codes.ndim != 4:
            raise ValueError(f"Expected codes (B, T', h, w), got {tuple(codes.shape)}.")
        if codes.min() < 0 or codes.max() >= self.config.codebook_size:
            raise ValueError(f"Codes must lie in [0, {self.config.codebook_size}).")
        quantized = self.quantizer.indices_to_codes(codes.long())  # (B, C, T', h, w)
        return self.decoder(quantized).clamp(-1.0, 1.0)

    @torch.no_grad()
    def reconstruct(self, video: VideoLike) -> torch.Tensor:
        """Encode then decode; model layout in ``[-1, 1]``."""
        _, codes = self.encode(video)
        return self.decode(codes)
