"""Which torch device a run uses: one place for the choices and for the error users see.

Every stage that runs a model (training, tokenizer training, feature caching, evaluation,
scoring) takes a ``device`` name and resolves it here, so ``auto`` means the same thing
everywhere and asking for a GPU that is not there fails before any work starts, with one
sentence instead of a CUDA stack trace from deep inside a forward pass.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch takes a second to import: a config or a --help never pays it
    import torch

# The names a user may give; "cuda:N" (a specific GPU) is accepted too, see resolve_device.
DEVICE_CHOICES = ("auto", "cpu", "cuda")
DEFAULT_DEVICE = "auto"
_CUDA_INDEX = re.compile(r"cuda:(\d+)")


class DeviceError(ValueError):
    """A device name that is unknown or names hardware this machine does not have."""


def resolve_device(name: str | torch.device = DEFAULT_DEVICE) -> torch.device:
    """The torch device for ``name``: ``auto`` (CUDA when available, else the CPU), ``cpu``,
    ``cuda`` (the current GPU) or ``cuda:N``. Raises :class:`DeviceError` for anything
    else, or for CUDA on a machine without it (a CPU-only torch build included)."""
    import torch

    if isinstance(name, torch.device):
        name = str(name)
    text = str(name).strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    index_match = _CUDA_INDEX.fullmatch(text)
    if text != "cuda" and index_match is None:
        raise DeviceError(
            f"device {name!r} is unknown; set the device parameter to one of "
            f"{', '.join(DEVICE_CHOICES)} or cuda:N."
        )
    if not torch.cuda.is_available():
        raise DeviceError(
            f"device {name!r} asks for a CUDA GPU, but this machine's torch "
            f"{torch.__version__} sees none; set the device parameter to cpu or auto "
            "(or install a CUDA build of torch on a machine with a GPU)."
        )
    if index_match is None:
        return torch.device("cuda", torch.cuda.current_device())
    index, count = int(index_match.group(1)), torch.cuda.device_count()
    if index >= count:
        raise DeviceError(
            f"device {name!r} names GPU {index}, but this machine has {count} "
            f"(cuda:0 to cuda:{count - 1}); set the device parameter to one of those, or auto."
        )
    return torch.device("cuda", index)
