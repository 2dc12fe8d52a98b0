"""Causal transformer over per-frame features, with inspectable attention.

``nn.TransformerEncoderLayer`` calls attention with ``need_weights=False``, so hooks never
see weights; this module has its own pre-norm encoder layer. It computes attention
explicitly (and stores the per-head weights) only when storage is on; otherwise it uses
``scaled_dot_product_attention`` with the same mask, which is faster.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tp_models.model.interfaces import SequenceModel


def sinusoidal_encoding(max_len: int, dim: int) -> Tensor:
    """(max_len, dim) fixed sine/cosine position encoding (Vaswani et al.)."""
    position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(max_len, dim)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq[: dim // 2])
    return table


@dataclass
class SequenceCache:
    """Keys and values of every layer for S tracks, so one more frame costs one step.

    keys / values: per layer (capacity, heads, frames capacity, head_dim), the first
    ``len(self)`` rows in use; ``length`` (capacity,) frames cached per track. Both
    capacities grow by doubling, so adding tracks and frames is amortised O(1) per step.
    """

    keys: list[Tensor] = field(default_factory=list)
    values: list[Tensor] = field(default_factory=list)
    length: Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.int64))
    size: int = 0

    def __len__(self) -> int:
        return self.size

    def add(self, count: int) -> None:
        """``count`` new tracks (nothing cached yet) after the existing ones."""
        need = self.size + count
        if need > self.length.shape[0]:
            capacity = max(need, 2 * self.length.shape[0], 8)
            self._resize(capacity, self.keys[0].shape[2] if self.keys else 0)
        self.length[self.size : need] = 0
        self.size = need

    def keep(self, index: Tensor) -> None:
        """Keep only the tracks at ``index`` (int64, ascending), in that order."""
        m = int(index.numel())
        for cache in (*self.keys, *self.values):
            cache[:m] = cache[index]
        self.length[:m] = self.length[index]
        self.size = m

    def _resize(self, capacity: int, frames: int) -> None:
        def grown(old: Tensor) -> Tensor:
            new = old.new_zeros((capacity, old.shape[1], frames, old.shape[3]))
            new[: self.size, :, : old.shape[2]] = old[: self.size]
            return new

        self.keys = [grown(k) for k in self.keys]
        self.values = [grown(v) for v in self.values]
        length = torch.zeros(capacity, dtype=torch.int64)
        length[: self.size] = self.length[: self.size]
        self.length = length

    @property
    def nbytes(self) -> int:
        return sum(t.element_size() * t.nelement() for t in (*self.keys, *self.values))

    def ensure_frames(self, frames: int) -> None:
        have = self.keys[0].shape[2] if self.keys else 0
        if frames > have:
            self._resize(self.length.shape[0], max(frames, 2 * have, 16))


class MultiHeadSelfAttention(nn.Module):
    """Self-attention that can return its (B, heads, T, T) weights."""

    def __init__(self, d_model: int, n_heads: int, dropout: float):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = dropout

    def forward(
        self, x: Tensor, allowed: Tensor, need_weights: bool
    ) -> tuple[Tensor, Tensor | None]:
        """``allowed`` (B or 1, 1, T, T) bool: query t may attend to key s."""
        b, t, d = x.shape
        qkv = self.qkv(x).view(b, t, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        p_drop = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)
            weights = scores.masked_fill(~allowed, float("-inf")).softmax(dim=-1)
            mixed = F.dropout(weights, p_drop, self.training) @ v
        else:
            mixed = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=p_drop)
        return self.out(mixed.transpose(1, 2).reshape(b, t, d)), weights

    def step(self, x: Tensor, keys: Tensor, values: Tensor, length: Tensor) -> Tensor:
        """One new frame per track: x (S, d) attends to the cached frames and itself.

        keys / values (S, heads, frames, head_dim) are written at ``length`` (S,) in place.
        """
        s, d = x.shape
        q, k, v = self.qkv(x).view(s, 3, self.n_heads, self.head_dim).unbind(1)
        rows = torch.arange(s)
        keys[rows, :, length] = k
        values[rows, :, length] = v
        span = int(length.max()) + 1
        # One query per track: a broadcast product summed over head_dim reads the cache in
        # place; batched matmuls of 1-row matrices (or a fused kernel copying the strided
        # slice) cost several times more, growing with track age.
        scores = (q.unsqueeze(2) * keys[:, :, :span]).sum(-1)
        allowed = (torch.arange(span) <= length.unsqueeze(1)).unsqueeze(1)  # (S, 1, span)
        weights = (scores / math.sqrt(self.head_dim)).masked_fill(~allowed, float("-inf"))
        mixed = (weights.softmax(dim=-1).unsqueeze(-1) * values[:, :, :span]).sum(2)
        return self.out(mixed.reshape(s, d))


class PreNormEncoderLayer(nn.Module):
    """x + attn(norm(x)), then x + ff(norm(x)): pre-norm trains stably without warm-up."""

    def __init__(self, d_model: int, n_heads: int, ff_dim: int, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = MultiHeadSelfAttention(d_model, n_heads, dropout)
        self.drop1 = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(
            nn.Linear(d_model, ff_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff_dim, d_model)
        )
        self.drop2 = nn.Dropout(dropout)

    def forward(
        self, x: Tensor, allowed: Tensor, need_weights: bool
    ) -> tuple[Tensor, Tensor | None]:
        mixed, weights = self.attn(self.norm1(x), allowed, need_weights)
        x = x + self.drop1(mixed)
        x = x + self.drop2(self.ff(self.norm2(x)))
        return x, weights

    def step(self, x: Tensor, keys: Tensor, values: Tensor, length: Tensor) -> Tensor:
        """``forward`` for one new frame per track, against cached keys and values."""
        x = x + self.drop1(self.attn.step(self.norm1(x), keys, values, length))
        return x + self.drop2(self.ff(self.norm2(x)))


class SimpleTransformerSequence(SequenceModel):
    """Pre-norm transformer encoder, causal by default, over track-relative positions.

    ``positions="track"`` numbers frames from the track's first observation, so the
    model sees track age rather than the absolute frame; absolute frame index would let
    it learn "starts at frame 0 = persistent", which is not evidence an online tracker
    should use. ``positions="frame"`` uses the frame index.

    Padded frames (before the first observation) are masked as keys. Every query may
    always attend to itself, so no attention row is fully masked (which would give NaN);
    padded queries thus see only themselves, and valid queries never see padded keys.
    """

    def __init__(
        self,
        input_dim: int = 64,
        d_model: int = 64,
        n_heads: int = 4,
        n_layers: int = 4,
        ff_dim: int = 128,
        dropout: float = 0.1,
        max_len: int = 500,
        causal: bool = True,
        positions: str = "track",
        store_attention: bool = True,
    ):
        super().__init__()
        if positions not in ("track", "frame"):
            raise ValueError(f"positions must be 'track' or 'frame', got {positions!r}")
        self.input_dim = input_dim
        self.output_dim = d_model
        self.max_len = self.max_steps = max_len
        self.causal = causal
        self.positions = positions
        self.store_attention = store_attention
        self.input_proj = nn.Identity() if input_dim == d_model else nn.Linear(input_dim, d_model)
        self.register_buffer("pos_table", sinusoidal_encoding(max_len, d_model), persistent=False)
        self.pos_table: Tensor
        # Masks built once: making them per call costs more than attention for one track.
        past = torch.ones(max_len, max_len, dtype=torch.bool).tril()
        self.register_buffer("past", past, persistent=False)
        self.register_buffer("eye", torch.eye(max_len, dtype=torch.bool), persistent=False)
        self.past: Tensor
        self.eye: Tensor
        self.input_dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            PreNormEncoderLayer(d_model, n_heads, ff_dim, dropout) for _ in range(n_layers)
        )
        self.final_norm = nn.LayerNorm(d_model)
        self._attention: list[Tensor] = []

    def _allowed(self, padding_mask: Tensor | None, b: int, t: int) -> Tensor:
        allowed = self.past[:t, :t] if self.causal else torch.ones_like(self.eye[:t, :t])
        allowed = allowed.view(1, 1, t, t)
        if padding_mask is not None:
            allowed = allowed & ~padding_mask.view(b, 1, 1, t)
        return allowed | self.eye[:t, :t]

    def _position_encoding(self, padding_mask: Tensor | None, b: int, t: int) -> Tensor:
        if self.positions == "frame" or padding_mask is None:
            return self.pos_table[:t].unsqueeze(0)
        # Frames since the first observation; padded frames share index 0 (masked anyway).
        index = torch.cumsum((~padding_mask).to(torch.int64), dim=1) - 1
        return self.pos_table[index.clamp(min=0)]

    def forward(self, x: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        b, t, _ = x.shape
        if t > self.max_len:
            raise ValueError(
                f"sequence of {t} frames is longer than max_len={self.max_len}; "
                "build the model with a larger max_len"
            )
        h = self.input_dropout(self.input_proj(x) + self._position_encoding(padding_mask, b, t))
        allowed = self._allowed(padding_mask, b, t)
        attention: list[Tensor] = []
        for layer in self.layers:
            h, weights = layer(h, allowed, self.store_attention)
            if weights is not None:
                attention.append(weights.detach())
        self._attention = attention
        return self.final_norm(h)

    def new_cache(self) -> SequenceCache:
        """An empty cache for ``step`` (no tracks yet)."""
        heads = self.layers[0].attn.n_heads if self.layers else 1
        head_dim = self.output_dim // heads
        empty = self.pos_table.new_zeros((0, heads, 0, head_dim))
        return SequenceCache(
            keys=[empty.clone() for _ in self.layers], values=[empty.clone() for _ in self.layers]
        )

    def step(self, x: Tensor, cache: SequenceCache) -> Tensor:
        """(S, output_dim) output at one new frame of each of the S tracks in ``cache``.

        x (S, input_dim): the tracks' features at their next frame, their first frame being
        their first observation. Equals ``forward`` on the whole sequence read at that frame
        (same weights, same causal mask), at a cost that does not re-run the past: the
        incremental form the online scorer needs. Track positions and causal attention
        only; call in eval mode (dropout is not replayed).
        """
        if self.positions != "track" or not self.causal:
            raise ValueError(
                "step needs a causal model with positions='track' (frames since the first "
                f"observation); this one has causal={self.causal}, positions={self.positions!r}"
            )
        s = len(cache)
        length = cache.length[:s]
        if s and int(length.max()) >= self.max_len:
            raise ValueError(
                f"a track is longer than max_len={self.max_len} frames; build the model with "
                "a larger max_len"
            )
        cache.ensure_frames(int(length.max()) + 1 if s else 1)
        h = self.input_dropout(self.input_proj(x) + self.pos_table[length])
        for layer, keys, values in zip(self.layers, cache.keys, cache.values, strict=True):
            h = layer.step(h, keys[:s], values[:s], length)
        cache.length[:s] += 1
        return self.final_norm(h)

    def get_attention(self) -> list[Tensor]:
        """Per-layer (B, heads, T, T) weights of the last forward (pre-dropout, rows sum
        to 1). Raises if storage was off, rather than returning stale or no weights."""
        if not self._attention and self.layers:
            raise RuntimeError(
                "no attention weights stored by the last forward: set store_attention=True "
                "or call the pipeline with return_intermediates=True"
            )
        return list(self._attention)

    @contextmanager
    def attention_storage(self, enabled: bool) -> Iterator[None]:
        previous = self.store_attention
        self.store_attention = enabled
        try:
            yield
        finally:
            self.store_attention = previous
