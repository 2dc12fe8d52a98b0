"""A GRU sequence model: a fixed-size state per track, so a step costs the same at any age.

The batch form (``forward`` over whole tracks) and the streaming form (``step``, one frame
of many tracks) run the same ``nn.GRU`` with the same weights: the streaming form only
feeds it one frame at a time and keeps the hidden state between calls, so both give the
same numbers (to float rounding) by construction.

A track's sequence starts at its first observation: frames before it (the padding of a
frame-aligned batch) never touch the state. ``forward`` shifts every track to start at
index 0, runs the GRU on the steps the track has, and shifts the outputs back; padded
frames get zeros (the head's input there is masked anyway).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from tp_models.model.interfaces import SequenceModel


@dataclass
class RecurrentState:
    """The GRU's hidden state of S live tracks: (layers, capacity, hidden), the first
    ``len(self)`` tracks in use. Capacity grows by doubling (amortised O(1) per track)."""

    hidden: Tensor
    size: int = 0

    def __len__(self) -> int:
        return self.size

    def add(self, count: int) -> None:
        """``count`` new tracks, with the initial (zero) state, after the existing ones."""
        need = self.size + count
        if need > self.hidden.shape[1]:
            capacity = max(need, 2 * self.hidden.shape[1], 8)
            grown = self.hidden.new_zeros((self.hidden.shape[0], capacity, self.hidden.shape[2]))
            grown[:, : self.size] = self.hidden[:, : self.size]
            self.hidden = grown
        self.hidden[:, self.size : need] = 0.0
        self.size = need

    def keep(self, index: Tensor) -> None:
        """Keep only the tracks at ``index`` (int64, ascending), in that order."""
        m = int(index.numel())
        self.hidden[:, :m] = self.hidden[:, index]
        self.size = m

    @property
    def nbytes(self) -> int:
        """Bytes held per the allocated capacity (the memory the state costs)."""
        return self.hidden.element_size() * self.hidden.nelement()


class GRUSequence(SequenceModel):
    """Causal GRU over per-frame features (see module docstring).

    ``n_layers`` stacked GRU layers of width ``d_model``, inputs projected to ``d_model``
    when their width differs, a final LayerNorm. No attention: ``get_attention`` is empty.
    """

    def __init__(
        self, input_dim: int = 64, d_model: int = 64, n_layers: int = 1, dropout: float = 0.1
    ):
        super().__init__()
        self.input_dim = input_dim
        self.output_dim = d_model
        self.input_proj = nn.Identity() if input_dim == d_model else nn.Linear(input_dim, d_model)
        self.input_dropout = nn.Dropout(dropout)
        self.gru = nn.GRU(
            d_model,
            d_model,
            num_layers=n_layers,
            batch_first=True,
            dropout=dropout if n_layers > 1 else 0.0,
        )
        self.final_norm = nn.LayerNorm(d_model)

    def forward(self, x: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        b, t, _ = x.shape
        h = self.input_dropout(self.input_proj(x))
        if padding_mask is None:
            return self.final_norm(self.gru(h)[0])
        # Padding is leading (frames before the first observation): shift each track so it
        # starts at step 0 and run only the steps it has.
        lead = padding_mask.sum(1)
        steps = torch.arange(t, device=x.device)
        ahead = (steps + lead.unsqueeze(1)).clamp(max=t - 1)
        aligned = torch.gather(h, 1, ahead.unsqueeze(-1).expand(-1, -1, h.shape[-1]))
        lengths = (t - lead).clamp(min=1).cpu()
        packed = pack_padded_sequence(aligned, lengths, batch_first=True, enforce_sorted=False)
        out = pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=t)[0]
        back = (steps - lead.unsqueeze(1)).clamp(min=0)
        restored = torch.gather(out, 1, back.unsqueeze(-1).expand(-1, -1, out.shape[-1]))
        return self.final_norm(restored.masked_fill(padding_mask.unsqueeze(-1), 0.0))

    def new_cache(self) -> RecurrentState:
        """An empty state for ``step`` (no tracks yet)."""
        like = self.final_norm.weight
        return RecurrentState(like.new_zeros((self.gru.num_layers, 0, self.output_dim)))

    def step(self, x: Tensor, cache: RecurrentState) -> Tensor:
        """(S, output_dim) output at one new frame of each of the S tracks in ``cache``,
        whose first step is their first observation: ``forward`` read at that frame, in
        O(1) per track. Call in eval mode (dropout is not replayed)."""
        s = len(cache)
        out, hidden = self.gru(self.input_proj(x).unsqueeze(1), cache.hidden[:, :s].contiguous())
        cache.hidden[:, :s] = hidden
        return self.final_norm(out[:, 0])
