"""Errors a user can cause by pointing at the wrong store or asking for what is not there."""


class StoreError(ValueError):
    """One sentence naming what to change; raised before anything is written."""
