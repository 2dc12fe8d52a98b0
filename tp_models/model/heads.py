"""Task heads: sequence features -> named per-frame outputs."""

from __future__ import annotations

from torch import Tensor, nn

from tp_models.model.interfaces import TaskHead


class PersistenceHead(TaskHead):
    """3-layer MLP per frame -> {"logits": (B, T), "persistence": sigmoid (B, T)}.

    Logits are returned too because the loss (BCE with logits) is numerically safer on
    them than on probabilities.
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

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        logits = self.mlp(x).squeeze(-1)
        return {"logits": logits, "persistence": logits.sigmoid()}
