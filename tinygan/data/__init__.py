"""tinygan.data: datasets as NumPy arrays, batching, and toy distributions.

Nothing here needs autograd: images are uint8 NCHW arrays until the
:class:`DataLoader` scales each batch to float32 [-1, 1].

Image datasets
    ``get_dataset(name, data_dir, image_size, download, train)`` -> ``ImageDataset``
    ``ImageDataset`` (images uint8 (N,C,H,W), labels int64 (N,), num_classes, name;
    ``channels`` and ``image_size`` properties)
    ``DATASET_NAMES`` = ("mnist", "fashion-mnist", "cifar10", "folder")
    ``MAX_IMAGE_SIZE``: the largest ``image_size`` get_dataset accepts (256)
    ``dataset_fingerprint(dataset_or_toy_name)`` -> {"count", "shape", "digest"}: for resume checks

Batching
    ``DataLoader(dataset_or_images, labels, batch_size, shuffle, seed, drop_last)``:
    ``len(loader)``, ``loader.batch(epoch, index)``, ``loader.epoch_batches(epoch, start)``
    ``to_float`` (uint8 -> [-1, 1]) and ``to_uint8`` (its inverse)

Files
    ``load_bundled_mnist(path=None)``: the 10,000 packaged digits, SHA-256 checked
    ``load_idx``, ``save_idx``, ``load_mnist_dir``: IDX files (MNIST, Fashion-MNIST)
    ``load_cifar10_dir``: CIFAR-10 binary batches
    ``load_image_folder``: a folder of image files, labels from sub-folders
    ``resize_images``: uint8 NCHW resize (shorter side, centre crop)
    ``download(name, cache_dir, deadline_s)``, ``default_cache_dir()``: verified downloads
    ``cache_mismatches(name, folder)``: cached files whose SHA-256 is wrong
    ``sha256_file``

Toy distributions
    ``TOY_DATASETS``, ``sample_toy(name, n, rng)``, ``toy_modes(name)``,
    ``toy_density(name, x)``, ``toy_dim(name)``
"""
from .bundled import BUNDLED_MNIST_PATH, BUNDLED_MNIST_SHA256, load_bundled_mnist
from .datasets import (
    CIFAR10_CLASSES,
    DATASET_NAMES,
    FASHION_MNIST_CLASSES,
    MAX_IMAGE_SIZE,
    MNIST_CLASSES,
    ImageDataset,
    dataset_fingerprint,
    get_dataset,
)
from .fetch import cache_mismatches, default_cache_dir, download
from .folder import IMAGE_EXTENSIONS, load_image_folder
from .formats import load_cifar10_dir, load_idx, load_mnist_dir, save_idx
from .integrity import sha256_file
from .loader import DataLoader, to_float, to_uint8
from .resize import resize_images
from .toy import TOY_DATASETS, sample_toy, toy_density, toy_dim, toy_modes

__all__ = [
    "BUNDLED_MNIST_PATH",
    "BUNDLED_MNIST_SHA256",
    "CIFAR10_CLASSES",
    "DATASET_NAMES",
    "FASHION_MNIST_CLASSES",
    "IMAGE_EXTENSIONS",
    "MAX_IMAGE_SIZE",
    "MNIST_CLASSES",
    "TOY_DATASETS",
    "DataLoader",
    "ImageDataset",
    "cache_mismatches",
    "dataset_fingerprint",
    "default_cache_dir",
    "download",
    "get_dataset",
    "load_bundled_mnist",
    "load_cifar10_dir",
    "load_idx",
    "load_image_folder",
    "load_mnist_dir",
    "resize_images",
    "sample_toy",
    "save_idx",
    "sha256_file",
    "to_float",
    "to_uint8",
    "toy_density",
    "toy_dim",
    "toy_modes",
]
