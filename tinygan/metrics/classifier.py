"""A small MNIST digit classifier, trained with tinygan itself, as the feature network of the image metrics.

FID and the Inception Score use Google's Inception-v3 trained on ImageNet.
tinygan does not ship (or download) those weights: its metrics use this
network instead, a two-layer CNN trained for a few epochs on the 10,000
bundled digits.  The numbers it gives are therefore *not* FID or IS values
comparable with papers; they are the same recipes in the feature space of a
digit classifier, good for comparing tinygan runs with each other on
digit-like data (``docs/metrics.md`` says more).

Architecture (input (N, 1, 28, 28) in [-1, 1], as the DataLoader produces)::

    conv1  Conv2d(1, 16, 5, stride 2, pad 2) + ReLU     (N, 16, 14, 14)
    conv2  Conv2d(16, 32, 5, stride 2, pad 2) + ReLU    (N, 32, 7, 7)
    fc1    Linear(1568, 128) + ReLU                     (N, 128)   <- features(x)
    fc2    Linear(128, 10)                              (N, 10)    logits

Training: cross-entropy, Adam (lr 1e-3, then 2e-4 for the last epochs),
batch 64, 5 epochs, data order ``np.random.default_rng([seed, epoch])``;
about 98-99% training accuracy, in well under a minute on 2 CPU cores.
Weights come from the seed alone (the global generator is re-seeded for the
initialisation and restored afterwards), so the cached file can always be
rebuilt.

The cache: ``$TINYGAN_CACHE`` or ``~/.cache/tinygan``, file
``mnist_classifier_v1_seed<seed>.npz``: the ``state_dict`` arrays plus a
``meta.json`` entry (JSON text as uint8) with the training settings and
accuracy.  It is read with ``allow_pickle=False`` and written atomically.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import numpy as np

from tinygan import functional as F
from tinygan import nn, optim
from tinygan import random as _random
from tinygan.autograd import Tensor, no_grad
from tinygan.data import load_bundled_mnist, resize_images, to_float, to_uint8
from tinygan.io import atomic_write

CLASSIFIER_VERSION = 1
NUM_CLASSES = 10
FEATURE_DIM = 128
INPUT_SIZE = 28


class DigitClassifier(nn.Module):
    """conv 1->16->32, linear 1568->128 (the features), linear 128->10 (the logits)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 5, stride=2, padding=2)
        self.conv2 = nn.Conv2d(16, 32, 5, stride=2, padding=2)
        self.fc1 = nn.Linear(32 * 7 * 7, FEATURE_DIM)
        self.fc2 = nn.Linear(FEATURE_DIM, NUM_CLASSES)

    def features(self, x: Tensor) -> Tensor:
        """The penultimate layer: (N, 1, 28, 28) -> (N, 128), non-negative (after ReLU)."""
        h = F.relu(self.conv1(x))                   # (N, 16, 14, 14)
        h = F.relu(self.conv2(h))                   # (N, 32, 7, 7)
        return F.relu(self.fc1(h.flatten(1)))       # (N, 128)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits (N, 10)."""
        return self.fc2(self.features(x))


# --------------------------------------------------------------------------- preprocessing

def to_classifier_input(images) -> np.ndarray:
    """Any batch of images -> float32 (N, 1, 28, 28) in [-1, 1], what the classifier was trained on.

    Accepts uint8 (0..255) or float ([-1, 1], the generator's tanh range)
    arrays shaped (N, C, H, W) with C = 1 or 3, or (N, H, W).  Colour images
    become grey with the ITU-R 601 luma weights (0.299 R + 0.587 G + 0.114 B,
    Pillow's ``convert("L")``); other sizes are resized to 28x28 with Pillow
    (shorter side, centre crop: ``tinygan.data.resize_images``).
    """
    a = np.asarray(images)
    if a.ndim == 3:
        a = a[:, None]                                          # (N, H, W) -> (N, 1, H, W)
    if a.ndim != 4 or a.shape[1] not in (1, 3):
        raise ValueError(f"classifier input: expected images (N, C, H, W) with C in (1, 3), got {a.shape}")
    u8 = a if a.dtype == np.uint8 else to_uint8(a)              # [-1, 1] -> 0..255
    if u8.shape[1] == 3:
        luma = np.array([0.299, 0.587, 0.114]).reshape(1, 3, 1, 1)
        u8 = np.clip(np.rint((u8 * luma).sum(axis=1, keepdims=True)), 0, 255).astype(np.uint8)
    if u8.shape[2:] != (INPUT_SIZE, INPUT_SIZE):
        u8 = resize_images(u8, INPUT_SIZE)
    return to_float(u8)


def classify(model: DigitClassifier, images, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Features and class probabilities of ``images``, in batches, without a graph.

    Returns ``(features float64 (N, 128), probs float64 (N, 10))``.
    """
    x = to_classifier_input(images)
    model.eval()
    feats, probs = [], []
    with no_grad():
        for start in range(0, len(x), batch_size):
            h = model.features(Tensor(x[start:start + batch_size]))       # (B, 128)
            logits = model.fc2(h)                                           # (B, 10)
            feats.append(h.numpy().astype(np.float64))
            probs.append(np.exp(F.log_softmax(logits, dim=1).numpy().astype(np.float64)))
    if not feats:
        return np.zeros((0, FEATURE_DIM)), np.zeros((0, NUM_CLASSES))
    return np.concatenate(feats), np.concatenate(probs)


# --------------------------------------------------------------------------- training

def train_classifier(images=None, labels=None, epochs: int = 5, batch_size: int = 64, lr: float = 1e-3,
                     seed: int = 0, log: Callable[[str], None] | None = None) -> tuple[DigitClassifier, dict]:
    """Train a :class:`DigitClassifier` with tinygan (cross-entropy, Adam); returns ``(model, info)``.

    Args:
        images, labels: the training set (uint8 (N, 28, 28) or anything
            :func:`to_classifier_input` takes, and ints (N,)); ``None`` means
            the 10,000 bundled digits.
        epochs: passes over the data; the learning rate drops to ``lr / 5``
            for the last ``epochs // 3`` of them.
        seed: fixes the initial weights and the data order.
        log: called with one line per epoch (``print`` to watch it).

    Returns:
        The trained model (eval mode) and ``info``: settings, ``train_accuracy``
        and the per-epoch mean loss.
    """
    if images is None:
        images, labels = load_bundled_mnist()
    x = to_classifier_input(images)                                 # (N, 1, 28, 28) float32
    y = np.asarray(labels).astype(np.int64)                        # (N,)
    if len(x) != len(y) or len(x) < batch_size:
        raise ValueError(f"train_classifier: {len(x)} images, {len(y)} labels, batch size {batch_size}")
    model = _seeded_model(seed)
    opt = optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = len(x) // batch_size
    losses = []
    for epoch in range(epochs):
        opt.param_groups[0]["lr"] = lr if epoch < epochs - epochs // 3 else lr / 5
        order = np.random.default_rng([seed, epoch]).permutation(len(x))
        total = 0.0
        for i in range(steps_per_epoch):
            idx = order[i * batch_size:(i + 1) * batch_size]
            loss = F.cross_entropy(model(Tensor(x[idx])), y[idx])   # -mean log softmax(logits)[y]
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        losses.append(total / steps_per_epoch)
        if log is not None:
            log(f"classifier epoch {epoch + 1}/{epochs}: mean loss {losses[-1]:.4f}")
    model.eval()
    _, probs = classify(model, x)
    info = {"version": CLASSIFIER_VERSION, "seed": seed, "epochs": epochs, "batch_size": batch_size, "lr": lr,
            "num_train": len(x), "train_accuracy": float((probs.argmax(1) == y).mean()),
            "epoch_losses": losses}
    return model, info


def _seeded_model(seed: int) -> DigitClassifier:
    """A fresh model whose initial weights depend on ``seed`` only; the global generator is left as it was."""
    saved = _random.get_rng_state()
    try:
        _random.manual_seed(seed)
        return DigitClassifier()
    finally:
        _random.set_rng_state(saved)


# --------------------------------------------------------------------------- the cache

def cache_dir() -> Path:
    """``$TINYGAN_CACHE`` if set, else ``~/.cache/tinygan``."""
    env = os.environ.get("TINYGAN_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tinygan"


def classifier_path(seed: int = 0, directory: str | Path | None = None) -> Path:
    return Path(directory or cache_dir()) / f"mnist_classifier_v{CLASSIFIER_VERSION}_seed{seed}.npz"


def save_classifier(model: DigitClassifier, info: dict, path) -> Path:
    """Write the weights and ``info`` as one npz (no pickle), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = dict(model.state_dict())
    arrays["meta.json"] = np.frombuffer(json.dumps(info).encode("utf-8"), dtype=np.uint8)
    with atomic_write(path) as f:
        np.savez(f, **arrays)
    return path


def load_classifier_file(path) -> tuple[DigitClassifier, dict]:
    """Read a file written by :func:`save_classifier`."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    info = json.loads(arrays.pop("meta.json").tobytes().decode("utf-8"))
    model = _seeded_model(0)                       # weights overwritten below; the global RNG is untouched
    model.load_state_dict(arrays)
    model.eval()
    return model, info


def load_classifier(seed: int = 0, directory: str | Path | None = None, train: bool = True,
                    log: Callable[[str], None] | None = None) -> tuple[DigitClassifier, dict]:
    """The cached classifier for ``seed``, training and caching it first if needed.

    Returns ``(model, info)``.  ``train=False`` raises FileNotFoundError instead
    of training.  A cache file that cannot be read is rebuilt.
    """
    path = classifier_path(seed, directory)
    if path.is_file():
        try:
            return load_classifier_file(path)
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            if log is not None:
                log(f"classifier cache {path} unreadable ({e}); retraining")
    if not train:
        raise FileNotFoundError(f"no cached classifier at {path}")
    if log is not None:
        log(f"training the MNIST feature classifier (seed {seed}); cached at {path}")
    model, info = train_classifier(seed=seed, log=log)
    save_classifier(model, info, path)
    return model, info
