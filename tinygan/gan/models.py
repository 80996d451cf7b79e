"""The GAN family's networks: fully connected, conditional (CGAN) and InfoGAN, plus ``build_gan``.

The contract every model here keeps (the trainer, ``sampling.generate`` and
the CLI rely on it):

* A generator has ``nz`` (the noise dimension) and
  ``sample_inputs(n, rng) -> dict`` drawing its inputs on the host from the
  NumPy Generator ``rng``:

  ==============  ======================================================================
  unconditional   ``{"z": float32 (n, nz)}``,                  z ~ N(0, I)
  conditional     ``{"z", "labels": int64 (n,)}``,              labels ~ U{0, ..., K-1}
  InfoGAN         ``{"z", "c_cat": int64 (n,), "c_cont": float32 (n, n_cont)}``,
                  c_cat ~ U{0, ..., k-1},  c_cont ~ U[-1, 1]
  ==============  ======================================================================

  and ``forward`` takes exactly those keys as keyword arguments:
  ``G(**inputs)`` (float inputs as Tensors; integer ones as Tensors or arrays).
  Conditional generators have ``conditional = True`` and ``num_classes``.
* A discriminator maps ``forward(x, labels=None)`` to logits (N,) (raw
  outputs: the losses apply any sigmoid).  InfoGAN's adds ``return_q=True``
  -> ``(logits, {"cat_logits": (N, k), "cont_mean": (N, n_cont)})`` and
  ``q_parameters()``: the Q head shares D's body but is trained with G (on
  L_I, :func:`info_loss`), so the trainer puts those parameters in G's
  optimizer and leaves them out of D's.  ACGAN's (``auxiliary_classifier = True``)
  takes no label and adds ``return_aux=True`` -> ``(logits, class_logits (N, K))``:
  the class head is D's, trained on both players' class log-likelihood.

Conditioning (Mirza & Osindero 2014): the label y enters both networks as a
one-hot vector (or a learned embedding, for the MLPs): G(concat(z, y)) and
D(concat(x, y)); for images D gets y as K constant feature maps stacked on
the image's channels.  InfoGAN (Chen et al. 2016) feeds G concat(z, one_hot(c_cat),
c_cont) with no label at all, and asks Q to recover the codes from G's output.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from tinygan import functional as F
from tinygan import nn
from tinygan.autograd import Function, Tensor
from tinygan.backend import get_array_module, to_device
from tinygan.creation import cat
from tinygan.gan.dcgan import DCGANDiscriminator, DCGANGenerator, stages, weights_init
from tinygan.gan.losses import GANLoss, info_loss
from tinygan.gan.mbstd import MinibatchStdDev
from tinygan.gan.pack import Packed, check_pack
from tinygan.gan.recipes import recipe_for

__all__ = [
    "MLPGenerator", "MLPDiscriminator", "Maxout",
    "ConditionalMLPGenerator", "ConditionalMLPDiscriminator",
    "ConditionalDCGANGenerator", "ConditionalDCGANDiscriminator",
    "InfoGANGenerator", "InfoGANDiscriminator", "InfoGANMLPGenerator", "InfoGANMLPDiscriminator",
    "ACGANDiscriminator", "ACGANMLPDiscriminator", "CLASS_MODELS",
    "MODELS", "build_gan", "spectral_normalize", "sample_grid_inputs", "info_loss", "check_class_labels",
]


# ---------------------------------------------------------------------------
# Small helpers: drawing inputs, flattening z, encoding labels
# ---------------------------------------------------------------------------

def _draw_z(rng: np.random.Generator, n: int, nz: int) -> np.ndarray:
    return rng.standard_normal((n, nz)).astype(np.float32)                # z ~ N(0, I): (n, nz)


def _draw_classes(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    return rng.integers(0, k, size=n, dtype=np.int64)                      # uniform over {0..k-1}: (n,)


def _draw_codes(rng: np.random.Generator, n: int, n_cont: int) -> np.ndarray:
    return rng.uniform(-1.0, 1.0, size=(n, n_cont)).astype(np.float32)     # c ~ U[-1, 1]: (n, n_cont)


def _flat_z(z: Tensor, nz: int, who: str) -> Tensor:
    """z (N, nz) or (N, nz, 1, 1) -> (N, nz), with a clear error for anything else."""
    if z.ndim == 4 and z.shape[2:] == (1, 1):
        z = z.reshape(z.shape[0], z.shape[1])
    if z.ndim != 2 or z.shape[1] != nz:
        raise ValueError(f"{who}: expected z of shape (N, {nz}) or (N, {nz}, 1, 1), got {z.shape}")
    return z


def _class_indices(labels, n: int, k: int, like: Tensor, who: str, what: str = "labels"):
    """Integer class indices (n,) on ``like``'s device, and a NaN "poison" (n, 1) Tensor or None.

    Host labels (NumPy arrays, lists) are checked for shape, dtype and range
    (:func:`check_class_labels`) before they move: a bad one is a ``ValueError``.
    Labels already on the GPU are checked for shape and dtype; checking their
    range would stop the device for a host sync on every forward, and CuPy
    wraps an out-of-range index instead of raising (label -1 would silently
    train class k-1), so :func:`_device_class_indices` folds the range check
    into the output: a bad label becomes 0 and its poison row NaN, which the
    caller adds (:func:`_poisoned`), so its loss is NaN and the training loop
    stops at its next log flush (``NonFiniteError``, no checkpoint written).
    """
    if labels is None:
        raise ValueError(f"{who}: pass {what}, integers of shape ({n},) in [0, {k})")
    arr = labels._data if isinstance(labels, Tensor) else labels
    if get_array_module(arr) is not np:
        return _device_class_indices(arr, n, k, like, who, what)
    check_class_labels(arr, n, k, who, what)
    return to_device(np.asarray(arr), like.device), None


def _one_hot(labels, k: int, like: Tensor, who: str, what: str = "labels") -> Tensor:
    """A constant one-hot matrix (N, k) in ``like``'s dtype and device (NaN rows for bad GPU labels)."""
    idx, poison = _class_indices(labels, like.shape[0], k, like, who, what)
    return _poisoned(F.one_hot(idx, k, dtype=like.dtype, like=like), poison)  # (N,) -> (N, k)


def _mlp_layers(in_features: int, hidden: Sequence[int], act, norm: str, norm_first: bool) -> list:
    """Linear -> [norm] -> act for each hidden width; ``norm_first=False`` skips the norm on layer 1."""
    layers, prev = [], in_features
    for i, h in enumerate(hidden):
        layers.append(nn.Linear(prev, h))                                   # (N, prev) -> (N, h)
        if norm == "batch" and (i > 0 or norm_first):
            layers.append(nn.BatchNorm1d(h))
        elif norm == "layer" and (i > 0 or norm_first):
            layers.append(nn.LayerNorm(h))
        layers.append(act())
        prev = h
    return layers


def _check_norm(norm: str, who: str) -> None:
    if norm not in ("batch", "layer", "none"):
        raise ValueError(f"{who}: norm must be 'batch', 'layer' or 'none', got {norm!r}")


def _shape(shape, who: str) -> tuple[int, ...]:
    shape = (int(shape),) if np.isscalar(shape) else tuple(int(s) for s in shape)
    if not shape or min(shape) < 1:
        raise ValueError(f"{who}: expected a non-empty shape of positive sizes, got {shape}")
    return shape


# ---------------------------------------------------------------------------
# The original, fully connected GAN (Goodfellow et al. 2014)
# ---------------------------------------------------------------------------

class MLPGenerator(nn.Module):
    """z (N, nz) -> x (N, *out_shape) through fully connected layers.

        h_0 = z,   h_i = relu(W_i h_{i-1} + b_i),   x = out(W h_L + b)

    ``out_shape=(2,)`` for 2-D toy points (``output="auto"`` picks a linear
    output there), ``out_shape=(1, 28, 28)`` for small images (a tanh output,
    pixels in [-1, 1]).  ``batch_norm`` adds BatchNorm1d after each hidden
    linear layer.  ``in_features`` (default nz) is the width of the first
    layer's input, widened by the conditional and InfoGAN subclasses.
    """

    conditional = False

    def __init__(self, nz: int = 100, out_shape=(1, 28, 28), hidden: Sequence[int] = (256, 256),
                 output: str = "auto", batch_norm: bool = False, in_features: int | None = None):
        super().__init__()
        who = type(self).__name__
        self.nz, self.out_shape, self.hidden = int(nz), _shape(out_shape, who), tuple(int(h) for h in hidden)
        self.in_features = self.nz if in_features is None else int(in_features)
        if output == "auto":
            output = "tanh" if len(self.out_shape) > 1 else "linear"
        if output not in ("tanh", "linear"):
            raise ValueError(f"{who}: output must be 'auto', 'tanh' or 'linear', got {output!r}")
        self.output = output
        layers = _mlp_layers(self.in_features, self.hidden, nn.ReLU, "batch" if batch_norm else "none",
                             norm_first=True)
        prev = self.hidden[-1] if self.hidden else self.in_features
        layers.append(nn.Linear(prev, math.prod(self.out_shape)))          # (N, h_L) -> (N, prod(out_shape))
        if output == "tanh":
            layers.append(nn.Tanh())                                        # squashed to [-1, 1]
        self.main = nn.Sequential(*layers)

    def sample_inputs(self, n: int, rng: np.random.Generator) -> dict:
        """``{"z": float32 (n, nz)}``, z ~ N(0, I), drawn on the host."""
        return {"z": _draw_z(rng, n, self.nz)}

    def _generate(self, h: Tensor) -> Tensor:
        """(N, in_features) -> (N, *out_shape)."""
        return self.main(h).reshape((h.shape[0],) + self.out_shape)

    def forward(self, z: Tensor) -> Tensor:
        return self._generate(_flat_z(z, self.nz, type(self).__name__))


class Maxout(nn.Module):
    """max over groups of ``pieces`` consecutive features: (N, h * pieces) -> (N, h) (Goodfellow et al. 2013).

    Unit u is the max of features u * pieces .. u * pieces + pieces - 1 of the
    linear layer before it, the layout of Blocks' ``LinearMaxout`` that the
    VEEGAN/PacGAN toy discriminators use.
    """

    def __init__(self, pieces: int):
        super().__init__()
        if int(pieces) < 1:
            raise ValueError(f"Maxout: pieces must be >= 1, got {pieces}")
        self.pieces = int(pieces)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 2 or x.shape[1] % self.pieces:
            raise ValueError(f"Maxout: expected (N, h * {self.pieces}) inputs, got {x.shape}")
        return _MaxoutFunction(self.pieces)(x)                                   # (N, h k) -> (N, h)

    def extra_repr(self) -> str:
        return f"pieces={self.pieces}"


class _MaxoutFunction(Function):
    """y[n, u] = max_j x[n, u k + j]; the gradient goes to the maximal piece (the first one, on a tie).

    The same values as ``x.reshape(N, h, k).amax(2)``, but as k - 1
    element-wise maxima of strided slices instead of a reduction over a
    length-k axis, which NumPy runs an order of magnitude slower.  The
    backward is ``g`` times a constant one-hot mask, so it is itself
    differentiable (the gradient penalty's double backward).
    """

    saved_inputs = (0,)   # backward compares x with y

    def __init__(self, pieces: int):
        self.pieces = pieces

    def forward(self, x):
        xp = get_array_module(x)
        v = x.reshape(x.shape[0], -1, self.pieces)                               # (N, h, k)
        y = v[:, :, 0].copy()
        for j in range(1, self.pieces):
            xp.maximum(y, v[:, :, j], out=y)
        self.y = y
        return y                                                                  # (N, h)

    def backward(self, g):
        x = self.inputs[0]._data
        xp = get_array_module(x)
        n, h = self.y.shape
        win = x.reshape(n, h, self.pieces) == self.y[:, :, None]                 # (N, h, k) the maximal pieces
        if xp is not np or np.count_nonzero(win) != n * h:                       # a tie: keep the first only
            win &= xp.cumsum(win, axis=2) == 1
        return (g.reshape(n, h, 1) * Tensor(win.astype(g.dtype))).reshape(n, h * self.pieces)


def _maxout_layers(in_features: int, hidden: Sequence[int], pieces: int, norm: str) -> list:
    """Linear(prev, h * pieces) -> [norm, not on layer 1] -> Maxout(pieces) for each hidden width h."""
    layers, prev = [], in_features
    for i, h in enumerate(hidden):
        layers.append(nn.Linear(prev, h * pieces))                         # (N, prev) -> (N, h k)
        if norm == "batch" and i > 0:
            layers.append(nn.BatchNorm1d(h * pieces))
        elif norm == "layer" and i > 0:
            layers.append(nn.LayerNorm(h * pieces))
        layers.append(Maxout(pieces))                                       # (N, h k) -> (N, h)
        prev = h
    return layers


class MLPDiscriminator(nn.Module):
    """x (N, *in_shape) -> logits (N,) through fully connected layers with LeakyReLU(0.2) or maxout units.

        h_0 = flatten(x),   h_i = lrelu(W_i h_{i-1} + b_i),   l = w^T h_L + b
        (maxout:            h_i[u] = max_j (W_i h_{i-1} + b_i)[u k + j],  j < k = maxout_pieces)

    ``norm`` ("none" by default, as the GAN paper's MLP; "batch" or "layer")
    normalises every hidden layer but the first.  ``activation="maxout"``
    with ``maxout_pieces=5`` and ``hidden=(200, 200, 200)`` is the toy
    discriminator of VEEGAN and PacGAN (PacGAN's released code,
    ``synthetic_data_experiments/2DGrid_GAN&PacGAN/pacgan_task.py``).
    ``in_features`` (default prod(in_shape)) is widened by the conditional subclass.
    """

    conditional = False

    def __init__(self, in_shape=(1, 28, 28), hidden: Sequence[int] = (256, 256), norm: str = "none",
                 in_features: int | None = None, activation: str = "lrelu", maxout_pieces: int = 5,
                 mbstd: bool = False):
        super().__init__()
        who = type(self).__name__
        _check_norm(norm, who)
        if activation not in ("lrelu", "maxout"):
            raise ValueError(f"{who}: activation must be 'lrelu' or 'maxout', got {activation!r}")
        self.in_shape, self.hidden, self.norm = _shape(in_shape, who), tuple(int(h) for h in hidden), norm
        self.activation = activation
        self.in_features = math.prod(self.in_shape) if in_features is None else int(in_features)
        if activation == "maxout":
            layers = _maxout_layers(self.in_features, self.hidden, int(maxout_pieces), norm)
        else:
            layers = _mlp_layers(self.in_features, self.hidden, lambda: nn.LeakyReLU(0.2), norm, norm_first=False)
        prev = self.hidden[-1] if self.hidden else self.in_features
        if mbstd:   # Karras et al. 2018: the group's stddev as one more feature before the last layer
            layers.append(MinibatchStdDev())                                # (N, h_L) -> (N, h_L + 1)
            prev += 1
        layers.append(nn.Linear(prev, 1))                                   # (N, h_L) -> (N, 1): one logit
        self.main = nn.Sequential(*layers)
        self.features_dim = prev

    def _flatten_checked(self, x: Tensor) -> Tensor:
        """x (N, *in_shape) -> (N, prod(in_shape))."""
        if x.shape[1:] != self.in_shape:
            raise ValueError(f"{type(self).__name__}: expected inputs of shape (N, "
                             f"{', '.join(map(str, self.in_shape))}), got {x.shape}")
        return x.reshape(x.shape[0], -1)

    def _body(self, h: Tensor) -> Tensor:
        """Every layer but the logit layer: (N, in_features) -> (N, h_L)."""
        for layer in list(self.main)[:-1]:
            h = layer(h)
        return h

    def _logits(self, features: Tensor) -> Tensor:
        return self.main[-1](features).reshape(features.shape[0])           # (N, 1) -> (N,)

    def forward(self, x: Tensor, labels=None) -> Tensor:
        if labels is not None:
            raise ValueError(f"{type(self).__name__}: this discriminator is unconditional; got labels")
        return self._logits(self._body(self._flatten_checked(x)))


# ---------------------------------------------------------------------------
# Conditional GAN (Mirza & Osindero 2014)
# ---------------------------------------------------------------------------

class _LabelInput:
    """Mixin: how a conditional network turns labels (N,) into a vector y (N, label_dim).

    One-hot by default (``label_embedding=None``); with an int E, a learned
    embedding table (K, E) looked up by label.  Needs ``num_classes`` and,
    with an embedding, an ``embed`` module.
    """

    conditional = True

    def _label_dim(self, num_classes: int, label_embedding: int | None) -> int:
        if num_classes < 2:
            raise ValueError(f"{type(self).__name__}: a conditional model needs num_classes >= 2, got "
                             f"{num_classes} (is the data set labelled?)")
        return num_classes if label_embedding is None else int(label_embedding)

    def _label_vector(self, labels, like: Tensor) -> Tensor:
        """labels (N,) -> y (N, label_dim): one-hot, or rows of the embedding table."""
        who = type(self).__name__
        if getattr(self, "embed", None) is None:
            return _one_hot(labels, self.num_classes, like, who)                    # (N, K)
        idx, poison = _class_indices(labels, like.shape[0], self.num_classes, like, who)
        return _poisoned(self.embed(idx), poison)                                   # (N, E)


class ConditionalMLPGenerator(_LabelInput, MLPGenerator):
    """G(z, y): concat(z, y) (N, nz + label_dim) -> x (N, *out_shape), y the label's one-hot or embedding."""

    def __init__(self, nz: int = 100, num_classes: int = 10, out_shape=(1, 28, 28),
                 hidden: Sequence[int] = (256, 256), output: str = "auto", batch_norm: bool = False,
                 label_embedding: int | None = None):
        label_dim = self._label_dim(num_classes, label_embedding)
        super().__init__(nz, out_shape, hidden, output, batch_norm, in_features=nz + label_dim)
        self.num_classes = int(num_classes)
        self.embed = None if label_embedding is None else nn.Embedding(num_classes, label_dim)

    def sample_inputs(self, n: int, rng: np.random.Generator) -> dict:
        """``{"z": float32 (n, nz), "labels": int64 (n,)}`` with labels uniform over the classes."""
        return {"z": _draw_z(rng, n, self.nz), "labels": _draw_classes(rng, n, self.num_classes)}

    def forward(self, z: Tensor, labels=None) -> Tensor:
        z = _flat_z(z, self.nz, type(self).__name__)                                # (N, nz)
        h = cat([z, self._label_vector(labels, z)], dim=1)                          # (N, nz) -> (N, nz + label_dim)
        return self._generate(h)


class ConditionalMLPDiscriminator(_LabelInput, MLPDiscriminator):
    """D(x, y): concat(flatten(x), y) (N, prod(in_shape) + label_dim) -> logits (N,)."""

    def __init__(self, in_shape=(1, 28, 28), num_classes: int = 10, hidden: Sequence[int] = (256, 256),
                 norm: str = "none", label_embedding: int | None = None, mbstd: bool = False):
        label_dim = self._label_dim(num_classes, label_embedding)
        in_shape = _shape(in_shape, type(self).__name__)
        super().__init__(in_shape, hidden, norm, in_features=math.prod(in_shape) + label_dim, mbstd=mbstd)
        self.num_classes = int(num_classes)
        self.embed = None if label_embedding is None else nn.Embedding(num_classes, label_dim)

    def forward(self, x: Tensor, labels=None) -> Tensor:
        h = self._flatten_checked(x)                                                # (N, D)
        h = cat([h, self._label_vector(labels, h)], dim=1)                          # (N, D) -> (N, D + label_dim)
        return self._logits(self._body(h))


class ConditionalDCGANGenerator(_LabelInput, DCGANGenerator):
    """G(z, y) with DCGAN's layers: concat(z, one_hot(y)) (N, nz + K, 1, 1) -> image (N, nc, S, S)."""

    def __init__(self, nz: int = 100, num_classes: int = 10, ngf: int = 64, nc: int = 3, image_size: int = 64):
        k = self._label_dim(num_classes, None)
        super().__init__(nz=nz, ngf=ngf, nc=nc, image_size=image_size, in_features=nz + k)
        self.num_classes = int(num_classes)
        self.embed = None

    def sample_inputs(self, n: int, rng: np.random.Generator) -> dict:
        """``{"z": float32 (n, nz), "labels": int64 (n,)}`` with labels uniform over the classes."""
        return {"z": _draw_z(rng, n, self.nz), "labels": _draw_classes(rng, n, self.num_classes)}

    def forward(self, z: Tensor, labels=None) -> Tensor:
        z = _flat_z(z, self.nz, type(self).__name__)                                # (N, nz)
        h = cat([z, self._label_vector(labels, z)], dim=1)                          # (N, nz) -> (N, nz + K)
        return super().forward(h)                                                   # -> (N, nc, S, S)


class ConditionalDCGANDiscriminator(_LabelInput, DCGANDiscriminator):
    """D(x, y) with DCGAN's layers: y as K constant feature maps on the image's channels.

        maps[n, j, :, :] = one_hot(y_n)[j]:  (N, K, S, S)
        l = DCGAN-D(concat(x, maps))          (N, nc + K, S, S) -> (N,)
    """

    def __init__(self, nc: int = 3, num_classes: int = 10, ndf: int = 64, image_size: int = 64,
                 norm: str = "batch", mbstd: bool = False):
        k = self._label_dim(num_classes, None)
        super().__init__(nc=nc, ndf=ndf, image_size=image_size, norm=norm, in_channels=nc + k, mbstd=mbstd)
        self.num_classes = int(num_classes)
        self.embed = None

    def forward(self, x: Tensor, labels=None) -> Tensor:
        self._check_images(x, self.nc)                                              # before the label maps
        s = self.image_size
        y = self._label_vector(labels, x)                                           # (N, K)
        xp = get_array_module(y._data)
        maps = Tensor(xp.ascontiguousarray(                                         # (N, K) -> (N, K, S, S)
            xp.broadcast_to(y._data[:, :, None, None], y.shape + (s, s))))
        h = cat([x, maps], dim=1)                                                   # (N, nc + K, S, S)
        return self.main(h).reshape(x.shape[0])                                     # (N, 1, 1, 1) -> (N,)


# ---------------------------------------------------------------------------
# InfoGAN (Chen et al. 2016)
# ---------------------------------------------------------------------------

class _InfoCodes:
    """Mixin for InfoGAN generators: the codes c = (c_cat, c_cont) beside the noise z.

    Needs ``nz``, ``num_categories`` (k) and ``num_continuous`` (n_cont).
    """

    conditional = False

    def _check_codes(self, num_categories: int, num_continuous: int) -> None:
        if num_categories < 1 or num_continuous < 1:
            raise ValueError(f"{type(self).__name__}: needs num_categories >= 1 and num_continuous >= 1, "
                             f"got {num_categories} and {num_continuous}")

    def sample_inputs(self, n: int, rng: np.random.Generator) -> dict:
        """``{"z": float32 (n, nz), "c_cat": int64 (n,), "c_cont": float32 (n, n_cont)}``.

        c_cat ~ Cat(k, p = 1/k), c_cont ~ U[-1, 1] (the paper's MNIST setting).
        """
        return {"z": _draw_z(rng, n, self.nz),
                "c_cat": _draw_classes(rng, n, self.num_categories),
                "c_cont": _draw_codes(rng, n, self.num_continuous)}

    def _latent(self, z: Tensor, labels, c_cat, c_cont) -> Tensor:
        """concat(z, one_hot(c_cat), c_cont): (N, nz + k + n_cont)."""
        who = type(self).__name__
        if labels is not None:
            raise ValueError(f"{who}: InfoGAN's generator takes codes c_cat/c_cont, not labels")
        z = _flat_z(z, self.nz, who)                                                # (N, nz)
        onehot = _one_hot(c_cat, self.num_categories, z, who, "c_cat")              # (N, k)
        if c_cont is None:
            raise ValueError(f"{who}: pass c_cont, floats of shape (N, {self.num_continuous})")
        c_cont = c_cont if isinstance(c_cont, Tensor) else Tensor(to_device(np.asarray(c_cont), z.device))
        if c_cont.shape != (z.shape[0], self.num_continuous):
            raise ValueError(f"{who}: c_cont must have shape ({z.shape[0]}, {self.num_continuous}), "
                             f"got {c_cont.shape}")
        return cat([z, onehot, c_cont.to(dtype=z.dtype)], dim=1)                    # (N, nz + k + n_cont)


class _QHead:
    """Mixin for InfoGAN discriminators: the Q head's parameters and the split of its output."""

    def q_parameters(self) -> list:
        """Q's own parameters (the head, not the shared body): trained with G on L_I."""
        return list(self.q.parameters())

    def _q_dict(self, out: Tensor) -> dict:
        k = self.num_categories
        return {"cat_logits": out[:, :k],                                           # (N, k): logits of Q(c_cat | x)
                "cont_mean": out[:, k:]}                                            # (N, n_cont): means of Q(c_cont | x)


class InfoGANGenerator(_InfoCodes, DCGANGenerator):
    """G(z, c) with DCGAN's layers: concat(z, one_hot(c_cat), c_cont) (N, nz + k + n_cont) -> image.

    The paper's MNIST model uses nz = 62, one 10-way categorical and two
    continuous codes.
    """

    def __init__(self, nz: int = 62, num_categories: int = 10, num_continuous: int = 2, ngf: int = 64,
                 nc: int = 1, image_size: int = 28):
        self._check_codes(num_categories, num_continuous)
        super().__init__(nz=nz, ngf=ngf, nc=nc, image_size=image_size,
                         in_features=nz + num_categories + num_continuous)
        self.num_categories, self.num_continuous = int(num_categories), int(num_continuous)

    def forward(self, z: Tensor, labels=None, c_cat=None, c_cont=None) -> Tensor:
        return super().forward(self._latent(z, labels, c_cat, c_cont))              # -> (N, nc, S, S)


class InfoGANDiscriminator(_QHead, DCGANDiscriminator):
    """DCGAN's discriminator body with two heads: D's logit and Q(c | x).

        features = body(x)                                  (N, C_f, b, b)
        l        = conv_b(features)                         (N,)            the DCGAN logit layer
        q        = Linear(lrelu(norm(conv_b'(features))))   (N, k + n_cont) -> cat_logits, cont_mean

    as the paper's Q ("FC.128-BN-lReLU-FC" after D's convolutions).
    ``forward(x, return_q=True)`` returns ``(l, {"cat_logits", "cont_mean"})``.
    """

    def __init__(self, nc: int = 1, ndf: int = 64, image_size: int = 28, num_categories: int = 10,
                 num_continuous: int = 2, norm: str = "batch", q_hidden: int = 128, mbstd: bool = False):
        super().__init__(nc=nc, ndf=ndf, image_size=image_size, norm=norm, mbstd=mbstd)
        base, _ = stages(image_size, type(self).__name__)
        self.num_categories, self.num_continuous = int(num_categories), int(num_continuous)
        self.q = nn.Sequential(
            nn.Conv2d(self.features_channels, q_hidden, base, 1, 0, bias=False),   # (N, C_f, b, b) -> (N, q_hidden, 1, 1)
            nn.BatchNorm2d(q_hidden) if norm == "batch" else nn.Identity(),
            nn.LeakyReLU(0.2),
            nn.Flatten(),                                                           # -> (N, q_hidden)
            nn.Linear(q_hidden, num_categories + num_continuous))                   # -> (N, k + n_cont)
        for m in self.q.modules():
            weights_init(m)

    def forward(self, x: Tensor, labels=None, return_q: bool = False):
        if labels is not None:
            raise ValueError(f"{type(self).__name__}: InfoGAN's discriminator is unconditional; got labels")
        self._check_images(x, self.nc)
        h = self._features(x)                                                       # the shared body (N, C_f, b, b)
        logits = self._logits(h)                                                    # (N,)
        if not return_q:
            return logits
        return logits, self._q_dict(self.q(h))


class InfoGANMLPGenerator(_InfoCodes, MLPGenerator):
    """InfoGAN with fully connected layers: concat(z, one_hot(c_cat), c_cont) -> x (N, *out_shape)."""

    def __init__(self, nz: int = 62, num_categories: int = 10, num_continuous: int = 2, out_shape=(2,),
                 hidden: Sequence[int] = (256, 256), output: str = "auto", batch_norm: bool = False):
        self._check_codes(num_categories, num_continuous)
        super().__init__(nz, out_shape, hidden, output, batch_norm,
                         in_features=nz + num_categories + num_continuous)
        self.num_categories, self.num_continuous = int(num_categories), int(num_continuous)

    def forward(self, z: Tensor, labels=None, c_cat=None, c_cont=None) -> Tensor:
        return self._generate(self._latent(z, labels, c_cat, c_cont))


class InfoGANMLPDiscriminator(_QHead, MLPDiscriminator):
    """The MLP discriminator's body with a logit head and a Q head (Linear-LeakyReLU-Linear)."""

    def __init__(self, in_shape=(2,), hidden: Sequence[int] = (256, 256), num_categories: int = 10,
                 num_continuous: int = 2, norm: str = "none", q_hidden: int = 128, mbstd: bool = False):
        super().__init__(in_shape, hidden, norm, mbstd=mbstd)
        self.num_categories, self.num_continuous = int(num_categories), int(num_continuous)
        self.q = nn.Sequential(
            nn.Linear(self.features_dim, q_hidden),                                 # (N, h_L) -> (N, q_hidden)
            nn.LeakyReLU(0.2),
            nn.Linear(q_hidden, num_categories + num_continuous))                   # -> (N, k + n_cont)

    def forward(self, x: Tensor, labels=None, return_q: bool = False):
        if labels is not None:
            raise ValueError(f"{type(self).__name__}: InfoGAN's discriminator is unconditional; got labels")
        h = self._body(self._flatten_checked(x))                                    # (N, h_L)
        logits = self._logits(h)                                                    # (N,)
        if not return_q:
            return logits
        return logits, self._q_dict(self.q(h))


# ---------------------------------------------------------------------------
# ACGAN (Odena et al. 2017): D with an auxiliary class head
# ---------------------------------------------------------------------------

class _AuxClassifier:
    """Mixin for ACGAN discriminators: D sees no label; a second head predicts it.

    ``forward(x, return_aux=True)`` returns ``(l, class_logits (N, K))``;
    :func:`tinygan.gan.losses.class_nll` scores the class head.
    """

    conditional = False              # no label input: the label is the class head's target
    auxiliary_classifier = True

    def _check_classes(self, num_classes: int) -> int:
        if num_classes < 2:
            raise ValueError(f"{type(self).__name__}: ACGAN needs num_classes >= 2, got {num_classes} "
                             "(is the data set labelled?)")
        return int(num_classes)

    def _no_labels(self, labels) -> None:
        if labels is not None:
            raise ValueError(f"{type(self).__name__}: ACGAN's discriminator takes no label; it predicts the "
                             "class (forward(x, return_aux=True))")


class ACGANDiscriminator(_AuxClassifier, DCGANDiscriminator):
    """DCGAN's discriminator body with two heads, the source S and the class C (Odena et al. 2017, sec. 3).

        features = body(x)                   (N, C_f, b, b)
        l        = conv_b(features)          (N,)      log-odds of S = real
        c        = conv_b'(features) + bias  (N, K)    logits of P(C | x)
    """

    def __init__(self, nc: int = 1, num_classes: int = 10, ndf: int = 64, image_size: int = 28,
                 norm: str = "batch", **kw):
        super().__init__(nc=nc, ndf=ndf, image_size=image_size, norm=norm, **kw)
        self.num_classes = self._check_classes(num_classes)
        base, _ = stages(image_size, type(self).__name__)
        self.aux = nn.Conv2d(self.features_channels, self.num_classes, base, 1, 0)   # (N, C_f, b, b) -> (N, K, 1, 1)
        weights_init(self.aux)

    def forward(self, x: Tensor, labels=None, return_aux: bool = False):
        self._no_labels(labels)
        self._check_images(x, self.nc)
        h = self._features(x)                                                       # the shared body (N, C_f, b, b)
        logits = self._logits(h)                                                    # (N,)
        if not return_aux:
            return logits
        return logits, self.aux(h).reshape(x.shape[0], self.num_classes)           # (N,), (N, K)


class ACGANMLPDiscriminator(_AuxClassifier, MLPDiscriminator):
    """The MLP discriminator's body with a logit head and a class head Linear(h_L, K)."""

    def __init__(self, in_shape=(2,), num_classes: int = 10, hidden: Sequence[int] = (256, 256),
                 norm: str = "none", **kw):
        super().__init__(in_shape, hidden, norm, **kw)
        self.num_classes = self._check_classes(num_classes)
        self.aux = nn.Linear(self.features_dim, self.num_classes)                   # (N, h_L) -> (N, K)

    def forward(self, x: Tensor, labels=None, return_aux: bool = False):
        self._no_labels(labels)
        h = self._body(self._flatten_checked(x))                                    # (N, h_L)
        logits = self._logits(h)                                                    # (N,)
        if not return_aux:
            return logits
        return logits, self.aux(h)                                                  # (N,), (N, K)


# ---------------------------------------------------------------------------
# The factory
# ---------------------------------------------------------------------------

MODELS = ("mlp", "dcgan", "cgan", "cgan-mlp", "infogan", "acgan", "acgan-mlp", "sngan")
CLASS_MODELS = ("cgan", "cgan-mlp", "acgan", "acgan-mlp")     # models trained on labelled data


def _mlp_critic_norm(critic_norm: str) -> str:
    """Batch norm is a DCGAN rule; the fully connected discriminators use none unless layer norm is asked."""
    return "layer" if critic_norm == "layer" else "none"


def build_gan(model: str, image_shape=None, data_dim: int | None = None, nz: int = 100, ngf: int = 64,
              ndf: int = 64, num_classes: int = 10, loss: str | GANLoss = "nonsaturating",
              num_categories: int = 10, num_continuous: int = 2, hidden: Sequence[int] = (256, 256),
              pack: int = 1, mbstd: bool = False, spectral_norm: bool = False):
    """A generator and a discriminator for ``model`` on images (C, S, S) or vectors of ``data_dim``.

    ==========  ==========================================  ==========================================
    model       images (``image_shape=(C, S, S)``)          vectors (``data_dim=d``)
    ==========  ==========================================  ==========================================
    mlp         MLPGenerator / MLPDiscriminator (tanh out)  MLPGenerator / MLPDiscriminator (linear)
    dcgan       DCGANGenerator / DCGANDiscriminator         (error: DCGAN needs images)
    cgan        ConditionalDCGAN{Generator,Discriminator}   ConditionalMLP{Generator,Discriminator}
    cgan-mlp    ConditionalMLP{Generator,Discriminator}     ConditionalMLP{Generator,Discriminator}
    infogan     InfoGAN{Generator,Discriminator}            InfoGANMLP{Generator,Discriminator}
    acgan       ConditionalDCGANGenerator / ACGAN-D         ConditionalMLPGenerator / ACGANMLP-D
    acgan-mlp   ConditionalMLPGenerator / ACGANMLP-D        ConditionalMLPGenerator / ACGANMLP-D
    sngan       DCGANGenerator / DCGANDiscriminator, no     (error: SN-DCGAN needs images)
                batch norm, spectral norm on every layer
    ==========  ==========================================  ==========================================

    ``loss`` (a name or a :class:`GANLoss`) sets the discriminator's
    normalisation through its recipe's ``critic_norm``
    (:data:`tinygan.gan.recipes.RECIPES`): DCGAN-style critics take it as is
    ("batch"; "layer" for WGAN-GP); the MLP critics have none, or layer norm
    when the recipe asks for it.  ``ngf``/``ndf`` size the convolutional
    models, ``hidden`` the fully connected ones; MLP generators on images use
    batch norm (not on vectors).

    ``pack=M`` (PacGAN, Lin et al. 2018) builds the discriminator for packs of
    M samples: the inner network's input is M times as wide (vectors: M d
    features; images: M C channels) and it is wrapped in
    :class:`tinygan.gan.pack.Packed`, which takes the usual (N, ...) batch
    and returns (N/M,) logits.  Conditional and InfoGAN models are refused
    with ``pack > 1``.

    ``mbstd=True`` puts the minibatch standard-deviation layer (Karras et al.
    2018, :class:`tinygan.gan.mbstd.MinibatchStdDev`) before D's last layer.

    ``spectral_norm=True`` (``--spectral-norm``) spectrally normalises every
    convolution and linear layer of D (:func:`spectral_normalize`), whatever
    the model; ``sngan`` is SN-DCGAN (Miyato et al. 2018): DCGAN's networks,
    D without batch norm and spectrally normalised, trained with the hinge loss.
    """
    if spectral_norm:                                        # --spectral-norm: the model's D, then every weight normalised
        args = {k: v for k, v in locals().items() if k != "spectral_norm"}    # this call's arguments
        G, D = build_gan(**args)
        return G, (D if model == "sngan" else spectral_normalize(D))
    if model not in MODELS:
        raise ValueError(f"build_gan: unknown model {model!r}; choose from {list(MODELS)}")
    if (image_shape is None) == (data_dim is None):
        raise ValueError("build_gan: pass exactly one of image_shape=(C, S, S) (images) or data_dim=d (vectors)")
    pack = check_pack(pack, "build_gan")
    if pack > 1 and model in CLASS_MODELS + ("infogan",):
        raise ValueError(f"build_gan: pack={pack} is for unconditional models (mlp, dcgan); --model {model} "
                         "feeds D a label or asks Q for a code per sample, which a pack of samples does not have")
    norm = recipe_for(loss).critic_norm
    if image_shape is not None:
        image_shape = tuple(int(s) for s in image_shape)
        if len(image_shape) != 3 or image_shape[1] != image_shape[2]:
            raise ValueError(f"build_gan: image_shape must be (C, S, S) with square images, got {image_shape}")
        nc, size = image_shape[0], image_shape[1]
        shape, images = image_shape, True
    else:
        shape, images = (int(data_dim),), False
    mlp_kw = dict(hidden=hidden, batch_norm=images)
    dk = dict(mbstd=True) if mbstd else {}                   # D's keyword: the minibatch-stddev layer

    if model == "dcgan":
        if not images:
            raise ValueError("build_gan: 'dcgan' needs images (image_shape); use 'mlp' for vectors")
        G = DCGANGenerator(nz=nz, ngf=ngf, nc=nc, image_size=size)
        D = DCGANDiscriminator(nc=nc * pack, ndf=ndf, image_size=size, norm=norm, **dk)    # packs: M C channels
        return G, (D if pack == 1 else Packed(D, pack))
    if model == "sngan":                                     # SN-DCGAN: no batch norm in D, W / sigma(W) in every layer
        if not images:
            raise ValueError("build_gan: 'sngan' (SN-DCGAN) needs images (image_shape); use 'mlp' for vectors")
        G = DCGANGenerator(nz=nz, ngf=ngf, nc=nc, image_size=size)
        D = DCGANDiscriminator(nc=nc * pack, ndf=ndf, image_size=size, norm="none", **dk)
        return G, spectral_normalize(D if pack == 1 else Packed(D, pack))
    if model == "mlp":
        G = MLPGenerator(nz, shape, **mlp_kw)
        D = MLPDiscriminator((shape[0] * pack,) + shape[1:], hidden, norm=_mlp_critic_norm(norm), **dk)
        return G, (D if pack == 1 else Packed(D, pack))
    if model == "cgan" and images:
        return (ConditionalDCGANGenerator(nz, num_classes, ngf=ngf, nc=nc, image_size=size),
                ConditionalDCGANDiscriminator(nc, num_classes, ndf=ndf, image_size=size, norm=norm, **dk))
    if model in ("cgan", "cgan-mlp"):
        return (ConditionalMLPGenerator(nz, num_classes, shape, **mlp_kw),
                ConditionalMLPDiscriminator(shape, num_classes, hidden, norm=_mlp_critic_norm(norm), **dk))
    if model == "acgan" and images:
        return (ConditionalDCGANGenerator(nz, num_classes, ngf=ngf, nc=nc, image_size=size),
                ACGANDiscriminator(nc, num_classes, ndf=ndf, image_size=size, norm=norm, **dk))
    if model in ("acgan", "acgan-mlp"):
        return (ConditionalMLPGenerator(nz, num_classes, shape, **mlp_kw),
                ACGANMLPDiscriminator(shape, num_classes, hidden, norm=_mlp_critic_norm(norm), **dk))
    # infogan
    if images:
        return (InfoGANGenerator(nz, num_categories, num_continuous, ngf=ngf, nc=nc, image_size=size),
                InfoGANDiscriminator(nc, ndf, size, num_categories, num_continuous, norm=norm, **dk))
    return (InfoGANMLPGenerator(nz, num_categories, num_continuous, shape, **mlp_kw),
            InfoGANMLPDiscriminator(shape, hidden, num_categories, num_continuous, norm=_mlp_critic_norm(norm),
                                    **dk))


def spectral_normalize(D: nn.Module) -> nn.Module:
    """``nn.spectral_norm`` on every convolution and linear layer of ``D`` (in place), in module order; returns D.

    Each layer's u and v are drawn from the global generator, so a seeded run
    builds the same D every time.
    """
    for m in list(D.modules()):
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.spectral_norm(m)
    return D


# ---------------------------------------------------------------------------
# Inputs for picture grids
# ---------------------------------------------------------------------------

def sample_grid_inputs(G, rows: int, cols: int, rng: np.random.Generator, code: int = 0) -> dict:
    """Host inputs for a ``rows`` x ``cols`` picture grid, row-major (row r = items r*cols .. r*cols+cols-1).

    * conditional G: row r shows class r mod K (``cols`` random z each);
    * InfoGAN G: row r has c_cat = r mod k and one z for the whole row, while
      the continuous code number ``code`` runs linearly from -1 to 1 along
      the row (the other continuous codes 0), as the paper's Figure 2;
    * otherwise: ``rows * cols`` independent draws.
    """
    n = rows * cols
    if hasattr(G, "num_categories"):                                         # InfoGAN
        if not 0 <= code < G.num_continuous:
            raise ValueError(f"sample_grid_inputs: code must be in [0, {G.num_continuous}), got {code}")
        z_rows = _draw_z(rng, rows, G.nz)                                     # (rows, nz)
        c_cont = np.zeros((n, G.num_continuous), dtype=np.float32)           # (n, n_cont)
        c_cont[:, code] = np.tile(np.linspace(-1.0, 1.0, cols, dtype=np.float32), rows)
        return {"z": np.repeat(z_rows, cols, axis=0),                         # (rows, nz) -> (n, nz)
                "c_cat": np.repeat(np.arange(rows, dtype=np.int64) % G.num_categories, cols),
                "c_cont": c_cont}
    inputs = G.sample_inputs(n, rng)
    if getattr(G, "conditional", False):
        inputs["labels"] = np.repeat(np.arange(rows, dtype=np.int64) % G.num_classes, cols)
    return inputs


# ---------------------------------------------------------------------------
# Class labels: the host check, and the GPU range check folded into the output
# ---------------------------------------------------------------------------

def check_class_labels(labels, n: int, k: int, who: str = "labels", what: str = "labels") -> None:
    """Check host class labels: integers of shape (n,) in [0, k); a ``ValueError`` naming ``who`` otherwise.

    For NumPy arrays, lists and Tensors on the host; labels on the GPU are
    left to :func:`_device_class_indices`.  Call it on host labels *before*
    moving them to the GPU, where their range can no longer be checked
    without a host sync (the trainer's real labels, for one).
    """
    arr = labels._data if isinstance(labels, Tensor) else labels
    if get_array_module(arr) is not np:
        return
    arr = np.asarray(arr)
    if arr.shape != (n,) or arr.dtype.kind not in "iu":
        raise ValueError(f"{who}: {what} must be integers of shape ({n},), got shape {arr.shape} "
                         f"dtype {arr.dtype}")
    if n and (int(arr.min()) < 0 or int(arr.max()) >= k):
        raise ValueError(f"{who}: {what} must lie in [0, {k}), got min {int(arr.min())} max {int(arr.max())}")


def _device_class_indices(arr, n: int, k: int, like: Tensor, who: str, what: str):
    """GPU labels (n,): ``(indices with bad labels set to 0, poison Tensor (n, 1): NaN on bad rows, else 0)``.

    Element-wise kernels only (no reduction, no host sync); see :func:`_class_indices`.
    """
    if tuple(arr.shape) != (n,) or arr.dtype.kind not in "iu":
        raise ValueError(f"{who}: {what} must be integers of shape ({n},), got shape {tuple(arr.shape)} "
                         f"dtype {arr.dtype}")
    xp = get_array_module(arr)
    arr = to_device(arr, like.device)
    bad = (arr < 0) | (arr >= k)                                            # (n,) bool, on the device
    poison = xp.where(bad, np.nan, 0.0).astype(like.dtype).reshape(n, 1)   # NaN rows for bad labels
    return xp.where(bad, 0, arr), Tensor(poison)


def _poisoned(y: Tensor, poison) -> Tensor:
    """``y`` (N, d) plus the NaN rows of :func:`_class_indices`' poison (``y`` itself without one)."""
    return y if poison is None else y + poison.to(dtype=y.dtype)
