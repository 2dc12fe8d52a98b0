"""Whether a checkpoint's weights fit the module built from its config: one check, one error,
for the persistence model and the tokenizer alike (an earlier version's checkpoint, whose
inputs differ, is refused by name instead of failing deep inside ``load_state_dict``)."""

from __future__ import annotations

import torch

_LIST_LIMIT = 5  # how many offending keys an error message names


class CheckpointMismatchError(ValueError):
    """The checkpoint does not fit the model (config, keys or shapes differ)."""


def _name_some(keys: list[str]) -> str:
    shown = ", ".join(keys[:_LIST_LIMIT])
    return shown + (f" (+{len(keys) - _LIST_LIMIT} more)" if len(keys) > _LIST_LIMIT else "")


def _shape(value: object) -> str:
    return str(tuple(value.shape)) if isinstance(value, torch.Tensor) else type(value).__name__


def check_state_dict_fits(
    model: torch.nn.Module,
    state_dict: dict[str, torch.Tensor],
    source: str = "checkpoint",
    what: str = "model",
    keys: bool = True,
) -> None:
    """Raise :class:`CheckpointMismatchError` unless keys and shapes match exactly;
    ``keys=False``: the shapes of the shared keys only (for a module whose own loading fills
    in the keys an earlier version lacked)."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict)) if keys else []
    unexpected = sorted(set(state_dict) - set(expected)) if keys else []
    wrong_shape = sorted(
        f"{k} (checkpoint {_shape(state_dict[k])}, model {tuple(expected[k].shape)})"
        for k in set(expected) & set(state_dict)
        if not isinstance(state_dict[k], torch.Tensor) or state_dict[k].shape != expected[k].shape
    )
    problems = []
    if missing:
        problems.append(f"missing keys: {_name_some(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_name_some(unexpected)}")
    if wrong_shape:
        problems.append(f"wrong shapes: {_name_some(wrong_shape)}")
    if problems:
        raise CheckpointMismatchError(
            f"the {source} does not fit the {what}: " + "; ".join(problems)
        )
