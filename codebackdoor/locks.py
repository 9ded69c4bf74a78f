"""Exclusive locks on files, shared-file-system safe: POSIX record locks (``fcntl.lockf``),
which Linux NFS clients forward to the server, so two processes on two cluster nodes see each
other's lock as two processes on one machine do."""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from codebackdoor.errors import UserError


@contextmanager
def exclusive(path: Path, *, wait: bool = True, what: str = "") -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if absent). With ``wait`` false, a lock
    another process holds is a UserError naming that process (``what`` says what is locked)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        try:
            fcntl.lockf(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (BlockingIOError, PermissionError) as exc:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise UserError(f"{what or path} is held by {holder} (lock {path}); wait for it to "
                            "finish, or stop it first") from exc
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
            handle.flush()
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.lockf(handle, fcntl.LOCK_UN)
