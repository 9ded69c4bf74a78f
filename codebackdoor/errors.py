"""Errors a user can cause. The CLI prints them as one line, never as a traceback."""


class UserError(Exception):
    """A mistake in the user's input (names, rates, paths, data); shown as one clear line."""


class Unpoisonable(Exception):
    """An example an attack cannot poison; ``reason`` is a short key counted in the manifest."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
