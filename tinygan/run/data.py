"""Where a run's real batches come from: an image dataset, a toy distribution, or random images (``--dry-run``).

Every batch is a pure function of the run's seed and a *position*
``(epoch, index)``: image datasets are shuffled by a permutation drawn from
``(seed, epoch)`` (:class:`tinygan.data.DataLoader`), toy and dry-run batches
are drawn from a generator seeded with ``(seed, 2, epoch, index)``.  The
position is saved in the checkpoint, so a resumed run sees the same batches.
"""
from __future__ import annotations

import numpy as np

from tinygan.data import TOY_DATASETS, DataLoader, dataset_fingerprint, get_dataset, sample_toy, toy_dim
from tinygan.gan.models import CLASS_MODELS
from tinygan.run.config import ConfigError, TrainConfig

__all__ = ["DataSource"]

CONDITIONAL_MODELS = CLASS_MODELS          # CGAN and ACGAN: trained on labelled data


class DataSource:
    """The real data of a run.

    Attributes: ``kind`` ("images", "toy" or "random"); ``image_shape``
    (C, S, S) or None; ``data_dim`` (toy points' dimension) or None;
    ``num_classes`` (0 for unlabelled data); ``batches_per_epoch`` (None when
    batches are drawn, not read); ``fingerprint`` (what a resume compares).
    """

    def __init__(self, config: TrainConfig):
        c = self.config = config
        self.image_shape = self.data_dim = self.batches_per_epoch = self.loader = None
        if c.dataset in TOY_DATASETS:
            self.kind, self.data_dim, self.num_classes = "toy", toy_dim(c.dataset), 0
            self.fingerprint = {"dataset": c.dataset}
        elif c.dry_run:
            channels = 1 if c.dataset in ("mnist", "fashion-mnist") else 3
            size = c.image_size or (28 if channels == 1 else 32)
            self.kind, self.image_shape, self.num_classes = "random", (channels, size, size), 10
            self.fingerprint = {"dataset": "random", "shape": list(self.image_shape)}
        else:
            ds = get_dataset(c.dataset, data_dir=c.data_dir, image_size=c.image_size, download=c.download)
            self.kind, self.num_classes = "images", int(ds.num_classes)
            self.image_shape = (ds.channels, ds.image_size, ds.image_size)
            if len(ds) < c.batch_size:
                raise ConfigError(f"--batch-size: the dataset {c.dataset!r} has {len(ds)} images, fewer than "
                                  f"one batch of {c.batch_size}")
            self.loader = DataLoader(ds, batch_size=c.batch_size, shuffle=True, seed=c.seed, drop_last=True)
            self.batches_per_epoch = len(self.loader)
            self.fingerprint = {"dataset": c.dataset, **dataset_fingerprint(ds)}
        if c.model in CONDITIONAL_MODELS and self.num_classes < 2:
            raise ConfigError(f"--model {c.model} needs labelled data with at least 2 classes; --dataset "
                              f"{c.dataset!r} has {self.num_classes}")

    def batch(self, position: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        """The real batch at ``position``: float32 (N, C, S, S) in [-1, 1] or (N, d), labels int64 (N,),
        and the next position."""
        epoch, index = position
        if self.loader is not None:
            x, y = self.loader.batch(epoch, index)
            nxt = (epoch, index + 1) if index + 1 < self.batches_per_epoch else (epoch + 1, 0)
            return np.ascontiguousarray(x, dtype=np.float32), np.asarray(y, dtype=np.int64), nxt
        n = self.config.batch_size
        rng = np.random.default_rng([self.config.seed, 2, epoch, index])
        if self.kind == "toy":
            x = sample_toy(self.config.dataset, n, rng)                              # (N, d)
        else:
            x = rng.uniform(-1, 1, (n,) + self.image_shape).astype(np.float32)       # (N, C, S, S)
        y = rng.integers(0, max(self.num_classes, 1), n)
        return x, y.astype(np.int64), (epoch, index + 1)
