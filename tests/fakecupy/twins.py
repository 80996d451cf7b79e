"""NumPy twins of tinygan's registry kernels, for the stand-in on machines without a C++ compiler.

Same calling convention as the host builds in ``fakecupy.hostbuild``: element-wise
kernels get C-contiguous buffers of the broadcast shape (written in place), reductions
flat inputs whose element j belongs to output ``j % out_size``, raw kernels the device
arrays and scalars of the launch.  Each function is the equation of its CUDA source
(``tinygan/kernels/cuda/sources.py``), element by element in the array dtype.  With a
compiler the stand-in runs the CUDA sources themselves; these are the fallback
(``FAKECUPY_KERNELS=twins`` forces them).
"""
from __future__ import annotations

import numpy as np


def elementwise(name: str, bufs: dict, scalars: dict, n: int) -> None:
    v = {**bufs, **scalars}
    if name == "leaky_relu_forward":
        x, a = v["x"], v["slope"]
        mask = x > 0
        v["mask"][...] = mask
        v["y"][...] = np.where(mask, x, x * a)
    elif name == "leaky_relu_scale":
        v["s"][...] = np.where(v["mask"], v["s"].dtype.type(1), v["slope"])
    elif name == "leaky_relu_backward":
        g = v["g"]
        v["dx"][...] = np.where(v["mask"], g, g * v["slope"])
    elif name == "batch_norm_normalize":
        xhat = (v["x"] - v["mean"]) * v["invstd"]
        v["xhat"][...] = xhat
        v["y"][...] = xhat * v["gamma"] + v["beta"]
    elif name == "batch_norm_backward":
        v["dx"][...] = (v["g"] - v["dbeta_m"] - v["xhat"] * v["dgamma_m"]) * v["scale"]
    elif name == "adam_step":
        p, m, vv, g = v["p"], v["m"], v["v"], v["g"]
        gw = g + v["weight_decay"] * p if v["weight_decay"] != 0 else g
        m[...] = v["beta1"] * m + v["one_minus_beta1"] * gw
        vv[...] = v["beta2"] * vv + v["one_minus_beta2"] * (gw * gw)
        denom = np.sqrt(vv) / v["bias_correction2_sqrt"] + v["eps"]
        p[...] = p - v["step_size"] * (m / denom)
    elif name == "rmsprop_step":
        p, sq, g = v["p"], v["v"], v["g"]
        alpha, oma = v["alpha"], v["one_minus_alpha"]
        gw = g + v["weight_decay"] * p if v["weight_decay"] != 0 else g
        sq[...] = alpha * sq + oma * (gw * gw)
        if v["centered"]:
            ga = alpha * v["gavg"][:n] + oma * gw
            v["gavg"][:n] = ga
            avg = np.sqrt(sq - ga * ga) + v["eps"]
        else:
            avg = np.sqrt(sq) + v["eps"]
        if v["use_momentum"]:
            b = v["momentum"] * v["buf"][:n] + gw / avg
            v["buf"][:n] = b
            p[...] = p - v["lr"] * b
        else:
            p[...] = p - v["lr"] * (gw / avg)
    else:
        raise NotImplementedError(f"no NumPy twin for kernel {name}")


def reduction(name: str, bufs: dict, scalars: dict, result: np.ndarray, in_size: int, out_size: int) -> None:
    rows = {k: b.reshape(-1, out_size) for k, b in bufs.items()}
    if name == "batch_norm_centered_sumsq":
        d = rows["x"] - rows["mean"]
        result[...] = (d * d).sum(axis=0)
    elif name == "batch_norm_dot":
        result[...] = (rows["g"] * rows["xhat"]).sum(axis=0)
    else:
        raise NotImplementedError(f"no NumPy twin for kernel {name}")


def _memory(a, extent: int) -> np.ndarray:
    """The ``extent`` elements of memory from ``a``'s first element on, as a flat array."""
    return np.lib.stride_tricks.as_strided(a._a, shape=(max(extent, 0),), strides=(a.itemsize,))


def raw(name: str, r, grid: int, block: int, args: list) -> None:
    ints = [int(np.asarray(v)) for v in args[2:]]
    if name == "im2col_nhwc":
        x_pad, cols = args[0], args[1]
        total, sN, sH, sW, sC, C, kh, kw, sh, sw, Ho, Wo = ints
        idx = np.arange(total, dtype=np.int64)
        c = idx % C
        t = idx // C
        q = t % kw
        t //= kw
        p = t % kh
        t //= kh
        j = t % Wo
        t //= Wo
        i = t % Ho
        n = t // Ho
        off = n * sN + (i * sh + p) * sH + (j * sw + q) * sW + c * sC
        if total:
            _memory(cols, total)[...] = _memory(x_pad, int(off.max()) + 1)[off]
    elif name == "col2im_nhwc":
        dcols, dx_pad = args[0], args[1]
        total, sR, sK, Hp, Wp, C, kh, kw, sh, sw, Ho, Wo = ints
        idx = np.arange(total, dtype=np.int64)
        c = idx % C
        t = idx // C
        x = t % Wp
        t //= Wp
        y = t % Hp
        n = t // Hp
        N = total // (Hp * Wp * C) if total else 0
        extent = (N * Ho * Wo - 1) * sR + (kh * kw * C - 1) * sK + 1 if total else 0
        src = _memory(dcols, extent)
        acc = np.zeros(total, dtype=dx_pad.dtype)
        for p in range(kh):                          # the kernel's order: p, then q, ascending
            i, ri = np.divmod(y - p, sh)
            ok_i = (ri == 0) & (i >= 0) & (i < Ho)
            for q in range(kw):
                j, rj = np.divmod(x - q, sw)
                ok = ok_i & (rj == 0) & (j >= 0) & (j < Wo)
                off = ((n * Ho + i) * Wo + j) * sR + ((p * kw + q) * C + c) * sK
                acc[ok] += src[off[ok]]
        _memory(dx_pad, total)[...] = acc
    else:
        raise NotImplementedError(f"no NumPy twin for kernel {name}")
