"""The minibatch standard-deviation layer (Karras et al. 2018, "Progressive Growing of GANs", sec. 3).

A discriminator that sees one sample at a time cannot tell a batch of varied
samples from a collapsed one.  This layer, placed before D's last layer,
appends one feature that summarises the variation within a small group of
the batch:

    groups: sample n belongs to group n mod (N/G), G = group_size = min(4, N)
    s      = mean over features of  sqrt(Var_group[x] + 1e-8)          one number per group
    out    = concat(x, s broadcast to one feature map / one feature)   (N, C+1, H, W) or (N, d+1)

as the paper's released code (``minibatch_stddev_layer(x, group_size=4)``
in ``networks.py`` of tkarras/progressive_growing_of_gans): the batch is
reshaped to ``(G, N/G, ...)``, so group members are N/G apart; the variance is
the biased one (mean of squared deviations over the group), the square root
has 1e-8 inside, and the result is averaged over channels and pixels.  The
reference code requires N to be a multiple of G; here G falls back to the
largest divisor of N not above ``group_size``, so any batch (a 1-sample
eval call, a last partial batch) works.

Everything is built from differentiable tensor ops, so gradients (and the
gradient penalty's double backward) go through it.
"""
from __future__ import annotations

from tinygan import nn
from tinygan.autograd import Tensor
from tinygan.creation import cat

__all__ = ["MinibatchStdDev", "group_size_for"]


def group_size_for(n: int, group_size: int = 4) -> int:
    """G = min(group_size, n), lowered to the largest divisor of ``n`` (the reference asserts n % G == 0)."""
    g = max(1, min(int(group_size), int(n)))
    while n % g:
        g -= 1
    return g


class MinibatchStdDev(nn.Module):
    """x (N, C, H, W) -> (N, C + 1, H, W), or (N, d) -> (N, d + 1): x with its group's mean stddev appended.

        y = x.reshape(G, N/G, ...)                     group g's members: samples g, g + N/G, ...
        s = mean_{features} sqrt(mean_G (y - mean_G y)^2 + 1e-8)      (N/G,)
        out[n] = concat(x[n], s[n mod N/G])
    """

    def __init__(self, group_size: int = 4, eps: float = 1e-8):
        super().__init__()
        if int(group_size) < 1:
            raise ValueError(f"MinibatchStdDev: group_size must be >= 1, got {group_size}")
        self.group_size, self.eps = int(group_size), float(eps)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in (2, 4):
            raise ValueError(f"MinibatchStdDev: expected (N, d) or (N, C, H, W) inputs, got {x.shape}")
        n, rest = x.shape[0], tuple(x.shape[1:])
        g = group_size_for(n, self.group_size)
        m = n // g
        y = x.reshape((g, m) + rest)                                          # (G, M, ...)
        y = y - y.mean(axis=0, keepdims=True)                                 # deviation from the group mean
        var = y.square().mean(axis=0)                                         # (M, ...) biased variance
        std = (var + self.eps).sqrt()                                         # (M, ...)
        s = std.reshape(m, -1).mean(axis=1)                                   # (M,) averaged over features
        s = s.reshape((1, m, 1) + (1,) * (len(rest) - 1))                     # (1, M, 1[, 1, 1])
        extra = s.expand((g, m, 1) + rest[1:])                                # (G, M, 1[, H, W]): tiled
        return cat([x, extra.reshape((n, 1) + rest[1:])], dim=1)              # (N, C + 1[, H, W])

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}"
