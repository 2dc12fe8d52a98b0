"""Configs are frozen dataclasses stored as JSON; reading one back must never drop a key."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


def known_fields(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """`data` as keyword arguments of dataclass `cls`: an unknown key (a typo, a config from
    another version) is an error naming it, never silently ignored."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(
            f"unknown {cls.__name__} field(s) {unknown}; known fields are {sorted(names)}"
        )
    return dict(data)
