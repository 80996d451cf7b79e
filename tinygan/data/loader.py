"""Mini-batches for training: reproducible, resumable shuffling with no hidden state.

The order of epoch ``e`` is a pure function of ``(seed, e)``::

    perm = np.random.default_rng([seed, e]).permutation(N)
    batch i = perm[i * batch_size : (i + 1) * batch_size]

so a trainer that stopped after batch ``i`` of epoch ``e`` resumes with
``loader.epoch_batches(e, start=i + 1)`` and sees exactly the batches an
uninterrupted run would have seen.  Nothing about the position is stored in
the loader except ``next_epoch``, the epoch that plain ``iter(loader)``
yields next.

Pixels are scaled from uint8 0..255 to float32 [-1, 1] by ``x / 127.5 - 1``
(0 -> -1, 255 -> +1 exactly), the range of the generator's tanh output.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .datasets import ImageDataset


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 0..255 -> float32 [-1, 1] via ``x / 127.5 - 1``; any shape."""
    x = np.asarray(images).astype(np.float32)
    x /= np.float32(127.5)
    x -= np.float32(1.0)
    return x


def to_uint8(x: np.ndarray) -> np.ndarray:
    """float [-1, 1] -> uint8 0..255 (the inverse of :func:`to_float`, rounded and clipped)."""
    return np.clip(np.rint((np.asarray(x, dtype=np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


class DataLoader:
    """Batches ``(x float32 (B, C, H, W) in [-1, 1], y int64 (B,))`` from uint8 images.

    Args:
        dataset_or_images: an :class:`ImageDataset`, or a uint8 array
            (N, C, H, W) (an (N, H, W) array is taken as C = 1).
        labels: int labels (N,) when images are given as an array; ``None``
            means all zeros.  Must be ``None`` with an ImageDataset.
        batch_size: B.
        shuffle: permute each epoch (else the order 0..N-1 every epoch).
        seed: non-negative int; together with the epoch it fixes the order.
        drop_last: leave out the final short batch (so every batch has B).
    """

    def __init__(
        self,
        dataset_or_images: ImageDataset | np.ndarray,
        labels: np.ndarray | None = None,
        batch_size: int = 64,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = True,
    ) -> None:
        self.images, self.labels = _unpack(dataset_or_images, labels)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if seed < 0:
            raise ValueError(f"seed must be a non-negative int (a SeedSequence entropy), got {seed}")
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.next_epoch = 0
        if len(self) == 0:
            raise ValueError(
                f"no batches: {len(self.images)} images and batch_size {batch_size} with drop_last=True"
            )

    @property
    def num_samples(self) -> int:
        """N, the number of images."""
        return len(self.images)

    def __len__(self) -> int:
        """Batches per epoch: N // B with drop_last, else ceil(N / B)."""
        n, b = self.num_samples, self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def permutation(self, epoch: int) -> np.ndarray:
        """Sample order of ``epoch``: int64 (N,)."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        if not self.shuffle:
            return np.arange(self.num_samples)
        return np.random.default_rng([self.seed, int(epoch)]).permutation(self.num_samples)

    def batch(self, epoch: int, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch number ``index`` (0-based) of ``epoch``: (x float32 (B,C,H,W), y int64 (B,))."""
        self._check_index(index)
        return self._gather(self.permutation(epoch), index)

    def epoch_batches(self, epoch: int, start: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Iterate the batches of ``epoch`` from batch index ``start`` to the end.

        ``epoch_batches(e, start=k)`` yields the same batches as the tail of
        ``epoch_batches(e)`` after its first ``k``.
        """
        if start != len(self):  # start == len(self) is an empty tail (resuming at an epoch's end)
            self._check_index(start)
        perm = self.permutation(epoch)  # checked and computed now, once per epoch, not per batch
        return (self._gather(perm, index) for index in range(start, len(self)))

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Iterate epoch ``next_epoch`` and advance it, so repeated loops see new orders."""
        epoch, self.next_epoch = self.next_epoch, self.next_epoch + 1
        return self.epoch_batches(epoch)

    def _check_index(self, index: int) -> None:
        if not 0 <= index < len(self):
            raise IndexError(f"batch index {index} out of range: an epoch has {len(self)} batches")

    def _gather(self, perm: np.ndarray, index: int) -> tuple[np.ndarray, np.ndarray]:
        idx = perm[index * self.batch_size: (index + 1) * self.batch_size]
        return to_float(self.images[idx]), self.labels[idx]


def _unpack(dataset_or_images, labels) -> tuple[np.ndarray, np.ndarray]:
    """Validated (images uint8 (N,C,H,W), labels int64 (N,)) from either input form."""
    if isinstance(dataset_or_images, ImageDataset):
        if labels is not None:
            raise ValueError("pass labels only with an image array; an ImageDataset carries its own")
        return dataset_or_images.images, dataset_or_images.labels
    images = np.asarray(dataset_or_images)
    if images.ndim == 3:
        images = images[:, None]
    if images.dtype != np.uint8 or images.ndim != 4:
        raise TypeError(f"images must be uint8 (N, C, H, W) or (N, H, W), got {images.dtype} {images.shape}")
    if labels is None:
        labels = np.zeros(len(images), dtype=np.int64)
    labels = np.asarray(labels).astype(np.int64)
    if labels.shape != (len(images),):
        raise ValueError(f"labels must have shape ({len(images)},), got {labels.shape}")
    return images, labels
