"""``ImageDataset`` and ``get_dataset``: one call from a name to uint8 NCHW arrays.

All image datasets end up in the same form, an :class:`ImageDataset` of
uint8 images (N, C, H, W) with H = W and int64 labels, resized once here so
that making a batch later is only indexing and scaling.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bundled import BUNDLED_MNIST_PATH, load_bundled_mnist
from .fetch import default_cache_dir, download as download_dataset
from .folder import load_image_folder
from .formats import load_cifar10_dir, load_mnist_dir
from .resize import resize_images

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
        ValueError: unknown name (the message lists the valid ones).
        FileNotFoundError: the files are not where they were looked for.
    """
    key = name.lower().replace("_", "-")
    if key not in DATASET_NAMES:
        raise ValueError(f"unknown dataset {name!r}; valid names are: {', '.join(DATASET_NAMES)}")
    if key == "folder":
        return _folder_dataset(data_dir, image_size)
    if key == "mnist" and data_dir is None and not download:
        dataset = _bundled_mnist(train)
    else:
        dataset = _downloadable_dataset(key, data_dir, download, train)
    if image_size is not None:
        dataset.images = resize_images(dataset.images, int(image_size))
    return dataset


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
    """MNIST / Fashion-MNIST / CIFAR-10 from the user's folder or the download cache."""
    root = Path(data_dir).expanduser() if data_dir is not None else default_cache_dir()
    reader = _READERS[key]
    errors = []
    for folder in (root, root / key):  # the user's own folder, or the cache layout root/<name>/
        try:
            images, labels = reader(folder, train=train)
            break
        except FileNotFoundError as err:
            errors.append(str(err))
    else:
        if not download:
            raise FileNotFoundError(
                f"{key} files not found ({'; '.join(errors)}); "
                f"pass --download to fetch them, or --data-dir pointing at them"
            )
        folder = download_dataset(key, root)
        images, labels = reader(folder, train=train)
    if images.ndim == 3:  # the MNISTs are (N, 28, 28): add the channel axis
        images = images[:, None]
    return ImageDataset(images, labels, 10, key, _CLASSES[key], source=str(folder))


def _folder_dataset(data_dir: str | Path | None, image_size: int | None) -> ImageDataset:
    """Every image under ``data_dir`` at ``image_size`` (default 64), RGB."""
    if data_dir is None:
        raise ValueError("dataset 'folder' needs data_dir (--data-dir) pointing at a folder of images")
    size = DEFAULT_FOLDER_SIZE if image_size is None else int(image_size)
    images, labels, class_names = load_image_folder(data_dir, size, channels=3)
    num_classes = max(1, len(class_names))
    return ImageDataset(images, labels, num_classes, "folder", tuple(class_names), source=str(data_dir))
