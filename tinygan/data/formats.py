"""Readers for the binary formats MNIST, Fashion-MNIST and CIFAR-10 come in.

IDX (MNIST, Fashion-MNIST), as described on LeCun's MNIST page::

    bytes 0-1   0x00 0x00
    byte  2     element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                0x0D float32, 0x0E float64 (all big-endian)
    byte  3     number of dimensions d
    4*d bytes   the size of each dimension, big-endian uint32
    then        the elements, row-major (C order)

So a MNIST image file starts ``00 00 08 03`` (magic 2051) followed by
N, 28, 28; a label file starts ``00 00 08 01`` (magic 2049) followed by N.

CIFAR-10 binary version (``cifar-10-binary.tar.gz``): each batch file is a
run of 3,073-byte records, one per image: 1 label byte (0..9) and then
3,072 pixel bytes, the 1,024 red values of the 32x32 image row by row, then
the 1,024 green, then the 1,024 blue.  That is already NCHW order.
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from tinygan.io import atomic_write_bytes

# IDX element type code -> big-endian NumPy dtype.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

CIFAR10_RECORD_BYTES = 1 + 3 * 32 * 32  # 1 label byte + 3072 pixel bytes = 3073
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR10_TEST_FILES = ("test_batch.bin",)
CIFAR10_SUBDIR = "cifar-10-batches-bin"  # the folder the official archive unpacks to


# ---------------------------------------------------------------- IDX files


def _read_bytes(path: Path) -> bytes:
    """Whole file contents, transparently gunzipped when the name ends in .gz."""
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
        raise ValueError(f"{path}: not a readable gzip file (truncated or corrupt download?): {err}") from err


def load_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (raw, or gzipped when the name ends in ``.gz``).

    Returns:
        The array with the shape stored in the header, in native byte order
        (uint8 for MNIST images (N, 28, 28) and labels (N,)).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: bad magic number, unknown element type, truncated file or
            extra bytes after the data; the message names the path.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(f"{path}: truncated IDX file ({len(data)} bytes, the header alone needs 4)")
    zero, type_code, ndim = int.from_bytes(data[0:2], "big"), data[2], data[3]
    magic = int.from_bytes(data[0:4], "big")
    if zero != 0 or type_code not in _IDX_DTYPES or ndim == 0:
        raise ValueError(
            f"{path}: bad IDX magic number 0x{magic:08X} (expected 0x0000TTDD with type TT in "
            f"{{08,09,0B,0C,0D,0E}} and DD >= 1 dimensions, e.g. 0x00000803 for images)"
        )
    header_bytes = 4 + 4 * ndim
    if len(data) < header_bytes:
        raise ValueError(f"{path}: truncated IDX header ({len(data)} bytes, {ndim} dimensions need {header_bytes})")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[type_code]
    expected = header_bytes + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) < expected:
        raise ValueError(f"{path}: truncated IDX file: shape {shape} of {dtype.name} needs {expected} bytes, found {len(data)}")
    if len(data) > expected:
        raise ValueError(f"{path}: wrong size for IDX file: shape {shape} of {dtype.name} needs {expected} bytes, found {len(data)}")
    array = np.frombuffer(data, dtype=dtype, offset=header_bytes).reshape(shape)
    return array.astype(dtype.newbyteorder("="))  # a native-order, writable copy


def save_idx(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzipped when the name ends in ``.gz``).

    The inverse of :func:`load_idx`; handy for tests and for exporting data.
    Written atomically: an existing file at ``path`` is replaced only by a complete one.
    """
    array = np.asarray(array)
    codes = {dt.newbyteorder("="): code for code, dt in _IDX_DTYPES.items()}
    if array.dtype not in codes or array.ndim == 0:
        raise ValueError(f"IDX cannot store {array.dtype} arrays of {array.ndim} dimensions")
    header = bytes([0, 0, codes[array.dtype], array.ndim])
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    payload = header + np.ascontiguousarray(array, dtype=array.dtype.newbyteorder(">")).tobytes()
    path = Path(path)
    if path.suffix == ".gz":
        payload = gzip.compress(payload)
    atomic_write_bytes(path, payload)


# ------------------------------------------------------ MNIST-style folders


def _find_idx(directory: Path, stem: str) -> Path:
    """Path of ``stem`` or ``stem.gz`` in ``directory`` or its ``raw/`` sub-folder."""
    searched = []
    for folder in (directory, directory / "raw"):  # raw/ is torchvision's layout
        for name in (stem, stem + ".gz"):
            candidate = folder / name
            if candidate.is_file():
                return candidate
            searched.append(str(candidate))
    raise FileNotFoundError(f"no {stem}(.gz) in {directory}; looked for: {', '.join(searched)}")


def load_mnist_dir(directory: str | Path, train: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Read the MNIST-format IDX pair in ``directory`` (MNIST or Fashion-MNIST).

    Looks for ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte``
    (``t10k-*`` when ``train`` is False), raw or ``.gz``, in ``directory``
    or ``directory/raw``.

    Returns:
        ``(images, labels)``: images uint8 (N, 28, 28) (0 = background),
        labels uint8 (N,).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"MNIST data directory not found: {directory}")
    prefix = "train" if train else "t10k"
    images_path = _find_idx(directory, f"{prefix}-images-idx3-ubyte")
    labels_path = _find_idx(directory, f"{prefix}-labels-idx1-ubyte")
    images, labels = load_idx(images_path), load_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{images_path}: expected uint8 images (N, H, W), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise ValueError(f"{labels_path}: expected uint8 labels (N,), got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels")
    return images, labels


# ---------------------------------------------------------------- CIFAR-10


def _cifar_folder(directory: Path) -> Path:
    """``directory`` itself, or its ``cifar-10-batches-bin`` sub-folder if the batches are there."""
    nested = directory / CIFAR10_SUBDIR
    if not (directory / CIFAR10_TEST_FILES[0]).is_file() and nested.is_dir():
        return nested
    return directory


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 binary batch -> (images uint8 (n,3,32,32), labels uint8 (n,))."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % CIFAR10_RECORD_BYTES:
        raise ValueError(
            f"{path}: wrong size for a CIFAR-10 binary batch: {raw.size} bytes is not a positive "
            f"multiple of the {CIFAR10_RECORD_BYTES}-byte record (1 label + 3072 pixels); truncated?"
        )
    records = raw.reshape(-1, CIFAR10_RECORD_BYTES)
    labels = records[:, 0].copy()
    if labels.max() > 9:
        raise ValueError(f"{path}: label {labels.max()} out of range 0..9; not a CIFAR-10 binary batch (CIFAR-100?)")
    images = records[:, 1:].reshape(-1, 3, 32, 32).copy()  # R plane, G plane, B plane: NCHW
    return images, labels


def load_cifar10_dir(directory: str | Path, train: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Read the CIFAR-10 binary batches in ``directory`` (or its ``cifar-10-batches-bin/``).

    ``train`` selects ``data_batch_1.bin`` .. ``data_batch_5.bin`` (50,000
    images), otherwise ``test_batch.bin`` (10,000).

    Returns:
        ``(images, labels)``: images uint8 (N, 3, 32, 32) RGB in NCHW,
        labels uint8 (N,) in 0..9.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"CIFAR-10 data directory not found: {directory}")
    folder = _cifar_folder(directory)
    names = CIFAR10_TRAIN_FILES if train else CIFAR10_TEST_FILES
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"CIFAR-10 binary batches missing in {folder}: {', '.join(missing)} "
            f"(unpack cifar-10-binary.tar.gz there)"
        )
    parts = [_read_cifar_batch(folder / name) for name in names]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return images, labels
