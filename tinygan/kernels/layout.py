"""Blocked views of NumPy arrays for the threaded element-wise kernels (the CPU path only).

The element-wise kernels (batch norm, LeakyReLU) take arrays in whatever
layout the layer before handed over: C-contiguous NCHW, an NCHW view of a
dense NHWC buffer (what the convolution kernels return), or an NCHW view of a
*cropped* NHWC buffer (a transposed convolution's output: every row of W*C
numbers is contiguous, the rows are not).  :func:`lines` finds one view of
shape (A, B, T) for each of several same-shaped arrays such that

* the same index means the same element in every view,
* the last axis (T numbers) has unit stride in every view ("a line"),

and cuts it into blocks of about :data:`tinygan.kernels.threads.BLOCK_BYTES`
(:meth:`Lines.part`): whole ranges of ``a`` when a slab ``(B, T)`` is small,
otherwise line ranges inside one ``a``.  Three kinds:

* ``"flat"``: every array dense with the same strides (any axis order): one
  line of all the elements, blocks are element ranges;
* ``"cl"`` (channels-last): the channel axis is innermost, T = W*C (more
  rows merged when they are adjacent in every array), so a per-channel
  vector is *tiled* T/C times along a line (:meth:`Lines.channel_vector`);
* ``"pl"`` (planes): NCHW with contiguous H*W planes; B is the channel axis,
  T = H*W, a per-channel vector has shape (C, 1).

``None`` means no such view: the kernels then run their plain NumPy code.
"""
from __future__ import annotations

import math

import numpy
from numpy.lib.stride_tricks import as_strided

from tinygan.kernels import threads

# NumPy broadcasts a per-channel vector row by row, about 4 us slower per 64K numbers on lines
# of 2048 than on lines of 16384 (measured here); dense
# channels-last arrays merge adjacent rows up to LINE_MAX numbers.
LINE_MIN = 8192
LINE_MAX = 16384


def _ok(n: int, stride: int, want: int) -> bool:
    return n == 1 or stride == want


def _as4(a):
    """(N, C) -> (N, C, 1, 1) view; 4-D arrays unchanged."""
    return a.reshape(a.shape + (1, 1)) if a.ndim == 2 else a


def dense_order(a):
    """Strides of ``a`` if it is dense (no gaps, no overlaps, positive strides, any axis order), else None."""
    if a.flags.c_contiguous or a.flags.f_contiguous:
        return tuple(s for n, s in zip(a.shape, a.strides) if n > 1)
    dims = sorted(((s, n) for n, s in zip(a.shape, a.strides) if n > 1), reverse=True)
    expect = a.itemsize
    for s, n in reversed(dims):
        if s != expect:
            return None
        expect *= n
    return tuple(s for n, s in zip(a.shape, a.strides) if n > 1)


class Lines:
    """(A, B, T) views of same-shaped arrays and the blocks they are cut into (see the module docstring)."""

    def __init__(self, kind: str, shape: tuple, dims: tuple, strides: list, itemsize: int, channels: int):
        self.kind, self.shape, self.channels = kind, shape, channels
        self.A, self.B, self.T = dims
        self.strides = strides                      # per array: (sA, sB) in bytes
        self.itemsize = itemsize
        line = self.T * itemsize
        if kind == "flat":
            per = max(1, threads.BLOCK_BYTES // itemsize)
            self.blocks = [(s, min(self.T, s + per)) for s in range(0, self.T, per)]
        elif self.B * line <= threads.BLOCK_BYTES:                # whole slabs of B lines
            self.blocks = [("a", a0, a1) for a0, a1 in threads.blocks(self.A, self.B * line)]
        else:                                                     # line ranges inside one slab
            per = threads.blocks(self.B, line)
            self.blocks = [("b", a, b0, b1) for a in range(self.A) for b0, b1 in per]
        self.nbytes = self.A * self.B * self.T * itemsize

    def views(self, arrays):
        """The (A, B, T) view of each array (1-D for "flat"), in the order :func:`lines` was given them."""
        out = []
        for a, (sa, sb) in zip(arrays, self.strides):
            if self.kind == "flat":
                flat = a.ravel(order="K")                  # dense: a view in memory order
                if flat.base is None and a.size > 1:       # (never a copy: lines() checked the layout)
                    raise AssertionError("layout: a flat view needed a copy")
                out.append(flat)
            else:
                out.append(as_strided(a, shape=(self.A, self.B, self.T), strides=(sa, sb, a.itemsize)))
        return out

    def part(self, v, i: int):
        """Block ``i`` of a view ``v``: 1-D (flat), (a1 - a0, B, T) or (b1 - b0, T)."""
        blk = self.blocks[i]
        if self.kind == "flat":
            return v[blk[0]:blk[1]]
        if blk[0] == "a":
            return v[blk[1]:blk[2]]
        return v[blk[1], blk[2]:blk[3]]

    # --- per-channel vectors and reductions (kinds "cl" and "pl") ------------------------------
    def channel_vector(self, v):
        """A per-channel vector (C,) shaped to broadcast against the blocks (before :meth:`for_block`)."""
        if self.kind == "cl":
            return numpy.tile(v, self.T // self.channels)             # (T,): the channel pattern of a line
        return v.reshape(-1, 1)                                       # (C, 1): B is the channel axis

    def for_block(self, vec, i: int):
        """``vec`` from :meth:`channel_vector`, restricted to block ``i``."""
        blk = self.blocks[i]
        if self.kind == "pl" and blk[0] == "b":
            return vec[blk[2]:blk[3]]
        return vec

    def block_sum(self, b, i: int, out):
        """Per-channel sums of block ``b`` (``self.part(., i)``) into ``out`` (C,), zeros where the block has none."""
        blk = self.blocks[i]
        if self.kind == "cl":
            s = numpy.add.reduce(b, axis=(0, 1) if b.ndim == 3 else 0)           # (T,)
            numpy.add.reduce(s.reshape(-1, self.channels), axis=0, out=out)
        elif blk[0] == "a":
            numpy.add.reduce(b, axis=(0, 2), out=out)                          # (C,)
        else:
            out.fill(0)
            numpy.add.reduce(b, axis=1, out=out[blk[2]:blk[3]])

    def block_count(self, i: int, out) -> None:
        """How many elements of each channel block ``i`` holds, into ``out`` (C,)."""
        blk = self.blocks[i]
        if self.kind == "cl":
            lines = (blk[2] - blk[1]) * self.B if blk[0] == "a" else blk[3] - blk[2]
            out.fill(lines * (self.T // self.channels))
        elif blk[0] == "a":
            out.fill((blk[2] - blk[1]) * self.T)
        else:
            out.fill(0)
            out[blk[2]:blk[3]] = self.T


def _flat(arrays):
    a0 = arrays[0]
    strides = a0.strides
    if any(a.strides != strides for a in arrays[1:]):
        # the same memory order is enough: strides of extent-1 axes do not matter
        if any(any(sa != sb for n, sa, sb in zip(a.shape, a.strides, strides) if n > 1) for a in arrays[1:]):
            return None
    if not (a0.flags.c_contiguous or a0.flags.f_contiguous):
        if dense_order(a0) is None or any(s < 0 for s in strides):
            return None
    return Lines("flat", a0.shape, (1, 1, a0.size), [(0, 0)] * len(arrays), a0.itemsize, 1)


def _channels_last(arrays4, item):
    N, C, H, W = arrays4[0].shape
    for a in arrays4:
        sN, sC, sH, sW = a.strides
        if not (_ok(C, sC, item) and _ok(W, sW, C * item)):
            return None
    T, A, B = W * C, N, H
    strides = [(a.strides[0], a.strides[2]) for a in arrays4]
    if all(_ok(N, sN, H * sH) or H == 1 for sN, sH in strides):       # rows of consecutive images adjacent
        strides = [(0, sH if H > 1 else sN) for sN, sH in strides]
        A, B = 1, N * H
    if T < LINE_MIN and A == 1 and all(_ok(B, sB, T * item) for _, sB in strides):
        k = _merge_factor(B, T)                                        # adjacent lines into one
        if k > 1:
            B, T = B // k, T * k
            strides = [(0, T * item) for _ in strides]
    return Lines("cl", arrays4[0].shape, (A, B, T), strides, item, C)


def _merge_factor(b: int, t: int) -> int:
    """The largest k dividing ``b`` with k * t <= LINE_MAX (1 when none)."""
    kmax = LINE_MAX // max(t, 1)
    if b <= kmax:
        return b
    for k in range(kmax, 1, -1):
        if b % k == 0:
            return k
    return 1


def _planes(arrays4, item):
    N, C, H, W = arrays4[0].shape
    for a in arrays4:
        sN, sC, sH, sW = a.strides
        if not (_ok(W, sW, item) and _ok(H, sH, W * item)):
            return None
    strides = [(a.strides[0], a.strides[1]) for a in arrays4]
    return Lines("pl", arrays4[0].shape, (N, C, H * W), strides, item, C)


def lines(arrays, channels: bool = False):
    """A :class:`Lines` for same-shaped NumPy arrays, or None.

    ``channels=False`` (element-wise work): any of the three kinds, "flat"
    first.  ``channels=True`` (per-channel work on (N, C) or (N, C, H, W)):
    "cl" or "pl", so that every line holds whole channel patterns.
    """
    a0 = arrays[0]
    item = a0.itemsize
    if any(a.shape != a0.shape or a.itemsize != item for a in arrays) or a0.size == 0:
        return None
    if not channels:
        found = _flat(arrays)
        if found is not None or a0.ndim not in (2, 4):
            return found
    elif a0.ndim not in (2, 4):
        return None
    arrays4 = [_as4(a) for a in arrays]
    return _channels_last(arrays4, item) or _planes(arrays4, item)


def same_shape_views(arrays, spec: Lines):
    """``spec.views(arrays)`` for arrays that :func:`lines` did not see, if their strides fit ``spec``; else None."""
    probe = lines(arrays, channels=spec.kind != "flat")
    if probe is None or probe.kind != spec.kind or (probe.A, probe.B, probe.T) != (spec.A, spec.B, spec.T):
        return None
    return probe.views(arrays)


def total_bytes(arrays) -> int:
    return sum(int(math.prod(a.shape)) * a.itemsize for a in arrays)
