"""Mode-collapse metrics for Gaussian-mixture targets (the 2-D ring and grid), as VEEGAN and PacGAN define them.

The target is a mixture of K isotropic Gaussians N(mu_k, sigma^2 I) with equal
weights (``tinygan.data.toy_modes``).  Given n generated samples x_1..x_n:

1. Each sample is assigned to its nearest mode, with the distance measured in
   standard deviations::

       k(i) = argmin_k ||x_i - mu_k|| / sigma,        d_i = min_k ||x_i - mu_k|| / sigma

2. A sample is *high quality* when ``d_i < 3`` (within three standard
   deviations of the nearest mode).  ``high_quality`` is the fraction of the n
   samples that are.

3. ``mode_counts[k]`` is the number of high-quality samples assigned to mode k.
   A mode is *captured* when ``mode_counts[k] >= min_count``; ``min_count = 1``
   by default: a mode counts as soon as one high-quality sample lands on it.

4. ``reverse_kl`` is KL(q || u) between the histogram q of the high-quality
   samples over the modes (q_k = mode_counts[k] / sum(mode_counts)) and the
   uniform target u_k = 1/K::

       KL(q || u) = sum_k q_k log(q_k / (1/K)) = log K - H(q)        (0 log 0 = 0)

   It is 0 when every mode receives the same share and log K when all the
   samples sit on one mode.  "Reverse" because the model's distribution comes
   first, as in KL(p_g || p_data).

Where the rule comes from.  Srivastava et al., "VEEGAN: Reducing mode collapse
in GANs using implicit variational learning", NeurIPS 2017, section 5.1, and
Lin et al., "PacGAN: The power of two samples in generative adversarial
networks", NeurIPS 2018, section 5 (2,500 samples, high quality = within three
standard deviations of the nearest mode, modes captured, reverse KL).  Steps
1-3 follow PacGAN's released code line for line: ``MetricLogger`` in
``synthetic_data_experiments/PacGAN/pacgan/extensions.py`` (github.com/fjxmlzn/PacGAN)
assigns each sample to the nearest mode by ``sqrt(sum(d^2 / var))``, keeps it
when that is below ``dis_thre = 3``, and reports ``mode coverage`` as the number
of modes with a nonzero count, which is ``min_count = 1`` here.  A stricter
threshold (say 20 samples, or a share of n/K) is available through
``min_count`` for those who want a mode to be more than touched.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from tinygan.data import toy_modes
from tinygan.metrics.sample_size import SampleSizeWarning

HIGH_QUALITY_STDS = 3.0     # a sample within 3 sigma of its nearest mode is "high quality"
PACGAN_NUM_SAMPLES = 2500   # the number of samples VEEGAN and PacGAN evaluate
MIN_SAMPLES_PER_MODE = 20   # below n = 20 K the counts per mode are too noisy to compare runs


def _mixture(target) -> tuple[np.ndarray, float, str]:
    """(centres (K, d), std, name) from a toy dataset name or a ``(centres, std)`` pair."""
    if isinstance(target, str):
        centres, std = toy_modes(target)
        return np.asarray(centres, np.float64), float(std), target
    centres, std = target
    centres = np.asarray(centres, np.float64)
    if centres.ndim == 1:
        centres = centres[:, None]
    if centres.ndim != 2 or float(std) <= 0:
        raise ValueError(f"mixture_metrics: expected centres (K, d) and std > 0, got {centres.shape} and {std}")
    return centres, float(std), f"{len(centres)} modes"


def assign_to_modes(samples: np.ndarray, centres: np.ndarray, std: float) -> tuple[np.ndarray, np.ndarray]:
    """Nearest mode of each sample and its distance in standard deviations.

    samples (n, d), centres (K, d) -> (mode index int64 (n,), distance / std float64 (n,)).
    """
    x = np.asarray(samples, np.float64)
    sq = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)     # (n, K) squared distances
    nearest = sq.argmin(axis=1)                                         # (n,)
    dist = np.sqrt(sq[np.arange(len(x)), nearest]) / std                # (n,) in units of sigma
    return nearest, dist


def reverse_kl_to_uniform(counts: Sequence[float]) -> float:
    """KL(q || uniform) for the histogram ``counts`` over K bins: sum_k q_k log(K q_k), 0 log 0 = 0.

    Returns ``log K`` (the value of a single occupied bin) when every count is zero:
    no high-quality sample is as far from uniform as one mode.
    """
    c = np.asarray(counts, np.float64)
    k = len(c)
    total = c.sum()
    if total <= 0:
        return float(np.log(k))
    q = c / total
    nz = q > 0
    return float(np.sum(q[nz] * np.log(q[nz] * k)))


def mixture_metrics(samples, target, n: int | None = PACGAN_NUM_SAMPLES, min_count: int = 1,
                    threshold: float = HIGH_QUALITY_STDS) -> dict:
    """Modes captured, the share of high-quality samples and the reverse KL (see the module docstring).

    Args:
        samples: generated points (N, d) (an (N,) array for a 1-D target).
        target: a toy dataset name (``"ring8"``, ``"grid25"``, ``"gauss1d"``,
            ``"bimodal1d"``) or a pair ``(centres (K, d), std)``.
        n: use the first ``n`` samples (2,500 in VEEGAN and PacGAN); ``None``
            uses them all.  Fewer than ``n`` given is allowed (with a warning
            when below ``20 K``).
        min_count: high-quality samples a mode needs to count as captured (1 as in PacGAN's code).
        threshold: the high-quality radius in standard deviations (3).

    Returns:
        A dict with ``modes_captured`` (int), ``num_modes`` (K),
        ``high_quality`` (fraction in [0, 1]), ``reverse_kl`` (nats),
        ``mode_counts`` (list of K ints), ``n`` (samples used), and ``rule``
        (the definition, in words, for reports).
    """
    centres, std, name = _mixture(target)
    x = np.asarray(samples, np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] != centres.shape[1]:
        raise ValueError(f"mixture_metrics: samples of shape {np.shape(samples)} do not match the "
                         f"{centres.shape[1]}-D target {name}")
    if n is not None:
        x = x[:n]
    x = x[np.isfinite(x).all(axis=1)] if len(x) else x          # NaN samples are never high quality
    used = int(np.asarray(samples).shape[0] if n is None else min(n, np.asarray(samples).shape[0]))
    k = len(centres)
    if used < MIN_SAMPLES_PER_MODE * k:
        warnings.warn(f"mixture_metrics: {used} samples for {k} modes (fewer than {MIN_SAMPLES_PER_MODE} per "
                      f"mode); mode counts are noisy. VEEGAN/PacGAN use {PACGAN_NUM_SAMPLES}.",
                      SampleSizeWarning, stacklevel=2)
    counts = np.zeros(k, dtype=np.int64)
    if len(x):
        nearest, dist = assign_to_modes(x, centres, std)
        good = dist < threshold                                             # (n,) high quality?
        counts = np.bincount(nearest[good], minlength=k)                    # (K,) per-mode counts
    captured = int((counts >= min_count).sum())
    return {
        "modes_captured": captured,
        "num_modes": k,
        "high_quality": float(counts.sum() / used) if used else 0.0,
        "reverse_kl": reverse_kl_to_uniform(counts),
        "mode_counts": counts.tolist(),
        "n": used,
        "rule": (f"high quality: within {threshold:g} std of the nearest mode; a mode is captured with "
                 f">= {min_count} high-quality sample(s); reverse KL(q || uniform) of the high-quality "
                 "samples' mode histogram (VEEGAN/PacGAN)"),
    }
