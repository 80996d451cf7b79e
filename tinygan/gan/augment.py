"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

D sees every image, real and generated, through the same random, differentiable
transformation T, in both players' steps:

    L_D = loss.d_loss(D(T(x)), D(T(G(z))))          L_G = loss.g_loss(D(T(G(z))))

so D cannot memorise a small training set, while G still gets gradients
through T (every transformation here is differentiable in its input).  The
policies and their parameters follow the reference implementation,
``DiffAugment_pytorch.py`` of mit-han-lab/data-efficient-gans; the random
draws are per sample and in the reference's order:

==============  ===========================================================================================
policy          transformations (per sample n)
==============  ===========================================================================================
``color``       brightness  x + (u_1 - 0.5);  saturation  (x - mean_c x) 2 u_2 + mean_c x;
                contrast  (x - mean_{c,h,w} x)(u_3 + 0.5) + mean_{c,h,w} x;   u_i ~ U[0, 1)
``translation`` out[i, j] = x[i + t_h, j + t_w] (0 outside the image),  t ~ U{-S/8, ..., S/8}  (S // 8)
``cutout``      x times a mask that is 0 on a (H/2) x (W/2) square centred at o - size/2 (clipped to the
                image), o_h ~ U{0, ..., H - (H/2 mod 2)}, 1 elsewhere
==============  ===========================================================================================

The random numbers come from a NumPy generator on the host (:class:`DiffAugment`'s
``generator``), then move to the data's device: the same seed gives the same
augmentations on the CPU and the GPU, and the trainer saves the generator's
state in the checkpoint, so ``--resume`` continues bit for bit.  Each call
(``augment(x)``) draws anew, as the reference calls ``DiffAugment`` once per
batch that D judges.
"""
from __future__ import annotations

import numpy as np

from tinygan.autograd import Function, Tensor
from tinygan.backend import get_array_module, to_device

__all__ = ["DiffAugment", "POLICIES", "parse_policy", "translate", "cutout_mask"]

POLICIES = ("color", "translation", "cutout")


def parse_policy(policy) -> tuple[str, ...]:
    """``"translation,cutout,color"`` (or a sequence) -> ("translation", "cutout", "color"), checked."""
    parts = tuple(p.strip() for p in policy.split(",")) if isinstance(policy, str) else tuple(policy)
    if not parts or any(p not in POLICIES for p in parts) or len(set(parts)) != len(parts):
        raise ValueError(f"DiffAugment: the policy must be a comma-separated list of distinct names from "
                         f"{', '.join(POLICIES)}, got {policy!r}")
    return parts


class _Translate(Function):
    """out[n, :, i, j] = x[n, :, i + th_n, j + tw_n], 0 where that falls outside the image.

    Each output pixel reads at most one input pixel and each input pixel is read
    at most once, so the adjoint is the opposite translation: backward is
    ``_Translate(-th, -tw)(g)``, itself differentiable (double backward).
    """

    saved_inputs = ()

    def __init__(self, th: np.ndarray, tw: np.ndarray):
        self.th, self.tw = th, tw                    # host int arrays (N,)

    def forward(self, x):
        xp = get_array_module(x)
        n, c, h, w = x.shape
        # The reference's indexing: pad by one zero pixel and clamp the shifted index into the pad.
        pad = xp.zeros((n, c, h + 2, w + 2), dtype=x.dtype)
        pad[:, :, 1:-1, 1:-1] = x
        th = to_device(self.th, _dev(x)).reshape(n, 1, 1)
        tw = to_device(self.tw, _dev(x)).reshape(n, 1, 1)
        gi = xp.clip(xp.arange(h).reshape(1, h, 1) + th + 1, 0, h + 1)                # (N, H, 1)
        gj = xp.clip(xp.arange(w).reshape(1, 1, w) + tw + 1, 0, w + 1)                # (N, 1, W)
        b = xp.arange(n).reshape(n, 1, 1)
        out = pad[b, :, gi, gj]                                                       # (N, H, W, C)
        return xp.ascontiguousarray(out.transpose(0, 3, 1, 2))                        # (N, C, H, W)

    def backward(self, g):
        return _Translate(-self.th, -self.tw)(g)


def _dev(a) -> str:
    return "cpu" if get_array_module(a) is np else "cuda"


def translate(x: Tensor, th, tw) -> Tensor:
    """x (N, C, H, W) shifted by (th_n, tw_n) pixels per sample, zeros shifted in (differentiable)."""
    return _Translate(np.asarray(th, dtype=np.int64), np.asarray(tw, dtype=np.int64))(x)


def cutout_mask(n: int, h: int, w: int, oh, ow, dtype=np.float32) -> np.ndarray:
    """The reference's cutout mask (N, 1, H, W): 0 on rows oh - H/2/2 .. + H/2 - 1 and the same for columns."""
    ch, cw = h // 2, w // 2
    rows = np.arange(h)[None, :] - (np.asarray(oh)[:, None] - ch // 2)             # (N, H) offset into the square
    cols = np.arange(w)[None, :] - (np.asarray(ow)[:, None] - cw // 2)
    inside = ((rows >= 0) & (rows < ch))[:, :, None] & ((cols >= 0) & (cols < cw))[:, None, :]
    return (~inside).astype(dtype)[:, None]                                          # (N, 1, H, W)


class DiffAugment:
    """``augment(x)``: the policy's transformations of a batch of images, with fresh draws from ``generator``.

    ``policy``: "translation,cutout,color" or any subset, applied in the order
    given (the reference's ``DiffAugment(x, policy)``).  ``generator``: a NumPy
    Generator (the trainer's own, saved in its checkpoint).  Images only:
    (N, C, H, W).
    """

    def __init__(self, policy, generator: np.random.Generator):
        self.policy = parse_policy(policy)
        self.generator = generator

    def __repr__(self) -> str:
        return f"DiffAugment({','.join(self.policy)!r})"

    def _uniform(self, x: Tensor) -> Tensor:
        u = self.generator.random(x.shape[0])                                         # U[0, 1): (N,), float64
        return Tensor(to_device(u.astype(x.dtype).reshape(-1, 1, 1, 1), x.device))    # (N, 1, 1, 1)

    def __call__(self, x: Tensor) -> Tensor:
        if x.ndim != 4:
            raise ValueError(f"DiffAugment: expected images (N, C, H, W), got {x.shape}")
        for p in self.policy:
            x = getattr(self, "_" + p)(x)
        return x

    def _color(self, x: Tensor) -> Tensor:
        x = x + (self._uniform(x) - 0.5)                                              # brightness
        mean = x.mean(axis=1, keepdims=True)
        x = (x - mean) * (self._uniform(x) * 2) + mean                                # saturation
        mean = x.mean(axis=(1, 2, 3), keepdims=True)
        return (x - mean) * (self._uniform(x) + 0.5) + mean                           # contrast

    def _translation(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        sh, sw = h // 8, w // 8
        th = self.generator.integers(-sh, sh + 1, size=n)
        tw = self.generator.integers(-sw, sw + 1, size=n)
        return translate(x, th, tw)

    def _cutout(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        oh = self.generator.integers(0, h + (1 - (h // 2) % 2), size=n)
        ow = self.generator.integers(0, w + (1 - (w // 2) % 2), size=n)
        mask = cutout_mask(n, h, w, oh, ow, dtype=x.dtype)
        return x * Tensor(to_device(mask, x.device))
