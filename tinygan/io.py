"""Writing files so that nothing is ever half-written: one helper, used by every writer in tinygan.

:func:`atomic_write` opens a *new* temporary file in the target's folder
(created exclusively with a random name, so a file or symbolic link planted at
a predictable name such as ``out.png.tmp`` is never followed or clobbered),
hands it to the caller, flushes it to disk, and renames it over the target
(``os.replace``: atomic on POSIX and Windows within one folder).  Readers see
the old file or the new one, never a mixture; a failure at any point removes
the temporary file and leaves the old target untouched.

This module imports nothing from tinygan: it is the bottom layer, beside the kernels.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """Context manager: ``with atomic_write("ck.npz") as f: np.savez(f, ...)``.

    ``mode`` is ``"wb"`` (bytes) or ``"w"`` (text, ``encoding`` default UTF-8).
    The target's folder must exist; the new file gets the usual permissions
    (0666 minus the umask), not ``mkstemp``'s private 0600.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write: mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a file name")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=(encoding or "utf-8") if mode == "w" else None) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_write(path, "wb") as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_write(path, "w") as f:
        f.write(text)
    return Path(path)
