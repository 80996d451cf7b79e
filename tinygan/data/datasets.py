"""``ImageDataset`` and ``get_dataset``: one call from a name to uint8 NCHW arrays.

All image datasets end up in the same form, an :class:`ImageDataset` of
uint8 images (N, C, H, W) with H = W and int64 labels, resized once here so
that making a batch later is only indexing and scaling.

:func:`dataset_fingerprint` summarises a dataset (or a toy distribution's
name) in a few bytes, so that a resumed run can check it sees the same data.
"""
from __future__ import annotations

import hashlib
import json
import operator
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bundled import BUNDLED_MNIST_PATH, load_bundled_mnist
from .fetch import cache_mismatches, default_cache_dir, download as download_dataset
from .folder import _image_files, load_image_folder
from .formats import load_cifar10_dir, load_mnist_dir
from .resize import resize_images
from .toy import TOY_DATASETS, toy_dim

DATASET_NAMES = ("mnist", "fashion-mnist", "cifar10", "folder")

MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_MNIST_CLASSES = (  # label order from Zalando's README
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
CIFAR10_CLASSES = (  # label order from batches.meta.txt in the archive
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)
DEFAULT_FOLDER_SIZE = 64  # DCGAN's image size, used for "folder" when image_size is None
MAX_IMAGE_SIZE = 256  # get_dataset's bound on image_size; the DCGANs want 4 * 2^k or 7 * 2^k within it
FINGERPRINT_SAMPLES = 64  # images hashed by dataset_fingerprint (evenly spaced, first and last included)


@dataclass
class ImageDataset:
    """A labelled set of square images held in memory.

    Attributes:
        images: uint8 (N, C, H, W), H = W, 0..255 (for MNIST 0 = background).
        labels: int64 (N,) in 0..num_classes-1.
        num_classes: number of classes (1 for an unlabelled folder).
        name: the dataset name passed to :func:`get_dataset`.
        class_names: optional name of each class, ``len == num_classes``.
        source: where the pixels came from (a path or "bundled").
    """

    images: np.ndarray
    labels: np.ndarray
    num_classes: int
    name: str
    class_names: tuple[str, ...] = ()
    source: str = ""

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.class_names = tuple(self.class_names)
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[2] != self.images.shape[3]:
            raise ValueError(f"images must be uint8 (N, C, H, W) with H == W, got {self.images.dtype} {self.images.shape}")
        if self.labels.shape != (len(self.images),):
            raise ValueError(f"labels must have shape ({len(self.images)},), got {self.labels.shape}")
        if self.num_classes < 1 or (len(self.labels) and not 0 <= self.labels.min() <= self.labels.max() < self.num_classes):
            raise ValueError(f"labels must lie in 0..{self.num_classes - 1}")
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ValueError(f"{len(self.class_names)} class names for {self.num_classes} classes")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def channels(self) -> int:
        """C: 1 for greyscale, 3 for RGB."""
        return self.images.shape[1]

    @property
    def image_size(self) -> int:
        """H = W in pixels."""
        return self.images.shape[2]


def get_dataset(
    name: str = "mnist",
    data_dir: str | Path | None = None,
    image_size: int | None = None,
    download: bool = False,
    train: bool = True,
) -> ImageDataset:
    """Load a dataset by name as an :class:`ImageDataset`, resized once to ``image_size``.

    Args:
        name: one of ``DATASET_NAMES``:
            ``"mnist"``: the 10,000 bundled digits, unless ``data_dir`` holds
            the MNIST IDX files (then those) or ``download`` is set (then the
            full 60,000/10,000 from the internet);
            ``"fashion-mnist"``: IDX files in ``data_dir`` (or the cache);
            ``"cifar10"``: binary batches in ``data_dir`` (or the cache);
            ``"folder"``: every image under ``data_dir``, labels from
            sub-folder names.
        data_dir: where the user's files are.  For the downloadable sets the
            files may also sit in ``data_dir/<name>/`` (the cache layout), and
            ``download`` saves into ``data_dir`` when it is given.
        image_size: output H = W in pixels (e.g. 32 or 64 for MNIST's 28);
            ``None`` keeps the native size (64 for ``"folder"``).
        download: fetch missing files into ``data_dir`` or ``~/.cache/tinygan``.
        train: the training split (else the test split).

    Raises:
        ValueError: unknown name (the message lists the valid ones);
            ``image_size`` not an integer in 1..``MAX_IMAGE_SIZE`` (checked
            before anything is read), or so large that the resized images
            would fill more than half the machine's memory (checked before
            resizing); a cached download whose SHA-256 is wrong (without
            ``download``; with it, the file is fetched again).
        FileNotFoundError: the files are not where they were looked for.
    """
    key = name.lower().replace("_", "-")
    if key not in DATASET_NAMES:
        raise ValueError(f"unknown dataset {name!r}; valid names are: {', '.join(DATASET_NAMES)}")
    size = None if image_size is None else check_image_size(image_size)
    if key == "folder":
        return _folder_dataset(data_dir, size)
    if key == "mnist" and data_dir is None and not download:
        dataset = _bundled_mnist(train)
    else:
        dataset = _downloadable_dataset(key, data_dir, download, train)
    if size is not None:
        n, c = dataset.images.shape[:2]
        check_memory(key, n, c, size)
        dataset.images = resize_images(dataset.images, size)
    return dataset


def check_image_size(image_size) -> int:
    """``image_size`` as an int in 1..``MAX_IMAGE_SIZE``, else a ValueError naming it and the range."""
    try:
        if isinstance(image_size, bool):
            raise TypeError
        size = operator.index(image_size)
    except TypeError:
        raise ValueError(
            f"image_size (--image-size) must be a whole number of pixels in 1..{MAX_IMAGE_SIZE}, "
            f"got {image_size!r}"
        ) from None
    if not 1 <= size <= MAX_IMAGE_SIZE:
        raise ValueError(
            f"image_size (--image-size) must be in 1..{MAX_IMAGE_SIZE} pixels, got {size} "
            f"(the DCGAN models take 4 * 2^k or 7 * 2^k: 8, 16, 28, 32, 56, 64, 128, ...)"
        )
    return size


def _memory_bytes() -> int | None:
    """Physical memory of this machine in bytes; None where the OS does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(name: str, n: int, channels: int, size: int) -> None:
    """ValueError if ``n`` uint8 images of ``channels`` x ``size`` x ``size`` need over half the machine's memory."""
    need = n * channels * size * size  # uint8: one byte a pixel (batches become float32 only one at a time)
    total = _memory_bytes()
    if total is not None and need > total // 2:
        raise ValueError(
            f"image_size={size} (--image-size) would make dataset {name!r} {n:,} x {channels} x {size} x {size} "
            f"uint8 pixels = {_size_text(need)}, more than half of this machine's memory "
            f"({_size_text(total)}); choose a smaller image_size"
        )


def _size_text(nbytes: int) -> str:
    return f"{nbytes / 2**30:.1f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.0f} MiB"


def dataset_fingerprint(dataset) -> dict:
    """A cheap summary of ``dataset`` that changes when its data does: for resume checks.

    Args:
        dataset: an :class:`ImageDataset` (anything with ``images`` (N, ...)
            and ``labels`` (N,) arrays), or the name of a toy distribution
            (``TOY_DATASETS``: sampled on the fly, so only the name counts).

    Returns:
        ``{"count": N, "shape": [C, H, W], "digest": 64 hex digits}``; for a
        toy name ``{"count": None, "shape": [d], "digest": ...}``.  The digest
        is SHA-256 of the count, shape and dtype, the ``FINGERPRINT_SAMPLES``
        images at evenly spaced indices ``i * (N - 1) // (k - 1)`` (first and
        last included), and all the labels (as little-endian int64), so it is
        the same on every machine and run, and changes when images are added
        or removed, a sampled image changes, or any label does.  Images
        between the samples are not read (that keeps it cheap).
    """
    h = hashlib.sha256(b"tinygan dataset fingerprint v1\n")
    if isinstance(dataset, str):
        if dataset not in TOY_DATASETS:
            raise ValueError(f"dataset_fingerprint: {dataset!r} is not a toy dataset ({', '.join(TOY_DATASETS)}); "
                             f"pass an ImageDataset for image data")
        h.update(f"toy:{dataset}".encode())
        return {"count": None, "shape": [toy_dim(dataset)], "digest": h.hexdigest()}
    if not (hasattr(dataset, "images") and hasattr(dataset, "labels")):
        raise TypeError(f"dataset_fingerprint: expected an ImageDataset or a toy dataset name, "
                        f"got {type(dataset).__name__}")
    images, labels = np.asarray(dataset.images), np.asarray(dataset.labels)
    n = len(images)
    k = min(n, FINGERPRINT_SAMPLES)
    index = [i * (n - 1) // (k - 1) for i in range(k)] if k > 1 else list(range(k))
    header = {"count": n, "shape": list(images.shape[1:]), "dtype": images.dtype.str, "index": index}
    h.update(json.dumps(header, sort_keys=True).encode())
    h.update(np.ascontiguousarray(images[index], dtype=images.dtype.newbyteorder("<")).tobytes())
    h.update(np.ascontiguousarray(labels, dtype="<i8").tobytes())
    return {"count": n, "shape": list(images.shape[1:]), "digest": h.hexdigest()}


def _bundled_mnist(train: bool) -> ImageDataset:
    """The 10,000 packaged digits as (N, 1, 28, 28)."""
    if not train:
        raise ValueError(
            "the bundled MNIST sample is a single set of 10,000 digits with no test split; "
            "pass --data-dir with the t10k-* IDX files or use --download"
        )
    images, labels = load_bundled_mnist()
    return ImageDataset(images[:, None], labels, 10, "mnist", MNIST_CLASSES, source=f"bundled ({BUNDLED_MNIST_PATH.name})")


_READERS = {"mnist": load_mnist_dir, "fashion-mnist": load_mnist_dir, "cifar10": load_cifar10_dir}
_CLASSES = {"mnist": MNIST_CLASSES, "fashion-mnist": FASHION_MNIST_CLASSES, "cifar10": CIFAR10_CLASSES}


def _downloadable_dataset(key: str, data_dir: str | Path | None, download: bool, train: bool) -> ImageDataset:
    """MNIST / Fashion-MNIST / CIFAR-10 from the user's folder or the download cache.

    Files in the cache layout ``root/<name>/`` (where :func:`download` puts
    them) are SHA-256 checked before they are read, like fresh downloads.
    """
    root = Path(data_dir).expanduser() if data_dir is not None else default_cache_dir()
    cache = root / key
    reader = _READERS[key]
    errors = []
    loaded = None
    for folder in (root, cache):  # the user's own folder, or the cache layout root/<name>/
        if folder == cache and (bad := cache_mismatches(key, cache, train)):
            if download:
                break  # download() reports each bad file and fetches it again
            raise ValueError(
                f"{'; '.join(map(str, bad))}: corrupt or modified cached {key} file(s); delete "
                f"{'it' if len(bad) == 1 else 'them'} and pass --download to fetch {key} again, "
                f"or pass --data-dir pointing at good copies"
            )
        try:
            loaded = reader(folder, train=train)
            break
        except FileNotFoundError as err:
            errors.append(str(err))
    if loaded is None:
        if not download:
            raise FileNotFoundError(
                f"{key} files not found ({'; '.join(errors)}); "
                f"pass --download to fetch them, or --data-dir pointing at them"
            )
        folder = download_dataset(key, root)
        loaded = reader(folder, train=train)
    images, labels = loaded
    if images.ndim == 3:  # the MNISTs are (N, 28, 28): add the channel axis
        images = images[:, None]
    return ImageDataset(images, labels, 10, key, _CLASSES[key], source=str(folder))


def _folder_dataset(data_dir: str | Path | None, image_size: int | None) -> ImageDataset:
    """Every image under ``data_dir`` at ``image_size`` (default 64), RGB.

    The file count times the size is checked against the memory before any file is decoded.
    """
    if data_dir is None:
        raise ValueError("dataset 'folder' needs data_dir (--data-dir) pointing at a folder of images")
    size = DEFAULT_FOLDER_SIZE if image_size is None else image_size
    if Path(data_dir).is_dir():
        check_memory("folder", len(_image_files(Path(data_dir))), 3, size)
    images, labels, class_names = load_image_folder(data_dir, size, channels=3)
    num_classes = max(1, len(class_names))
    return ImageDataset(images, labels, num_classes, "folder", tuple(class_names), source=str(data_dir))
