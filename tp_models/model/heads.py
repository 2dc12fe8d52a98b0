"""Task heads: sequence features -> named per-frame outputs."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tp_models.model.interfaces import TaskHead


class PersistenceHead(TaskHead):
    """3-layer MLP per frame -> {"logits": (B, T), "persistence": sigmoid (B, T)}.

    Logits are returned too because the loss (BCE with logits) is numerically safer on
    them than on probabilities. ``calibration`` (scale, shift) maps the MLP's output to the
    logits: (1, 0) while training, then fitted on validation (``calibration.calibrate``,
    Platt scaling), so probabilities are calibrated while the ranking is unchanged.
    """

    def __init__(self, input_dim: int = 64, hidden_dim: int = 64, dropout: float = 0.1):
        super().__init__()
        self.input_dim = input_dim
        self.mlp = nn.Sequential(
            nn.Linear(input_dim, hidden_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, 1),
        )
        self.register_buffer("calibration", torch.tensor([1.0, 0.0]))
        self.calibration: Tensor

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        scale, shift = self.calibration
        logits = self.mlp(x).squeeze(-1) * scale + shift
        return {"logits": logits, "persistence": logits.sigmoid()}

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[no-untyped-def]
        # Checkpoints from before calibration existed hold none: theirs is the identity.
        state_dict.setdefault(prefix + "calibration", torch.tensor([1.0, 0.0]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
