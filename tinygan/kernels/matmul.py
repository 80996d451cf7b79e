"""Matrix product of arrays, with the rank-one case as a broadcast product.

    matmul(a, b)[..., i, j] = sum_k a[..., i, k] b[..., k, j]      a (..., n, k), b (..., k, m)

When the inner length ``k`` is 1 the sum has one term, and the product is an
outer product: ``a * b`` with ``a`` (..., n, 1) and ``b`` (..., 1, m)
broadcast to (..., n, m).  That gives the same floats as the GEMM (one
rounded product per element, nothing added) and is several times faster on
NumPy: OpenBLAS's SGEMM with k = 1 ran 4-11x slower than the broadcast
multiply on the 2-core AMD EPYC (measured 2026-12-01, one process, both
threads: (64, 1) @ (1, 8192) 0.80 ms vs 0.070 ms; (500, 1) @ (1, 400) 0.29 vs
0.067 ms).  Products with k = 1 are the backward passes of every layer with
one output unit: a discriminator's logit layer (the DCGAN's last convolution,
an MLP's last linear layer) sends ``g (N, 1) @ W (1, in)`` back to its input.

The slow reference is ``a @ b`` itself; tests/test_kernels_matmul.py checks
that both agree bit for bit.
"""
from __future__ import annotations

import numpy

from tinygan.backend import get_array_module


def matmul(a, b):
    """``a @ b`` for NumPy or CuPy arrays of 2 or more dimensions; an outer product when the inner length is 1.

    The result is a new C-contiguous array in both cases, of ``a @ b``'s dtype and shape.
    """
    if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != 1 or b.shape[-2] != 1:
        return a @ b
    xp = get_array_module(a)
    shape = numpy.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])  # (..., n, m)
    out = xp.empty(shape, dtype=numpy.result_type(a.dtype, b.dtype))
    xp.multiply(a, b, out=out)            # (..., n, 1) * (..., 1, m): one product per element, no sum
    return out
