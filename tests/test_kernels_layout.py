"""``tinygan.kernels.layout`` against its contract, array by array (torch-free; the ``kernels`` mutation group).

The kernels fall back to plain NumPy whenever :func:`layout.lines` says None, so their results cannot show a
wrong or missing view; these tests check ``lines`` itself:

* the kind and (A, B, T) the module docstring defines for each layout (a slow reference below);
* the views: the same index is the same element in every array (the arrays hold the element ids of an NCHW
  C-order numbering), every element appears exactly once, the last axis has unit stride, no copies;
* the blocks: a partition of the view in order, of about ``BLOCK_BYTES`` each (whole slabs when a slab fits);
* ``channel_vector`` / ``for_block`` give each element's channel, ``block_sum`` / ``block_count`` each
  channel's sum and count in a block;
* ``dense_order``, ``_merge_factor``, ``same_shape_views``, ``total_bytes``.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

from tinygan.kernels import layout, threads


# ---------------------------------------------------------------------------- references

def _offsets(a):
    """Byte offset of every element of a (in C index order) from the element at index 0."""
    idx = np.indices(a.shape).reshape(a.ndim, -1)
    return (np.array(a.strides)[:, None] * idx).sum(axis=0)


def _dense(a):
    """No gaps, no overlaps, positive strides on the axes longer than 1."""
    if any(s <= 0 for n, s in zip(a.shape, a.strides) if n > 1):
        return False
    return np.array_equal(np.sort(_offsets(a)), np.arange(a.size) * a.itemsize)


def _merge_ref(b, t):
    """The largest k dividing b with k t <= LINE_MAX (1 when none)."""
    return max([k for k in range(1, b + 1) if b % k == 0 and k * t <= layout.LINE_MAX] or [1])


def _ok(n, s, want):
    return n == 1 or s == want


def _expected(arrays, channels):
    """(kind, (A, B, T)) as the module docstring defines them, or None."""
    a0 = arrays[0]
    if any(a.shape != a0.shape or a.itemsize != a0.itemsize for a in arrays) or a0.size == 0:
        return None
    item = a0.itemsize
    if not channels:
        same = all(np.array_equal(_offsets(a), _offsets(a0)) for a in arrays)
        if same and all(_dense(a) for a in arrays):
            return "flat", (1, 1, a0.size)
    if a0.ndim not in (2, 4):
        return None
    arrays4 = [a.reshape(a.shape + (1, 1)) if a.ndim == 2 else a for a in arrays]
    N, C, H, W = arrays4[0].shape
    if all(_ok(C, a.strides[1], item) and _ok(W, a.strides[3], C * item) for a in arrays4):
        A, B, T = N, H, W * C
        sB = [a.strides[2] for a in arrays4]
        if all(_ok(N, a.strides[0], H * a.strides[2]) or H == 1 for a in arrays4):
            A, B = 1, N * H
            sB = [a.strides[2] if H > 1 else a.strides[0] for a in arrays4]
        if T < layout.LINE_MIN and A == 1 and all(_ok(B, s, T * item) for s in sB):
            k = _merge_ref(B, T)
            B, T = B // k, T * k
        return "cl", (A, B, T)
    if all(_ok(W, a.strides[3], item) and _ok(H, a.strides[2], W * item) for a in arrays4):
        return "pl", (N, C, H * W)
    return None


def _ids(shape, dtype=np.float64):
    return np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape).astype(dtype)


def _channel_of(ids, shape):
    """The channel (axis 1) of the element with C-order id ``ids`` in an array of ``shape``."""
    inner = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return (np.asarray(ids).astype(np.int64) // inner) % shape[1]


def _check(arrays, spec, channels):
    """Every promise of a Lines object for these arrays (whose values are element ids)."""
    a0 = arrays[0]
    item = a0.itemsize
    exp = _expected(arrays, channels)
    if spec is None:
        assert exp is None
        return
    assert exp is not None and (spec.kind, (spec.A, spec.B, spec.T)) == exp
    if channels:
        assert spec.kind in ("cl", "pl")
    assert spec.nbytes == a0.size * item
    views = spec.views(arrays)
    assert len(views) == len(arrays)
    for a, v in zip(arrays, views):
        assert np.shares_memory(a, v) or a.size == 0
        if spec.kind == "flat":
            assert v.shape == (a0.size,) and v.strides == (item,)
        else:
            assert v.shape == (spec.A, spec.B, spec.T) and v.strides[2] == item
        np.testing.assert_array_equal(v, views[0])                   # the same index, the same element
    np.testing.assert_array_equal(np.sort(views[0].ravel()), np.arange(a0.size))   # each element once
    # the blocks: a partition, in order, of about BLOCK_BYTES
    v = views[0]
    covered = []
    if spec.kind == "flat":
        per = max(1, threads.BLOCK_BYTES // item)
        starts = [b[0] for b in spec.blocks]
        assert starts == list(range(0, spec.T, per))
        for i, blk in enumerate(spec.blocks):
            part = spec.part(v, i)
            assert part.shape == (blk[1] - blk[0],) and len(part) == min(per, spec.T - blk[0])
            covered.append(part.ravel())
    else:
        slab = spec.B * spec.T * item
        if slab <= threads.BLOCK_BYTES:
            per = max(1, threads.BLOCK_BYTES // slab)
            assert [b[0] for b in spec.blocks] == ["a"] * len(spec.blocks)
            assert [(b[1], b[2]) for b in spec.blocks] == [(s, min(spec.A, s + per)) for s in range(0, spec.A, per)]
        else:
            per = max(1, threads.BLOCK_BYTES // (spec.T * item))
            cuts = [(s, min(spec.B, s + per)) for s in range(0, spec.B, per)]
            assert [b[0] for b in spec.blocks] == ["b"] * len(spec.blocks)
            assert [tuple(b[1:]) for b in spec.blocks] == [(a,) + c for a in range(spec.A) for c in cuts]
        for i in range(len(spec.blocks)):
            covered.append(spec.part(v, i).ravel())
    np.testing.assert_array_equal(np.concatenate(covered), v.ravel())
    if spec.kind == "flat":
        return
    # per-channel vectors, sums and counts
    shape = a0.shape
    C = shape[1]
    assert spec.channels == C
    vec = spec.channel_vector(np.arange(C, dtype=np.float64))
    for i in range(len(spec.blocks)):
        part = spec.part(v, i)
        chan = _channel_of(part, shape)
        np.testing.assert_array_equal(np.broadcast_to(spec.for_block(vec, i), part.shape), chan)
        out = np.full(C, np.nan)
        spec.block_sum(part, i, out)
        np.testing.assert_array_equal(out, np.bincount(chan.ravel(), weights=part.ravel().astype(np.float64),
                                                       minlength=C))
        cnt = np.full(C, -1, dtype=np.int64)
        spec.block_count(i, cnt)
        np.testing.assert_array_equal(cnt, np.bincount(chan.ravel(), minlength=C))


# ---------------------------------------------------------------------------- layouts

def _channels_last(x):
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def _cropped(x):
    n, c, h, w = x.shape
    big = np.full((n, h + 2, w + 3, c), -1.0, x.dtype)
    big[:, 1:h + 1, 2:w + 2, :] = x.transpose(0, 2, 3, 1)
    return big[:, 1:h + 1, 2:w + 2, :].transpose(0, 3, 1, 2)


def _planes_gapped(x):
    """NCHW with contiguous H*W planes, but a gap between channels."""
    n, c, h, w = x.shape
    big = np.full((n, c + 1, h, w), -1.0, x.dtype)
    big[:, :c] = x
    return big[:, :c]


def _strided_rows(x):
    """A view whose W axis is not unit-stride: neither channels-last nor planes."""
    n, c, h, w = x.shape
    big = np.full((n, c, h, 2 * w), -1.0, x.dtype)
    big[..., ::2] = x
    return big[..., ::2]


MAKERS = {
    "contiguous": np.ascontiguousarray,
    "fortran": np.asfortranarray,
    "channels-last": _channels_last,
    "cropped": _cropped,
    "planes-gapped": _planes_gapped,
    "strided-rows": _strided_rows,
}
SHAPES = [(2, 3, 4, 5), (1, 3, 4, 5), (2, 1, 4, 5), (2, 3, 1, 5), (2, 3, 4, 1), (3, 4, 2, 2), (1, 1, 1, 1),
          (4, 16, 8, 8), (2, 4, 4, 4)]                   # the last: a (C, H*W) slab of exactly 256 bytes


@pytest.fixture(params=["default", "small", "tiny"])
def sizes(request, monkeypatch):
    """The module's block and line sizes, small ones (several blocks, merged and unmerged lines on these
    arrays), and one-element blocks."""
    if request.param == "small":
        monkeypatch.setattr(threads, "BLOCK_BYTES", 256)
        monkeypatch.setattr(layout, "LINE_MIN", 24)
        monkeypatch.setattr(layout, "LINE_MAX", 48)
    elif request.param == "tiny":
        monkeypatch.setattr(threads, "BLOCK_BYTES", 8)
        monkeypatch.setattr(layout, "LINE_MIN", 4)
        monkeypatch.setattr(layout, "LINE_MAX", 8)
    return request.param


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_lines_of_one_or_two_arrays_in_every_layout(shape, sizes):
    dtype = np.float64 if shape[0] == 3 else np.float32
    ids = _ids(shape, dtype)
    made = {name: make(ids) for name, make in MAKERS.items()}
    for channels in (False, True):
        for a1 in made.values():
            _check([a1], layout.lines([a1], channels=channels), channels)
        for a1, a2 in itertools.combinations(made.values(), 2):
            _check([a1, a2], layout.lines([a1, a2], channels=channels), channels)
        same = [m(ids) for m in MAKERS.values()]
        for a1, a2 in zip(made.values(), same):                          # two arrays of the same layout
            _check([a1, a2, a1], layout.lines([a1, a2, a1], channels=channels), channels)
    for a in made.values():
        _check([a], layout.lines([a]), False)                            # channels defaults to False


@pytest.mark.parametrize("shape", [(6, 4), (1, 4), (6, 1), (5, 3)], ids=str)
def test_lines_of_2d_arrays(shape, sizes):
    ids = _ids(shape)
    variants = {"c": np.ascontiguousarray(ids), "f": np.asfortranarray(ids),
                "reversed": np.ascontiguousarray(ids[::-1])[::-1], "cols": np.ascontiguousarray(ids.T).T[:, :]}
    wide = np.full((shape[0], 2 * shape[1]), -1.0)
    wide[:, ::2] = ids
    variants["gapped"] = wide[:, ::2]
    for channels in (False, True):
        for a1, a2 in itertools.product(variants.values(), repeat=2):
            _check([a1, a2], layout.lines([a1, a2], channels=channels), channels)


def test_the_kinds_the_docstring_names():
    x = _ids((2, 3, 4, 5))
    spec = layout.lines([x, np.empty_like(x)])
    assert spec.kind == "flat" and (spec.A, spec.B, spec.T) == (1, 1, 120)
    assert layout.lines([x, np.asfortranarray(x)]) is None                 # dense, different orders, 4-D: no view
    spec = layout.lines([x, np.empty_like(x)], channels=True)
    assert spec.kind == "pl" and (spec.A, spec.B, spec.T) == (2, 3, 20)
    nhwc = _channels_last(x)
    spec = layout.lines([nhwc, _channels_last(x)], channels=True)
    assert spec.kind == "cl" and (spec.A, spec.B, spec.T) == (1, 1, 120)   # all 8 rows of 15 merged into one line
    spec = layout.lines([_cropped(x), _cropped(x)])
    assert spec.kind == "cl" and (spec.A, spec.B, spec.T) == (2, 4, 15)    # rows of a cropped buffer: not adjacent
    assert layout.lines([_strided_rows(x)]) is None
    assert layout.lines([_ids((2, 3, 4))[:, :, ::2]]) is None               # 3-D and not dense
    assert layout.lines([_ids((2, 3, 4))], channels=True) is None          # 3-D: no channel axis to follow
    assert layout.lines([_ids((2, 3, 4, 5)), _ids((2, 3, 5, 4))]) is None  # shapes differ
    assert layout.lines([_ids((2, 3)), _ids((2, 3), np.float32)]) is None  # item sizes differ
    assert layout.lines([np.zeros((0, 3))]) is None and layout.lines([np.zeros((0, 3, 2, 2))], channels=True) is None


def test_extent_one_strides_do_not_matter_for_flat():
    a = np.arange(12.0).reshape(3, 1, 4)
    b = np.arange(12.0).reshape(3, 4)[:, None, :]                   # stride 0 on the extent-1 axis
    assert a.strides[1] != b.strides[1]
    spec = layout.lines([a, b])
    assert spec is not None and spec.kind == "flat"
    _check([a, b], spec, False)
    t = np.arange(24.0).reshape(2, 3, 4).transpose(1, 0, 2)[:, None]   # neither C nor F order, a 0 stride
    assert not (t.flags.c_contiguous or t.flags.f_contiguous) and 0 in t.strides
    spec = layout.lines([t, t.copy(order="K")])
    assert spec is not None and spec.kind == "flat"
    _check([t, t], spec, False)
    c, f = np.arange(4.0).reshape(2, 2), np.asfortranarray(np.arange(4.0).reshape(2, 2))
    _check([c, f], layout.lines([c, f]), False)                      # extent-2 axes do matter


def test_a_flat_view_that_would_need_a_copy_is_refused():
    spec = layout.lines([np.zeros(2)])
    with pytest.raises(AssertionError, match="^layout: a flat view needed a copy$"):
        spec.views([np.zeros((2, 2))[:, 0]])
    spec = layout.lines([np.zeros((3, 4))])
    with pytest.raises(AssertionError, match="^layout: a flat view needed a copy$"):
        spec.views([np.zeros((3, 8))[:, ::2]])


# ---------------------------------------------------------------------------- helpers

def _dense_cases():
    base = np.zeros((2, 3, 4), np.float32)
    yield base
    yield np.asfortranarray(base)
    yield base.transpose(1, 0, 2)                 # dense, neither C nor F order
    yield base.transpose(2, 0, 1)
    yield np.zeros((3, 1, 4), np.float32)         # an extent-1 axis: not among the strides
    yield np.zeros((1, 5), np.float32)
    yield np.zeros((2, 2), np.float64).T
    yield np.zeros((3, 1, 4))[:, :, :].transpose(2, 1, 0)
    yield base.transpose(1, 0, 2)[:, None]        # dense, not C/F ordered, an extent-1 axis of stride 0


def _not_dense_cases():
    base = np.zeros((4, 6, 8), np.float32)
    yield base[:, ::2]
    yield base[:, :, 1:]
    yield base[::-1]
    yield base[:, ::-1].transpose(1, 0, 2)
    yield np.broadcast_to(np.zeros(4, np.float32), (3, 4))
    yield as_strided(np.zeros(8, np.float32), shape=(3, 4), strides=(8, 4))      # overlapping rows


def test_dense_order():
    for a in _dense_cases():
        assert _dense(a)
        assert layout.dense_order(a) == tuple(s for n, s in zip(a.shape, a.strides) if n > 1), (a.shape, a.strides)
    for a in _not_dense_cases():
        assert not _dense(a)
        assert layout.dense_order(a) is None, (a.shape, a.strides)


def test_merge_factor_is_the_largest_divisor_that_fits():
    for b in range(1, 70):
        for t in (1, 3, 7, 100, 1000, 4096, 5000, 16384, 20000):
            assert layout._merge_factor(b, t) == _merge_ref(b, t), (b, t)
    assert layout._merge_factor(3, 0) == 3                              # a zero-length line counts as 1


def test_same_shape_views_and_total_bytes(monkeypatch):
    monkeypatch.setattr(threads, "BLOCK_BYTES", 256)
    x = _ids((2, 3, 4, 5))
    for make in (np.ascontiguousarray, _channels_last, _cropped):
        a, b = make(x), make(x)
        for channels in (False, True):
            spec = layout.lines([a], channels=channels)
            got = layout.same_shape_views([b, a], spec)
            assert got is not None and len(got) == 2
            for v, w in zip(got, spec.views([a, a])):
                np.testing.assert_array_equal(v, w)
                assert v.shape == w.shape
            assert np.shares_memory(got[0], b) and np.shares_memory(got[1], a)
    spec = layout.lines([x])                                             # flat
    assert layout.same_shape_views([_cropped(x)], spec) is None          # another kind
    assert layout.same_shape_views([_strided_rows(x)], spec) is None     # no view at all
    spec = layout.lines([_cropped(x)])                                   # cl, (2, 4, 15)
    assert layout.same_shape_views([_cropped(x[:1].repeat(2, 0))], spec) is not None
    assert layout.same_shape_views([_channels_last(x)], layout.lines([_cropped(x)], channels=True)) is None
    assert layout.same_shape_views([x], layout.lines([x], channels=True)) is not None
    assert layout.total_bytes([np.zeros((2, 3), np.float32), np.zeros(5), np.zeros((0, 4))]) == 24 + 40
    assert layout.total_bytes([]) == 0
