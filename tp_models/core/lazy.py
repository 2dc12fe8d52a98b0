"""A package's names imported on first use (PEP 562): its ``__init__`` maps each name it
offers to the submodule that defines it, so importing the package costs nothing until a name
is read (torch takes a second to import, LFQ's einx several)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, names_by_module: Mapping[str, tuple[str, ...]]
) -> tuple[Callable[[str], Any], list[str]]:
    """``package``'s module ``__getattr__`` and its ``__all__``: ``names_by_module[m]`` are
    the names its submodule ``m`` defines."""
    home = {name: module for module, names in names_by_module.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in home:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{home[name]}"), name)

    return __getattr__, sorted(home)
