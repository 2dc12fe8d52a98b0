"""Progress that a person can see: a bar in the CLI on a terminal, nothing anywhere else.

Flows report finished work here; the CLI turns bars on for its own process, and a bar is
drawn only when stderr is a terminal. Deployed runs and CI logs (no terminal) keep to
Prefect's log lines.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_bars_enabled: ContextVar[bool] = ContextVar("tp_progress_bars", default=False)

Advance = Callable[..., None]  # advance(n, **latest): n more units done, latest values shown


@contextmanager
def show_progress_bars() -> Iterator[None]:
    token = _bars_enabled.set(True)
    try:
        yield
    finally:
        _bars_enabled.reset(token)


def bars_shown() -> bool:
    return _bars_enabled.get() and sys.stderr.isatty()


def _quiet(n: int = 1, **latest: float) -> None:
    del n, latest


@contextmanager
def progress(total: int, label: str, unit: str = "task") -> Iterator[Advance]:
    """A bar of `total` units with rate and ETA; `advance(n, **latest)` also shows the latest
    values (e.g. validation metrics) beside it."""
    if not bars_shown():
        yield _quiet
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=label, unit=unit, leave=True, file=sys.stderr) as bar:

        def advance(n: int = 1, **latest: float) -> None:
            if latest:
                bar.set_postfix({k: f"{v:.4g}" for k, v in latest.items()}, refresh=False)
            bar.update(n)

        yield advance
