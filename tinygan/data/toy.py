"""Low-dimensional target distributions for studying GANs where the answer is known.

Exact definitions (all mixtures have equal weights and isotropic Gaussians):

=========== === =========================================================
name         d  distribution
=========== === =========================================================
gauss1d      1  N(4, 0.5^2)
bimodal1d    1  1/2 N(-2, 0.5^2) + 1/2 N(+2, 0.5^2)
ring8        2  8 Gaussians, means (cos 2pi k/8, sin 2pi k/8), k = 0..7
                (the first at angle 0), std 0.01 -- PacGAN's "2D-ring"
grid25       2  25 Gaussians, means {-4,-2,0,2,4}^2, std 0.05 -- PacGAN's
                "2D-grid"; mode k has x = -4 + 2 (k // 5), y = -4 + 2 (k % 5)
swissroll    2  t = 1.5 pi (1 + 2u), u ~ U(0, 1); point (t cos t, t sin t)
                divided by 4.5 pi (the outer end lands on the unit circle),
                plus N(0, 0.02^2) noise per coordinate
=========== === =========================================================

PacGAN: Lin, Khetan, Fanti, Oh, "PacGAN: The power of two samples in
generative adversarial networks", NeurIPS 2018, section 5 (ring std 0.01,
grid std 0.05).  The swiss roll follows scikit-learn's ``make_swiss_roll``
(x and z coordinates), rescaled.
"""
from __future__ import annotations

import numpy as np

TOY_DATASETS = ("gauss1d", "bimodal1d", "ring8", "grid25", "swissroll")

SWISSROLL_NOISE = 0.02  # std of the Gaussian noise added to the rescaled roll


def _mixture(name: str) -> tuple[np.ndarray, float] | None:
    """(centres (K, d), std) of the mixtures; None for the swiss roll."""
    if name == "gauss1d":
        return np.array([[4.0]]), 0.5
    if name == "bimodal1d":
        return np.array([[-2.0], [2.0]]), 0.5
    if name == "ring8":
        angles = 2 * np.pi * np.arange(8) / 8
        return np.stack([np.cos(angles), np.sin(angles)], axis=1), 0.01
    if name == "grid25":
        ticks = np.arange(-4.0, 4.1, 2.0)  # -4, -2, 0, 2, 4
        gx, gy = np.meshgrid(ticks, ticks, indexing="ij")
        return np.stack([gx.ravel(), gy.ravel()], axis=1), 0.05
    return None


def _check_name(name: str) -> None:
    if name not in TOY_DATASETS:
        raise ValueError(f"unknown toy dataset {name!r}; valid names are: {', '.join(TOY_DATASETS)}")


def toy_dim(name: str) -> int:
    """Dimension d of the samples of toy dataset ``name``."""
    _check_name(name)
    return 1 if name.endswith("1d") else 2


def toy_modes(name: str) -> tuple[np.ndarray, float]:
    """Mode centres float64 (K, d) and the common std of mixture ``name``.

    Defined for gauss1d (K = 1), bimodal1d (2), ring8 (8) and grid25 (25);
    the swiss roll has no modes and raises ValueError.
    """
    _check_name(name)
    mixture = _mixture(name)
    if mixture is None:
        raise ValueError(f"toy dataset {name!r} is not a Gaussian mixture and has no modes")
    centres, std = mixture
    return centres, std


def sample_toy(name: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of toy dataset ``name`` as float32 (n, d)."""
    _check_name(name)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
    if name == "swissroll":
        return _sample_swissroll(n, rng)
    centres, std = _mixture(name)
    which = rng.integers(len(centres), size=n)  # equal weights
    x = centres[which] + std * rng.standard_normal((n, centres.shape[1]))
    return x.astype(np.float32)


def _sample_swissroll(n: int, rng: np.random.Generator) -> np.ndarray:
    t = 1.5 * np.pi * (1 + 2 * rng.random(n))  # 1.5 pi .. 4.5 pi: 1.5 turns
    x = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (4.5 * np.pi)
    x += SWISSROLL_NOISE * rng.standard_normal((n, 2))
    return x.astype(np.float32)


def toy_density(name: str, x: np.ndarray) -> np.ndarray:
    """Exact density p(x) of a mixture target at the points ``x``.

    Args:
        name: a mixture (gauss1d, bimodal1d, ring8, grid25).
        x: points (M, d); for the 1-D targets a grid of shape (M,) is accepted.

    Returns:
        float64 (M,): the density (per unit length in 1-D, per unit area in 2-D).
    """
    centres, std = toy_modes(name)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1 and centres.shape[1] == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] != centres.shape[1]:
        raise ValueError(f"{name} is {centres.shape[1]}-D: x must be (M, {centres.shape[1]}), got {x.shape}")
    d = centres.shape[1]
    sq_dist = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)  # (M, K)
    normaliser = (2 * np.pi * std**2) ** (d / 2)
    return np.exp(-sq_dist / (2 * std**2)).mean(axis=1) / normaliser
