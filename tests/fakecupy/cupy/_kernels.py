"""``ElementwiseKernel``, ``ReductionKernel``, ``RawKernel`` of the CPU stand-in.

Each kernel object keeps the CUDA source it is given and, when called,
checks its arguments as CuPy does, then runs that source compiled for the
host (``fakecupy.hostbuild``): the registry's entries from one prebuilt
library, anything else compiled on first use (both cached on disk).  With
``FAKECUPY_KERNELS=twins``, or when no C++ compiler is found, registry
kernels run their NumPy twins (``fakecupy.twins``) instead.

Element-wise kernels see their operands as CuPy would after broadcasting
(each one copied into a C-contiguous buffer of the broadcast shape, ``raw``
ones whole) and their outputs are copied back through the outputs' strides;
reductions see their inputs with the reduced axes first.  Raw kernels get
the device arrays' own memory, as on a GPU, and run every (block, thread) of
the launch; their arguments are checked against the C signature.
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import math
import os
import sys

import numpy as _np

from cupy import _SCALAR_TYPES, _new, _poison, cuda, ndarray, stats

_CTYPES = {"float32": ctypes.c_float, "float64": ctypes.c_double, "bool": ctypes.c_bool,
           "int32": ctypes.c_int, "int64": ctypes.c_longlong, "uint32": ctypes.c_uint,
           "uint64": ctypes.c_ulonglong, "int8": ctypes.c_byte, "uint8": ctypes.c_ubyte,
           "int16": ctypes.c_short, "uint16": ctypes.c_ushort}


def _hostbuild():
    try:
        from fakecupy import hostbuild
    except ImportError:                       # tests/ not on sys.path (a CLI run on the stand-in)
        sys.path.append(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
        from fakecupy import hostbuild
    return hostbuild


def _twins():
    _hostbuild()
    from fakecupy import twins
    return twins


def mode() -> str:
    """``"host"`` (compiled CUDA sources) or ``"twins"`` (NumPy), from ``FAKECUPY_KERNELS`` and the compiler."""
    m = os.environ.get("FAKECUPY_KERNELS", "auto")
    if m == "auto":
        return "host" if _hostbuild().host_compiler() else "twins"
    if m not in ("host", "twins"):
        raise ValueError(f"FAKECUPY_KERNELS must be auto, host or twins, got {m!r}")
    return m


@functools.lru_cache(maxsize=None)
def _registry() -> dict:
    """CUDA function name -> rendered registry entry, for every variant."""
    from tinygan.kernels.cuda import sources as S
    out = {}
    for e in S.REGISTRY.values():
        for dtype, itype in S.variants(e):
            r = S.render(e, dtype, itype)
            for fn in r.function_names:
                out[fn] = r
    return out


@functools.lru_cache(maxsize=None)
def _registry_library():
    hb = _hostbuild()
    source, _ = hb.translation_unit(host_launchers=True)
    return hb.host_library(source)


def _custom_library(source: str):
    return _hostbuild().host_library(_hostbuild().with_launchers(source))


def _check_nvrtc() -> None:
    cuda._nvrtc_version()          # FAKECUPY_BROKEN=nvrtc: compiling fails as without libnvrtc


@contextlib.contextmanager
def record_launches():
    """Within the block, ``cupy.stats.log`` collects one dict per custom kernel launch (stand-in only)."""
    old = stats.log
    stats.log = []
    try:
        yield stats.log
    finally:
        stats.log = old


def _element_strides(a: _np.ndarray) -> tuple:
    return tuple(s // a.itemsize for s in a.strides)


def collapsed_ndim(shape, strides_list) -> int:
    """How many dimensions CuPy's indexer keeps after merging (``_reduce_dims``): 1 for contiguous operands."""
    dims = [d for d, n in enumerate(shape) if n != 1]
    if not dims:
        return 0
    groups, cur = 1, dims[0]
    for d in dims[1:]:
        if all(st[cur] == st[d] * shape[d] for st in strides_list):
            cur = d                      # merged: the group continues with d's strides
        else:
            groups, cur = groups + 1, d
    return groups


def _log(entry: dict) -> None:
    stats.launches += 1
    stats.kernels[entry["name"]] += 1
    if stats.log is not None:
        stats.log.append(entry)


def _classify(kernel: str, params, args):
    """(arrays, scalars) of the inputs, checked as CuPy does (dtypes equal, scalars cast to the parameter type)."""
    arrays, scalars = {}, {}
    for (raw, typ, name), a in zip(params, args):
        if isinstance(a, ndarray):
            if a.dtype != _np.dtype(typ):
                raise TypeError(f"Type is mismatched. {name} {a.dtype} {typ}")
            arrays[name] = a._a
        elif isinstance(a, _np.ndarray):
            raise TypeError(f"Unsupported type {type(a)}")
        elif isinstance(a, _SCALAR_TYPES):
            if raw:
                raise TypeError(f"{kernel}: raw parameter {name} needs a cupy.ndarray")
            scalars[name] = _np.dtype(typ).type(a)
        else:
            raise TypeError(f"Unsupported type {type(a)}")
    return arrays, scalars


def _parse(params: str):
    from tinygan.kernels.cuda import sources as S
    out = S.parse_params(params)
    for raw, typ, name in out:
        if typ not in _CTYPES:
            raise NotImplementedError(f"stand-in: kernel parameter type {typ!r} (only concrete dtypes, "
                                      f"as tinygan's registry uses)")
    return out


class ElementwiseKernel:
    """``cupy.ElementwiseKernel`` on the host (see the module docstring)."""

    def __init__(self, in_params, out_params, operation, name="kernel", reduce_dims=True, preamble="",
                 no_return=False, return_tuple=False, loop_prep="", after_loop="", options=()):
        if loop_prep or after_loop:
            raise NotImplementedError("stand-in: loop_prep/after_loop")
        self.in_params_str, self.out_params_str = in_params, out_params
        self.in_params, self.out_params = _parse(in_params), _parse(out_params)
        self.operation, self.name, self.preamble = operation, name, preamble
        self.no_return, self.return_tuple = no_return, return_tuple
        self._libs = {}

    def _registry_match(self, scalars) -> object | None:
        r = _registry().get(self.name)
        if (r is not None and r.kind == "elementwise" and r.in_params == self.in_params_str
                and r.out_params == self.out_params_str and r.source.operation == self.operation
                and r.preamble == self.preamble and set(scalars) == set(r.source.scalars)):
            return r
        return None

    def _function(self, scalars):
        key = frozenset(scalars)
        if key not in self._libs:
            _check_nvrtc()
            if self._registry_match(scalars) is not None:
                lib = _registry_library()
            else:
                uid = hashlib.sha1(repr((self.in_params_str, self.out_params_str, self.operation,
                                         self.preamble, sorted(key))).encode()).hexdigest()[:12]
                lib = _custom_library(_hostbuild().elementwise_source(
                    self.name, self.in_params_str, self.out_params_str, self.operation, self.preamble,
                    key, f"custom_{uid}"))
            self._libs[key] = getattr(lib, f"{self.name}__launch")
        return self._libs[key]

    def __call__(self, *args, size=None, block_size=None, stream=None):
        nin, nout = len(self.in_params), len(self.out_params)
        if len(args) not in (nin, nin + nout):
            raise TypeError(f"Wrong number of arguments for {self.name!r}")
        ins, outs = args[:nin], list(args[nin:])
        arrays, scalars = _classify(self.name, self.in_params, ins)
        for (raw, typ, name), o in zip(self.out_params, outs):
            if not isinstance(o, ndarray):
                raise TypeError("Output arguments type must be cupy.ndarray")
            if o.dtype != _np.dtype(typ):
                raise TypeError(f"Type is mismatched. {name} {o.dtype} {typ}")
        shapes = [arrays[n].shape for raw, _, n in self.in_params if n in arrays and not raw]
        shapes += [o.shape for (raw, _, _), o in zip(self.out_params, outs) if not raw]
        if size is not None:
            raise NotImplementedError("stand-in: ElementwiseKernel(size=...)")
        if not shapes:
            raise ValueError("Loop size is Undecided")
        shape = _np.broadcast_shapes(*shapes)
        for (raw, _, _), o in zip(self.out_params, outs):
            if not raw and o.shape != shape:
                raise ValueError("Out shape is mismatched")
        if not outs:
            if any(raw for raw, _, _ in self.out_params):
                raise ValueError("Output array size is Undecided")
            outs = []
            for _, typ, _ in self.out_params:
                a = _np.empty(shape, dtype=typ)
                _poison(a)
                outs.append(_new(a))
        views = {}
        for raw, _, n in self.in_params:
            if n in arrays:
                views[n] = arrays[n] if raw else _np.broadcast_to(arrays[n], shape)
        views.update({n: o._a for (_, _, n), o in zip(self.out_params, outs)})
        raw_names = {n for raw, _, n in self.in_params + self.out_params if raw}
        operands = [v for n, v in views.items() if n not in raw_names]
        _log({"name": self.name, "kind": "elementwise", "shape": shape,
              "operands": {n: (v.shape, _element_strides(v)) for n, v in views.items()},
              "collapsed_ndim": collapsed_ndim(shape, [_element_strides(v) for v in operands])})
        n = math.prod(shape)
        if n:
            self._run(arrays, scalars, outs, shape, n)
        if self.no_return:
            return None
        if len(outs) == 1 and not self.return_tuple:
            return outs[0]
        return tuple(outs)

    def _run(self, arrays, scalars, outs, shape, n):
        bufs = {}
        for raw, typ, name in self.in_params:
            if name in arrays:
                a = arrays[name]
                bufs[name] = _np.ascontiguousarray(a if raw else _np.broadcast_to(a, shape)).copy()
        for (raw, typ, name), o in zip(self.out_params, outs):
            bufs[name] = _np.array(o._a, order="C", copy=True)
        if mode() == "twins":
            r = self._registry_match(scalars)
            if r is None:
                raise NotImplementedError(f"stand-in without a C++ compiler: kernel {self.name} is not in "
                                          "tinygan's registry, so it has no NumPy twin")
            _twins().elementwise(r.source.name, bufs, scalars, n)
        else:
            fn = self._function(scalars)
            argv, types = [1, 1], [ctypes.c_uint, ctypes.c_uint]
            for raw, typ, name in self.in_params + self.out_params:
                if name in scalars:
                    argv.append(_CTYPES[typ](scalars[name].item()))
                    types.append(_CTYPES[typ])
                else:
                    argv.append(bufs[name].ctypes.data_as(ctypes.c_void_p))
                    types.append(ctypes.c_void_p)
            argv.append(n)
            types.append(ctypes.c_longlong)
            fn.argtypes, fn.restype = types, None
            fn(*argv)
        for (raw, typ, name), o in zip(self.out_params, outs):
            o._a[...] = bufs[name].reshape(o.shape)


class ReductionKernel:
    """``cupy.ReductionKernel`` on the host (see the module docstring)."""

    def __init__(self, in_params, out_params, map_expr, reduce_expr, post_map_expr, identity,
                 name="reduce_kernel", reduce_type=None, reduce_dims=True, preamble="", options=()):
        self.in_params_str, self.out_params_str = in_params, out_params
        self.in_params, self.out_params = _parse(in_params), _parse(out_params)
        if len(self.out_params) != 1:
            raise NotImplementedError("stand-in: one output per ReductionKernel")
        from tinygan.kernels.cuda import sources as S
        self.map_expr, self.reduce_expr, self.post_map_expr = map_expr, reduce_expr, post_map_expr
        self.identity, self.name, self.preamble = identity, name, preamble
        self.reduce_type = reduce_type or S.DTYPES.get(self.out_params[0][1], self.out_params[0][1])
        self._libs = {}

    def _registry_match(self, scalars):
        r = _registry().get(self.name)
        s = None if r is None else r.source
        if (r is not None and r.kind == "reduction" and r.in_params == self.in_params_str
                and r.out_params == self.out_params_str and s.map_expr == self.map_expr
                and s.reduce_expr == self.reduce_expr and s.post_map_expr == self.post_map_expr
                and s.identity == self.identity and r.preamble == self.preamble
                and r.reduce_type == self.reduce_type and set(scalars) == set(s.scalars)):
            return r
        return None

    def _function(self, scalars):
        key = frozenset(scalars)
        if key not in self._libs:
            _check_nvrtc()
            if self._registry_match(scalars) is not None:
                lib = _registry_library()
            else:
                uid = hashlib.sha1(repr((self.in_params_str, self.out_params_str, self.map_expr,
                                         self.reduce_expr, self.post_map_expr, self.identity,
                                         self.preamble, sorted(key))).encode()).hexdigest()[:12]
                lib = _custom_library(_hostbuild().reduction_source(
                    self.name, self.in_params_str, self.out_params_str, self.map_expr, self.reduce_expr,
                    self.post_map_expr, self.identity, self.reduce_type, self.preamble, key,
                    f"custom_{uid}"))
            self._libs[key] = getattr(lib, f"{self.name}__launch")
        return self._libs[key]

    def __call__(self, *args, out=None, axis=None, keepdims=False, stream=None):
        nin = len(self.in_params)
        if len(args) not in (nin, nin + 1):
            raise TypeError(f"Wrong number of arguments for {self.name!r}")
        if len(args) == nin + 1:
            out = args[nin]
        arrays, scalars = _classify(self.name, self.in_params, args[:nin])
        if not arrays:
            raise ValueError(f"{self.name}: no array input")
        shape = _np.broadcast_shapes(*[a.shape for a in arrays.values()])
        ndim = len(shape)
        if axis is None:
            axes = tuple(range(ndim))
        else:
            axes = (axis,) if isinstance(axis, int) else tuple(axis)
            axes = tuple(sorted({a + ndim if a < 0 else a for a in axes}))
            if any(not 0 <= a < ndim for a in axes):
                raise _np.exceptions.AxisError(f"axis {axis} is out of bounds for array of dimension {ndim}")
        kept = [d for d in range(ndim) if d not in axes]
        perm = list(axes) + kept
        out_shape = tuple(shape[d] for d in kept)
        out_size, in_size = math.prod(out_shape), math.prod(shape)
        _, otyp, oname = self.out_params[0]
        views = {n: _np.broadcast_to(a, shape) for n, a in arrays.items()}
        _log({"name": self.name, "kind": "reduction", "shape": shape, "axes": axes, "out_size": out_size,
              "reduce_size": in_size // out_size if out_size else 0,
              "operands": {n: (v.shape, _element_strides(v)) for n, v in views.items()}})
        bufs = {n: _np.ascontiguousarray(v.transpose(perm)).ravel() for n, v in views.items()}
        result = _np.empty(out_size, dtype=otyp)
        _poison(result)
        if out_size:
            if mode() == "twins":
                r = self._registry_match(scalars)
                if r is None:
                    raise NotImplementedError(f"stand-in without a C++ compiler: kernel {self.name} is not in "
                                              "tinygan's registry, so it has no NumPy twin")
                _twins().reduction(r.source.name, bufs, scalars, result, in_size, out_size)
            else:
                fn = self._function(scalars)
                argv, types = [1, 1], [ctypes.c_uint, ctypes.c_uint]
                for raw, typ, name in self.in_params:
                    if name in scalars:
                        argv.append(_CTYPES[typ](scalars[name].item()))
                        types.append(_CTYPES[typ])
                    else:
                        argv.append(bufs[name].ctypes.data_as(ctypes.c_void_p))
                        types.append(ctypes.c_void_p)
                argv += [result.ctypes.data_as(ctypes.c_void_p), in_size, out_size]
                types += [ctypes.c_void_p, ctypes.c_longlong, ctypes.c_longlong]
                fn.argtypes, fn.restype = types, None
                fn(*argv)
        result = result.reshape(out_shape)
        if keepdims:
            result = result.reshape(tuple(1 if d in axes else shape[d] for d in range(ndim)))
        if out is not None:
            if not isinstance(out, ndarray) or out.shape != result.shape:
                raise ValueError("Out shape is mismatched")
            out._a[...] = result
            return out
        return _new(result)


class RawKernel:
    """``cupy.RawKernel`` on the host: the kernel runs once per emulated (block, thread) of the launch."""

    def __init__(self, code, name, options=(), backend="nvrtc", translate_cucomplex=False,
                 enable_cooperative_groups=False, jitify=False):
        self.code, self.name, self.options, self.backend = code, name, tuple(options), backend
        self._fns = {}
        self._sig = _hostbuild().kernel_signatures(code).get(name)

    max_threads_per_block = 1024
    num_regs = 32
    shared_size_bytes = 0

    def compile(self, log_stream=None):
        m = mode()
        if m not in self._fns:
            _check_nvrtc()
            if self._sig is None:
                raise cuda.CUDADriverError(f"CUDA_ERROR_NOT_FOUND: named symbol not found ({self.name})")
            r = _registry().get(self.name)
            if m == "twins":
                if r is None or r.code != self.code:
                    raise NotImplementedError(f"stand-in without a C++ compiler: raw kernel {self.name} is "
                                              "not in tinygan's registry, so it has no NumPy twin")
                self._fns[m] = functools.partial(_twins().raw, r.source.name, r)
            else:
                lib = _registry_library() if r is not None and r.code == self.code else _custom_library(self.code)
                self._fns[m] = getattr(lib, f"{self.name}__launch")
        return self._fns[m]

    def __call__(self, grid, block, args, *, shared_mem=0, stream=None, enable_cooperative_groups=False):
        grid = tuple(grid) if isinstance(grid, (tuple, list)) else (grid,)
        block = tuple(block) if isinstance(block, (tuple, list)) else (block,)
        grid, block = grid + (1,) * (3 - len(grid)), block + (1,) * (3 - len(block))
        if (not all(isinstance(v, (int, _np.integer)) and v >= 1 for v in grid + block)
                or grid[0] > 2**31 - 1 or max(grid[1:]) > 65535
                or math.prod(block) > 1024 or block[2] > 64):
            raise cuda.CUDADriverError(f"CUDA_ERROR_INVALID_VALUE: invalid argument (kernel {self.name}, "
                                       f"grid {grid}, block {block})")
        if grid[1:] != (1, 1) or block[1:] != (1, 1):
            raise NotImplementedError("stand-in: 1-D launches only")
        if not isinstance(args, (tuple, list)):
            raise TypeError("args must be a tuple")
        fn = self.compile()
        sig = self._sig
        if len(args) != len(sig):
            raise TypeError(f"stand-in: kernel {self.name} takes {len(sig)} arguments ({sig}), got {len(args)}")
        hb = _hostbuild()
        argv, types = [int(grid[0]), int(block[0])], [ctypes.c_uint, ctypes.c_uint]
        layouts = {}
        for p, a in zip(sig, args):
            want = hb.ctype_dtype(p.ctype)
            if p.pointer:
                if not isinstance(a, ndarray):
                    raise TypeError(f"stand-in: kernel {self.name}: parameter {p} needs a cupy.ndarray, "
                                    f"got {type(a).__name__}")
                if a.dtype != want:
                    raise TypeError(f"stand-in: kernel {self.name}: parameter {p} points to {p.ctype} "
                                    f"but the array is {a.dtype}")
                argv.append(ctypes.c_void_p(a._a.__array_interface__["data"][0]))
                types.append(ctypes.c_void_p)
                layouts[p.name] = (a.shape, _element_strides(a._a))
            else:
                if isinstance(a, ndarray) or isinstance(a, _np.ndarray) and a.ndim != 0:
                    raise TypeError(f"stand-in: kernel {self.name}: parameter {p} is a value, got an array")
                got = _np.asarray(a).dtype
                if got != want:
                    raise TypeError(f"stand-in: kernel {self.name}: parameter {p} is a {p.ctype} ({want}) but "
                                    f"the argument is {got}: a GPU would read the wrong bytes")
                ct = _CTYPES[want.name]
                argv.append(ct(_np.asarray(a).item()))
                types.append(ct)
                layouts[p.name] = _np.asarray(a).item()
        _log({"name": self.name, "kind": "raw", "grid": grid, "block": block, "args": layouts})
        if mode() == "twins":
            fn(grid[0], block[0], list(args))
        else:
            fn.argtypes, fn.restype = types, None
            fn(*argv)


class RawModule:
    """``cupy.RawModule(code=...)``: ``get_function(name)`` gives a :class:`RawKernel`."""

    def __init__(self, code=None, path=None, options=(), backend="nvrtc", translate_cucomplex=False,
                 enable_cooperative_groups=False, name_expressions=None, jitify=False):
        if code is None:
            raise NotImplementedError("stand-in: RawModule(path=...)")
        self.code, self.options = code, options

    def get_function(self, name):
        return RawKernel(self.code, name, self.options)

    def compile(self, log_stream=None):
        _check_nvrtc()
