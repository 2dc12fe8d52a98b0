"""Abstract building blocks of the modular persistence model.

A pipeline is ``FeatureExtractor -> SequenceModel -> TaskHead``. The three roles are
separate so that feature sets (kinematics, MagVit latents, both) can be swapped without
touching the sequence model or the head, and so that each part can be tested alone.

Inputs travel as a dict of tensors (``TrackInputs``) rather than one tensor because
extractors need different things: kinematic features need positions and the observed
mask, a latent extractor needs cached latents from ``TrackBatch.extras``. Every
extractor declares the keys it reads in ``input_keys``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from tp_models.core.batch import TrackBatch
from tp_models.model.features import batch_to_tensors, leading_padding_mask
from tp_models.tracks.features import with_scene_features
from tp_models.tracks.lives import LifeBuckets

# Keys every pipeline input has: (B, T, 2) float positions and (B, T) bool observed mask.
TrackInputs = Mapping[str, Tensor]


class FeatureExtractor(nn.Module, ABC):
    """Turns per-frame track inputs into per-frame features ``(B, T, output_dim)``.

    Contract: the features at frame t depend only on inputs at frames <= t (online
    scoring), and are finite everywhere, including frames before the first observation.
    """

    output_dim: int
    input_keys: tuple[str, ...] = ("position", "observed")

    @abstractmethod
    def forward(self, x: TrackInputs) -> Tensor:
        """(B, T, output_dim) features."""

    def batch_inputs(self, batch: TrackBatch) -> dict[str, np.ndarray]:
        """Inputs this extractor derives from the whole batch on the host, by input key:
        those that read other tracks of the same video (every track of a video is in the
        batch) and so cannot be computed from one track's minibatch row. None by default."""
        return {}


class StepCache(Protocol):
    """What a sequence model keeps between ``step`` calls for S live tracks."""

    def __len__(self) -> int: ...

    def add(self, count: int) -> None:
        """``count`` new tracks, nothing seen yet, after the existing ones."""

    def keep(self, index: Tensor) -> None:
        """Only the tracks at ``index`` (int64, ascending) stay, in that order."""

    @property
    def nbytes(self) -> int:
        """Bytes the cache holds."""


class SequenceModel(nn.Module, ABC):
    """Mixes per-frame features over time: ``(B, T, input_dim) -> (B, T, output_dim)``.

    ``padding_mask`` is (B, T) bool, True where a frame is padding (before the track's
    first observation), following PyTorch's key-padding convention.

    A model that can stream also implements ``new_cache`` and ``step``: one new frame of
    S live tracks at a time, equal to ``forward`` read at that frame.
    """

    input_dim: int
    output_dim: int
    max_steps: int | None = None  # the longest track life it reads; None: any

    @abstractmethod
    def forward(self, x: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """(B, T, output_dim) sequence features."""

    def new_cache(self) -> StepCache:
        """An empty cache for ``step`` (no tracks yet)."""
        raise NotImplementedError(f"{type(self).__name__} cannot score one frame at a time")

    def step(self, x: Tensor, cache: StepCache) -> Tensor:
        """(S, output_dim) output at one new frame of each of the S tracks in ``cache``,
        x (S, input_dim), a track's first step being its first observation."""
        raise NotImplementedError(f"{type(self).__name__} cannot score one frame at a time")

    def get_attention(self) -> list[Tensor]:
        """Attention weights of the last forward, one (B, heads, T, T) tensor per layer.

        Models without attention return an empty list.
        """
        return []

    @contextmanager
    def attention_storage(self, enabled: bool) -> Iterator[None]:
        """Temporarily switch attention storage on or off (no-op without attention)."""
        yield


class TaskHead(nn.Module, ABC):
    """Maps sequence features ``(B, T, input_dim)`` to named outputs."""

    input_dim: int

    @abstractmethod
    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Named (B, T, ...) outputs."""


def _component_name(module: nn.Module) -> str:
    return type(module).__name__


class ModularTrackingPipeline(nn.Module):
    """Extractor -> sequence model -> head, with dimensions checked when it is built.

    The check happens here, not at the first forward, so that a wrong config fails
    immediately with a message naming the two components that disagree.
    """

    probabilistic = True  # `score` is the head's sigmoid: reports include its calibration

    def __init__(
        self,
        extractor: FeatureExtractor,
        sequence: SequenceModel,
        head: TaskHead,
        name: str = "modular",
        score_batch_size: int = 512,
    ):
        super().__init__()
        if extractor.output_dim != sequence.input_dim:
            raise ValueError(
                f"{_component_name(extractor)}.output_dim={extractor.output_dim} does not match "
                f"{_component_name(sequence)}.input_dim={sequence.input_dim}"
            )
        if sequence.output_dim != head.input_dim:
            raise ValueError(
                f"{_component_name(sequence)}.output_dim={sequence.output_dim} does not match "
                f"{_component_name(head)}.input_dim={head.input_dim}"
            )
        self.extractor = extractor
        self.sequence = sequence
        self.head = head
        self.name = name
        self.score_batch_size = score_batch_size
        # Set by build_pipeline (a ModelConfig); checkpoints need it to rebuild the model.
        self.config: Any = None

    @property
    def input_keys(self) -> tuple[str, ...]:
        """Input keys the pipeline reads; ``observed`` is always needed for padding."""
        keys = dict.fromkeys(("observed", *self.extractor.input_keys))
        return tuple(keys)

    def forward(self, x: TrackInputs, return_intermediates: bool = False) -> dict[str, Tensor]:
        """Head outputs; with ``return_intermediates`` also features, sequence output,
        padding mask and (stored for this call) attention weights per layer."""
        padding_mask = leading_padding_mask(x["observed"])
        features = self.extractor(x)
        if return_intermediates:
            # Asking for intermediates means asking for attention, whatever the default.
            with self.sequence.attention_storage(True):
                hidden = self.sequence(features, padding_mask)
        else:
            hidden = self.sequence(features, padding_mask)
        outputs = dict(self.head(hidden))
        if return_intermediates:
            outputs["features"] = features
            outputs["sequence"] = hidden
            outputs["padding_mask"] = padding_mask
            for i, weights in enumerate(self.get_attention()):
                outputs[f"attention_{i}"] = weights
        return outputs

    @property
    def max_steps(self) -> int | None:
        """The longest track life (steps) the model reads; None: any."""
        return self.sequence.max_steps

    def get_attention(self) -> list[Tensor]:
        """Per-layer (B, heads, T, T) attention weights of the last forward."""
        return self.sequence.get_attention()

    @contextmanager
    def attention_storage(self, enabled: bool) -> Iterator[None]:
        with self.sequence.attention_storage(enabled):
            yield

    def tensors(
        self, batch: TrackBatch, device: torch.device | str = "cpu", with_label: bool = False
    ) -> dict[str, Tensor]:
        """The model's inputs for ``batch`` (``batch_to_tensors`` plus the inputs the
        extractor derives from the whole batch)."""
        computed = self.extractor.batch_inputs(batch)
        return batch_to_tensors(batch, self.input_keys, device, with_label, computed)

    def score(self, batch: TrackBatch) -> np.ndarray:
        """(B, T) float32 persistence probabilities at every frame of each track's life
        (first to last observation; NaN elsewhere): the shared ``PersistenceScorer`` API.

        The tracks are packed by life (``LifeBuckets``: each cut to its life and
        start-aligned, the scene features made first on whole videos), inputs and all, in
        chunks of ``score_batch_size`` tracks: exact, the model reads a track from its first
        observation on and is causal, and the cost and memory follow the lives, not the
        sequence's frame span (attention over a 300-frame span for a one-hit track would
        cost 300^2). Eval mode, no autograd, attention not stored (it is only for
        inspection and costs speed).
        """
        # Only touch modules that are training: eval() walks the whole module tree, which
        # costs more than the forward pass for a single track.
        training = [m for m in self.modules() if m.training]
        for module in training:
            module.training = False
        out = np.full((len(batch), batch.frames), np.nan, dtype=np.float32)
        try:
            with torch.inference_mode(), self.attention_storage(False):
                lives = LifeBuckets(with_scene_features(batch))
                track, frame, values = lives.per_frame(self._persistence)
            out[track, frame] = values
        finally:
            for module in training:
                module.training = True
        return out

    def _persistence(self, batch: TrackBatch) -> np.ndarray:
        """(B, T) the head's persistence over ``batch``, ``score_batch_size`` tracks at a
        time."""
        device = next(self.parameters()).device
        inputs = self.tensors(batch)
        parts = []
        for start in range(0, len(batch), self.score_batch_size):
            part = {
                k: v[start : start + self.score_batch_size].to(device) for k, v in inputs.items()
            }
            parts.append(self(part)["persistence"].float().cpu().numpy())
        return np.concatenate(parts) if parts else np.zeros((0, batch.frames), np.float32)
