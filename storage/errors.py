"""Errors a user can cause, apart from bugs.

A `UserError` is something the user can change (a parameter, a path, a missing model): the
CLI prints its one sentence and exits 2, and nothing has been written. It is deliberately
not a `ValueError`: a `ValueError` raised by NumPy, torch or our own code is a bug and
shows its traceback.
"""


class UserError(Exception):
    """One sentence naming what to change; raised before anything is written."""


class StoreError(UserError):
    """The store (or the MLflow tracking store) is missing, foreign, or holds other data."""


class ParameterError(UserError):
    """A bad parameter: the message names it and what to change."""
