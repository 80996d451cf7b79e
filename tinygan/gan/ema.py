"""An exponential moving average of the generator's weights (Yazici et al. 2019, "The Unusual
Effectiveness of Averaging in GAN Training").

GAN training does not converge to a point: the players circle around an
equilibrium, and the last iterate's samples carry the current lap's
artefacts.  Averaging G's weights over the recent past damps the cycling:

    theta_ema <- beta_t theta_ema + (1 - beta_t) theta        after every generator update

with beta_t = min(beta, (1 + t) / (c + t)) for update number t, so that the
average is not dominated by the random initial weights early in a run (the
warm-up of TensorFlow's ExponentialMovingAverage ``num_updates``, where
c = 10).  Until beta caps it, the warm-up *is* the average's width: with
1 - beta_t = (c - 1) / (c + t), the weight of the iterate of update tau in
the average at update t grows like (tau / t)^(c - 2) (the "power function"
EMA of Karras et al. 2024, exponent gamma = c - 2), so the average lags about
t / c updates behind the current weights: a tenth of the run for c = 10, a
twentieth for c = 20, whatever beta is, as long as t < (c beta - 1) / (1 - beta)
(8,990 updates for c = 10 and beta = 0.999).  ``--ema-warmup C`` sets c.
Batch norm's running statistics are averaged the same way (they are
estimates that belong with the averaged weights); integer buffers (the batch
counter) are copied.  Samples and metrics are then drawn from the average;
training never reads it.
"""
from __future__ import annotations

import copy

from tinygan.autograd import no_grad
from tinygan.backend import get_array_module

__all__ = ["TF_WARMUP", "ema_decay", "ema_copy", "ema_update_"]


TF_WARMUP = 10   # c of TensorFlow's warm-up, and of every tinygan run written before --ema-warmup existed


def ema_decay(beta: float, t: int, warmup: float = TF_WARMUP) -> float:
    """beta_t = min(beta, (1 + t) / (c + t)), c = ``warmup``: the effective decay at update ``t`` (0-based)."""
    return min(beta, (1.0 + t) / (warmup + t))


def ema_copy(module):
    """A frozen copy of ``module`` to hold the average (same architecture, same values, no gradients)."""
    avg = copy.deepcopy(module)
    for p in avg.parameters():
        p.requires_grad = False
        p.grad = None
    avg.eval()
    return avg


def ema_update_(avg, module, beta: float, t: int, warmup: float = TF_WARMUP) -> None:
    """theta_avg <- beta_t theta_avg + (1 - beta_t) theta for every parameter and float buffer, in place."""
    b = ema_decay(beta, t, warmup)
    with no_grad():
        for (_, pa), (_, p) in zip(avg.named_parameters(), module.named_parameters()):
            a, x = pa._data, p._data
            a *= b                                           # theta_ema <- beta_t theta_ema ...
            a += (1.0 - b) * x                               #            ... + (1 - beta_t) theta
        for (_, a), (_, x) in zip(avg.named_buffers(), module.named_buffers()):   # arrays, not Tensors
            if a.dtype.kind == "f":
                a *= b
                a += (1.0 - b) * x
            else:
                xp = get_array_module(a)
                xp.copyto(a, x)
