"""Crash-safe file output: write to a temporary file beside the target, then rename.

A reader (or a user after a crash) sees either the old file or the complete new one,
never a truncated one, because ``os.replace`` is atomic within one filesystem.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_open", "atomic_write_bytes", "atomic_write_text"]

# mkstemp creates files 0600; a result file should get the mode any other new file gets.
# The umask can only be read by setting it, so read it once, before any threads exist.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs: object) -> Iterator[IO]:
    """Open a temporary file that replaces ``path`` only if the block completes.

    Example
    -------
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "out.json"
    >>> with atomic_open(out) as f:
    ...     _ = f.write("{}")
    ...     out.exists()  # nothing at ``path`` until the block completes
    False
    >>> out.read_text()
    '{}'
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:  # named by the file asked for, not the temporary one
        raise type(exc)(exc.errno, exc.strerror, str(target)) from None
    try:
        try:
            mode_bits = target.stat().st_mode & 0o7777  # replacing a file keeps its mode
        except FileNotFoundError:
            mode_bits = 0o666 & ~_UMASK
        os.fchmod(fd, mode_bits)
        with os.fdopen(fd, mode, **kwargs) as f:  # type: ignore[call-overload]
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)
