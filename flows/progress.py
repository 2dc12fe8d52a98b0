"""Progress that a person can see: a bar in the CLI, nothing when a flow runs elsewhere.

Flows report finished work here; the CLI turns the bar on for its own process. Deployed
runs (no terminal) keep to Prefect's log lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_bars_enabled: ContextVar[bool] = ContextVar("tp_progress_bars", default=False)


@contextmanager
def show_progress_bars() -> Iterator[None]:
    token = _bars_enabled.set(True)
    try:
        yield
    finally:
        _bars_enabled.reset(token)


@contextmanager
def progress(total: int, label: str) -> Iterator[Callable[[int], None]]:
    if not _bars_enabled.get():
        yield lambda n: None
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=label, unit="task", leave=True) as bar:
        yield bar.update
