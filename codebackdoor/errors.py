"""Errors a user can cause. The CLI prints them as one line, never as a traceback."""


class UserError(Exception):
    """A mistake in the user's input (names, rates, paths, data); shown as one clear line."""


class Unpoisonable(Exception):
    """An example an attack cannot poison; ``reason`` is a short key counted in the manifest."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Stopped(KeyboardInterrupt):
    """The process was asked to stop (SIGTERM, as a scheduler sends before a time limit); it
    ends as Ctrl-C does, after the last complete checkpoint."""

    def __init__(self, signal_name: str):
        super().__init__(signal_name)
        self.signal_name = signal_name
