"""The TTP's state is readable by its owner only: databases, logs, keys, certificates, spools.

The state directory holds pseudonymised trajectory rows (personal data under
the GDPR), the append-only log, receipts, the HMAC key and private keys. Made
with the usual umask (022), those files were readable by every local user.
Two layers keep them private:

- the ``ttp`` command, and so every service ``ttp up`` starts, runs under
  umask 077 (``restrict_umask``), so whatever any code creates is private;
- the places that make state files create them with an explicit owner-only
  mode (``private_dir``, ``private_file``, ``private_opener``), so they are
  private also when that code runs in a process with a looser umask (a test,
  an embedding program), and a file an earlier version left readable is
  tightened when it is opened again.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077
FILE_MODE = 0o600
DIR_MODE = 0o700


def restrict_umask() -> None:
    """From now on this process (and its children) creates files for their owner only."""
    os.umask(PRIVATE_UMASK)


def _tighten(fd: int) -> None:
    """Drop group and other permissions of an open file we own (a file of an earlier version)."""
    st = os.fstat(fd)
    if st.st_mode & 0o077 and st.st_uid == os.geteuid():
        os.fchmod(fd, stat.S_IMODE(st.st_mode) & 0o700)


def private_dir(path: Path) -> Path:
    """Create ``path`` and each missing parent with mode 0700; an existing directory is left as it is."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile by another process
            directory.mkdir(mode=DIR_MODE)
    return path


def private_opener(path: str, flags: int) -> int:
    """An ``opener`` for ``open()``: a new file gets mode 0600, an existing one of ours is tightened."""
    fd = os.open(path, flags, FILE_MODE)
    try:
        _tighten(fd)
    except OSError:
        os.close(fd)
        raise
    return fd


def private_file(path: Path) -> Path:
    """Make sure ``path`` exists with mode 0600 before another library (SQLite) opens it."""
    private_dir(path.parent)
    os.close(private_opener(str(path), os.O_WRONLY | os.O_CREAT | os.O_APPEND))
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (replacing its content), readable by the owner only."""
    private_dir(path.parent)
    with open(path, "wb", opener=private_opener) as fh:
        fh.write(data)


def secret_file(path: Path, size: int = 32) -> bytes:
    """The secret in ``path``; on first use ``size`` random bytes, created 0600.

    Created exclusively, so two processes starting together agree on one
    secret: the loser of the race reads the winner's file.
    """
    if not path.exists():
        private_dir(path.parent)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError:
            pass  # another process made it first
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(size))
    return path.read_bytes()
