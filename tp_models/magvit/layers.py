"""Building blocks of the causal video tokenizer.

Every block works on channel-first video tensors ``(B, C, T, H, W)`` and is causal in time:
the output at time ``t`` never depends on inputs after ``t``. Nothing normalises over time
or over the frame (no BatchNorm, no GroupNorm), because statistics pooled across frames
would leak the future into the past and statistics pooled across the frame would make a
cell's latent depend on objects far away from it; features sampled along a track must be
local and causal.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

Triple = tuple[int, int, int]


def _triple(value: int | Triple) -> Triple:
    if isinstance(value, int):
        return (value, value, value)
    return value


class CausalConv3d(nn.Module):
    """3D convolution padded only on the past side in time.

    The time axis is padded with ``kernel_t - 1`` copies of the first frame (not zeros:
    black is -1 in the model's input range, so zero padding would inject a fake grey frame
    before the video starts). Hence the first output step only ever sees frame 0.
    Space is padded symmetrically with zeros (``kernel // 2``), so a stride-1 convolution
    keeps the frame size and stays centred on its pixel.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Triple = 3,
        stride: int | Triple = 1,
        spatial_padding: bool = True,
    ) -> None:
        super().__init__()
        kt, kh, kw = _triple(kernel_size)
        self.time_pad = kt - 1
        pad_h, pad_w = (kh // 2, kw // 2) if spatial_padding else (0, 0)
        self.conv = nn.Conv3d(
            in_channels,
            out_channels,
            kernel_size=(kt, kh, kw),
            stride=_triple(stride),
            padding=(0, pad_h, pad_w),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.time_pad > 0:
            first = x[:, :, :1].expand(-1, -1, self.time_pad, -1, -1)
            x = torch.cat([first, x], dim=2)
        return self.conv(x)


class ChannelRMSNorm(nn.Module):
    """RMS normalisation over channels only, per voxel (local and causal by construction)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(1, channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps) * self.weight


class ResBlock3d(nn.Module):
    """Pre-norm residual block of two causal 3x3x3 convolutions."""

    def __init__(self, in_channels: int, out_channels: int | None = None) -> None:
        super().__init__()
        out_channels = out_channels or in_channels
        self.norm1 = ChannelRMSNorm(in_channels)
        self.conv1 = CausalConv3d(in_channels, out_channels, 3)
        self.norm2 = ChannelRMSNorm(out_channels)
        self.conv2 = CausalConv3d(out_channels, out_channels, 3)
        # Start each block close to the identity so a deep-ish stack trains quickly from scratch.
        nn.init.zeros_(self.conv2.conv.weight)
        nn.init.zeros_(self.conv2.conv.bias)
        self.skip: nn.Module = (
            nn.Identity()
            if in_channels == out_channels
            else nn.Conv3d(in_channels, out_channels, kernel_size=1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class Downsample3d(nn.Module):
    """Strided convolution whose kernel equals its stride (a learned space/time-to-depth).

    Kernel == stride means output cell ``j`` covers exactly input cells ``[2j, 2j + 1]``:
    its centre stays on the pixel-centre grid (``s * j + (s - 1) / 2`` after a total factor
    ``s``), which ``sampling.py`` relies on. In time the two inputs are ``2i - 1`` and ``2i``
    (past padding of one frame), so output step ``i`` ends at input step ``2i``: with
    ``T = 1 + 2n`` inputs there are ``1 + n`` outputs and step 0 sees only the first input.
    """

    def __init__(self, in_channels: int, out_channels: int, time: bool, space: bool) -> None:
        super().__init__()
        st = 2 if time else 1
        ss = 2 if space else 1
        self.conv = CausalConv3d(
            in_channels, out_channels, (st, ss, ss), stride=(st, ss, ss), spatial_padding=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample3d(nn.Module):
    """Inverse of :class:`Downsample3d`: a convolution to ``C * st * ss * ss`` channels, then
    depth-to-space/time.

    In time, step ``i`` expands into frames ``(2i - 1, 2i)`` and the very first (virtual)
    frame ``-1`` is dropped, so ``1 + n`` steps become ``1 + 2n`` frames and every decoded
    frame depends only on latent steps up to its own.
    """

    def __init__(self, in_channels: int, out_channels: int, time: bool, space: bool) -> None:
        super().__init__()
        self.st = 2 if time else 1
        self.ss = 2 if space else 1
        self.out_channels = out_channels
        factor = self.st * self.ss * self.ss
        self.conv = CausalConv3d(in_channels, out_channels * factor, (1, 3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, t, h, w = x.shape
        st, ss, c = self.st, self.ss, self.out_channels
        x = self.conv(x)
        x = x.view(b, c, st, ss, ss, t, h, w)
        x = x.permute(0, 1, 5, 2, 6, 3, 7, 4).reshape(b, c, t * st, h * ss, w * ss)
        if st > 1:
            x = x[:, :, st - 1 :]
        return x
