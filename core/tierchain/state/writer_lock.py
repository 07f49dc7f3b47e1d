"""One writer per chain database: an exclusive lock held for the life of any writable ``Store``.

LMDB lets several processes open one environment for writing and serialises their
transactions, so two writers of one chain would each append "their" block at the
same height and one would overwrite a block the other had already reported
committed. Every writer (a node, an embedded ``Chain``, a shard process, an
offline tool that writes) therefore takes ``flock(LOCK_EX)`` on ``writer.lock`` in
the database directory before it opens the environment, and holds it until the
store is closed. The kernel drops the lock when the holder's process exits, however
it exits (``kill -9`` included), so a crash never leaves a stale lock.

``flock`` locks belong to an open file, not to a process: a second writable open
in the same process is refused too. The holder writes its pid, start time and
command line into the file so that a refused writer can say who holds it.

Readers (``Store(readonly=True)``) take no lock: LMDB gives every read
transaction a consistent snapshot of the last committed transaction, so read-only
tools run safely beside a writer (docs/operations.md, "Read-only tools").
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import sys
from typing import IO, Any

from tierchain.errors import TierChainError

LOCK_NAME = "writer.lock"
holder_bytes_max = 4096  # what a refused writer reads of the holder's description


class DatabaseLocked(TierChainError):
    """Another writer (process or open store) holds this chain database."""

    def __init__(self, directory: str, holder: dict[str, Any] | None) -> None:
        self.directory, self.holder = directory, holder
        if holder:
            who = f"pid {holder.get('pid')} since {holder.get('since')} ({holder.get('command', '?')})"
        else:
            who = "another writer that is still starting"
        super().__init__(
            f"chain database {directory} is locked by {who}; one writer per chain directory: "
            "stop it first, or use a read-only command"
        )


def read_holder(directory: str | os.PathLike) -> dict[str, Any] | None:
    """The description the current (or last) holder wrote, or ``None`` if there is none."""
    try:
        with open(os.path.join(os.fspath(directory), LOCK_NAME), "rb") as f:
            return _parse(f.read(holder_bytes_max))
    except FileNotFoundError:
        return None


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        holder = json.loads(raw)
    except ValueError:  # empty (a holder between lock and write) or damaged
        return None
    return holder if isinstance(holder, dict) else None


class WriterLock:
    """The exclusive writer lock of one database directory (created if missing)."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = os.fspath(directory)
        os.makedirs(self.directory, exist_ok=True)
        f: IO[bytes] = open(os.path.join(self.directory, LOCK_NAME), "a+b")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = _parse(f.read(holder_bytes_max))
            f.close()
            raise DatabaseLocked(self.directory, holder) from None
        except BaseException:
            f.close()
            raise
        holder = {
            "pid": os.getpid(),
            "since": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv)[:256],
        }
        f.truncate(0)
        f.write(json.dumps(holder).encode())
        f.flush()
        self._file: IO[bytes] | None = f

    @property
    def held(self) -> bool:
        return self._file is not None

    def release(self) -> None:
        """Clear the holder's description and drop the lock (idempotent)."""
        f, self._file = self._file, None
        if f is None:
            return
        try:
            f.truncate(0)
        finally:
            f.close()  # closing the last descriptor of the open file releases the flock
