"""Errors a user can cause, apart from bugs.

A `UserError` is something the user can change (a parameter, a path, a missing model): the
CLI prints its one sentence and exits 2, and nothing has been written. It is deliberately
not a `ValueError`: a `ValueError` raised by NumPy, torch or our own code is a bug and
shows its traceback.
"""

from __future__ import annotations

import logging

# Where Prefect reports what a flow or task run raised (with its traceback, at ERROR).
PREFECT_RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")


class UserError(Exception):
    """One sentence naming what to change; raised before anything is written."""


class StoreError(UserError):
    """The store (or the MLflow tracking store) is missing, foreign, or holds other data."""


class ParameterError(UserError):
    """A bad parameter: the message names it and what to change."""


class UserErrorsOnce(logging.Filter):
    """A user error raised inside a flow or task run reaches the terminal once, as the one
    sentence the CLI prints: Prefect's own reports of it (the traceback, "Finished in state
    Failed(...)") go to the run's logs in the Prefect API alone, not on to the console."""

    def __init__(self) -> None:
        super().__init__()
        self.sentences: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, UserError):
            self.sentences.add(str(error))
        elif not any(sentence in record.getMessage() for sentence in self.sentences):
            return True
        # The run logger's own handlers send it to the API; returning False keeps it from
        # propagating to the console handler on the root logger.
        for handler in logging.getLogger(record.name).handlers:
            if record.levelno >= handler.level:
                handler.handle(record)
        return False

    def install(self) -> None:
        for name in PREFECT_RUN_LOGGERS:
            logging.getLogger(name).addFilter(self)

    def uninstall(self) -> None:
        for name in PREFECT_RUN_LOGGERS:
            logging.getLogger(name).removeFilter(self)


def report_user_errors_once() -> None:
    """In a worker process of a local cluster: its task runs report user errors as the CLI
    does (the process ends with the cluster, so the filter stays)."""
    UserErrorsOnce().install()
