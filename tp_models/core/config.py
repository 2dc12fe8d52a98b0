"""Configs are frozen dataclasses stored as JSON; reading one back must never drop a key.
Every field is documented by ``annotated_types.doc`` in its ``Annotated`` type."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from annotated_types import DocInfo


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


def documentation(metadata: Iterable[Any]) -> str:
    """A field's documentation: the outermost ``annotated_types.doc`` of its ``Annotated``
    metadata (the one style every config and spec documents its fields in), "" if none."""
    docs = [m.documentation for m in metadata if isinstance(m, DocInfo)]
    return docs[-1] if docs else ""
