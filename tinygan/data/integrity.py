"""Checksums for data files: SHA-256 (and MD5 where only that is published).

A data file that is silently corrupted (a truncated download, a disk error,
someone's edited copy) trains a GAN on garbage without any error, so every
file tinygan ships or downloads is hashed before it is read.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK_BYTES = 1 << 20  # read 1 MiB at a time so large archives never sit in memory


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of the file at ``path`` (``algorithm`` is any hashlib name)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK_BYTES), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_file(path: str | Path) -> str:
    """SHA-256 of the file at ``path`` as 64 lower-case hex digits."""
    return file_digest(path, "sha256")
