"""``SampleSizeWarning``: raised (as a warning) when too few samples make an estimate unstable.

Every metric here is an estimate from finite samples.  The thresholds below are
rules of thumb, stated so that a reader can disagree with them:

* Frechet distance: n >= 1,000 per side (Heusel et al. recommend 10,000; the
  estimate is biased upwards for small n), and n > feature dimension or the
  covariance matrix is singular.
* Inception Score, class histograms, precision/recall: n >= 1,000.
* Mixture metrics: n >= 20 samples per mode.
"""
from __future__ import annotations

import warnings


class SampleSizeWarning(UserWarning):
    """Too few samples for a stable estimate of a metric (the number is still returned)."""


def warn_if_few(n: int, minimum: int, what: str, stacklevel: int = 3) -> bool:
    """Warn (``SampleSizeWarning``) when ``n < minimum``; returns True when it warned."""
    if n < minimum:
        warnings.warn(f"{what}: {n} samples is fewer than {minimum}; the estimate is unstable "
                      "(and, for the Frechet distance, biased upwards)", SampleSizeWarning,
                      stacklevel=stacklevel)
        return True
    return False
