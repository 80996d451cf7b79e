"""The CUDA kernels compile and compute the right thing -- checked without a GPU.

Runs in CI (no GPU, usually no CUDA toolkit):

* the registry is well formed and renders for every dtype/index variant
  (always runs);
* every source in :data:`tinygan.kernels.cuda.sources.REGISTRY` compiles for
  sm_80 and sm_90, in ONE translation unit per architecture: with ``nvcc``
  when it is on PATH, and with NVRTC (the ``cuda-toolkit[nvrtc]`` /
  ``nvidia-cuda-nvrtc`` wheel, through ctypes) when that loads; a deliberately
  broken source must fail the same way.  Raw kernels are compiled exactly as
  CuPy's ``RawKernel`` gets them; element-wise and reduction entries are
  wrapped here into an equivalent ``__global__`` function (in/out params as
  references to element ``i``, a grid-stride loop over ``i``);
* where CuPy is importable too, the code CuPy itself generates for each
  element-wise/reduction entry is compiled with NVRTC and CuPy's options;
* the same translation unit is compiled for the *host* with a C++ compiler
  (``__global__`` defined away, ``blockIdx``/``threadIdx`` emulated) and every
  kernel is run on small arrays against its NumPy twin.  This checks the index
  arithmetic of im2col/col2im and every update equation with no GPU at all,
  and, since it compiles every source, it catches syntax and type errors even
  where neither nvcc nor NVRTC is installed (CI).

Each check skips, with the reason, when its tool is missing.  The translation
unit and the host build live in ``tests/fakecupy/hostbuild.py``, shared with
the CPU stand-in for CuPy (``tests/fakecupy``, ``tests/test_cuda_standin.py``).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

# The translation unit and the host build are shared with the CPU stand-in for CuPy
# (tests/fakecupy), which runs the same host build whenever tinygan launches a kernel there.
from fakecupy.hostbuild import CompileError, translation_unit
from fakecupy.hostbuild import compile_host as _compile_host
from fakecupy.hostbuild import host_compiler as _host_compiler
from tinygan.kernels.cuda import sources as S

ARCHS = ("sm_80", "sm_90")


# ---------------------------------------------------------------------------
# compilers: nvcc, NVRTC (ctypes); the host C++ build is fakecupy.hostbuild's
# ---------------------------------------------------------------------------

def _nvcc() -> str | None:
    return shutil.which("nvcc")


def compile_nvcc(source: str, arch: str, workdir: Path) -> bytes:
    """``nvcc --cubin -arch=<arch>`` on ``source``; returns the cubin, raises CompileError."""
    cu = workdir / f"tinygan_kernels_{arch}.cu"
    out = workdir / f"tinygan_kernels_{arch}.cubin"
    cu.write_text(source)
    cmd = [_nvcc(), f"-arch={arch}", "--cubin", "-x", "cu", "--std=c++17", "-ftz=true",
           "-o", str(out), str(cu)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise CompileError(f"{' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    return out.read_bytes()


def _nvrtc_library():
    """ctypes handle of libnvrtc, or None.  Tries cuda-pathfinder, the pip wheels, the system."""
    paths = []
    try:
        from cuda import pathfinder
        paths.append(pathfinder.load_nvidia_dynamic_lib("nvrtc").abs_path)
    except Exception:
        pass
    for site in sys.path:
        for sub in ("nvidia/cu13/lib/libnvrtc.so.13", "nvidia/cuda_nvrtc/lib/libnvrtc.so.12",
                    "nvidia/cu12/lib/libnvrtc.so.12"):
            paths.append(os.path.join(site, sub))
    found = ctypes.util.find_library("nvrtc")
    if found:
        paths.append(found)
    for home in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if home:
            paths.append(os.path.join(home, "lib64", "libnvrtc.so"))
    for p in paths:
        if p and (os.path.sep not in p or os.path.exists(p)):
            try:
                lib = ctypes.CDLL(p)
                lib.nvrtcCreateProgram  # noqa: B018 - the symbol must exist
                return lib
            except (OSError, AttributeError):
                continue
    return None


_NVRTC = _nvrtc_library()


def compile_nvrtc(source: str, arch: str) -> bytes:
    """NVRTC (through ctypes) on ``source`` for ``arch``; returns the cubin, raises CompileError."""
    lib = _NVRTC
    prog = ctypes.c_void_p()
    lib.nvrtcGetErrorString.restype = ctypes.c_char_p

    def check(rc, what):
        if rc != 0:
            raise CompileError(f"{what}: {lib.nvrtcGetErrorString(rc).decode()}")

    check(lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), b"tinygan_kernels.cu",
                                 0, None, None), "nvrtcCreateProgram")
    try:
        opts = [f"--gpu-architecture={arch}".encode(), b"--std=c++17", b"-ftz=true"]
        arr = (ctypes.c_char_p * len(opts))(*opts)
        rc = lib.nvrtcCompileProgram(prog, len(opts), arr)
        if rc != 0:
            size = ctypes.c_size_t()
            lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
            log = ctypes.create_string_buffer(size.value)
            lib.nvrtcGetProgramLog(prog, log)
            raise CompileError(f"NVRTC {lib.nvrtcGetErrorString(rc).decode()}:\n"
                               f"{log.value.decode(errors='replace')}")
        size = ctypes.c_size_t()
        check(lib.nvrtcGetCUBINSize(prog, ctypes.byref(size)), "nvrtcGetCUBINSize")
        cubin = ctypes.create_string_buffer(size.value)
        check(lib.nvrtcGetCUBIN(prog, cubin), "nvrtcGetCUBIN")
        return cubin.raw
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))


def _backends():
    out = []
    out.append(pytest.param("nvcc", marks=pytest.mark.skipif(
        _nvcc() is None, reason="nvcc is not on PATH")))
    out.append(pytest.param("nvrtc", marks=pytest.mark.skipif(
        _NVRTC is None, reason="no libnvrtc (pip install 'tinygan[nvrtc]', i.e. cuda-toolkit[nvrtc])")))
    return out


def _compile(backend: str, source: str, arch: str, tmp_path: Path) -> bytes:
    if backend == "nvcc":
        return compile_nvcc(source, arch, tmp_path)
    return compile_nvrtc(source, arch)


# ---------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------

def test_registry_is_well_formed():
    assert S.REGISTRY, "empty kernel registry"
    for name, e in S.REGISTRY.items():
        assert e.name == name
        assert e.kind in ("raw", "elementwise", "reduction"), name
        assert e.doc, f"{name}: document the kernel and name its NumPy twin"
        if e.kind == "raw":
            assert e.kernel_names and all(f"void {k}(" in e.code for k in e.kernel_names), name
            assert "scalar_t" in e.code and "index_t" in e.code, name
        else:
            ins, outs = S.parse_params(e.in_params), S.parse_params(e.out_params)
            names = [n for _, _, n in ins + outs]
            assert len(names) == len(set(names)), f"{name}: duplicate parameter names"
            assert "i" not in names, f"{name}: CuPy reserves the name i"
            assert set(e.scalars) <= {n for _, _, n in ins}, f"{name}: scalars must be inputs"
            assert outs, f"{name}: no outputs"
            if e.kind == "elementwise":
                assert e.operation.strip(), name
            else:
                assert e.map_expr and e.reduce_expr and e.post_map_expr and e.identity != "", name
        for dtype, itype in S.variants(e):
            r = S.render(name, dtype, itype)
            assert r.function_names
            if e.kind != "raw":
                assert "scalar_t" not in r.in_params + r.out_params   # concrete dtypes for CuPy


def test_render_rejects_bad_arguments():
    with pytest.raises(TypeError, match="im2col_nhwc"):
        S.render("im2col_nhwc", "float16", "int32")
    with pytest.raises(TypeError, match="index_type"):
        S.render("im2col_nhwc", "float32", None)
    with pytest.raises(KeyError):
        S.render("no_such_kernel", "float32")


# ---------------------------------------------------------------------------
# device compilation (nvcc / NVRTC)
# ---------------------------------------------------------------------------

_BROKEN = {
    "raw": S.KernelSource(
        name="broken_raw", kind="raw", doc="deliberately broken", kernel_names=("tinygan_broken",),
        code='extern "C" __global__ void tinygan_broken(scalar_t* x, index_t n) '
             '{ x[0] = n + undefined_symbol; }'),
    "elementwise": S.KernelSource(
        name="broken_elementwise", kind="elementwise", doc="deliberately broken",
        in_params="scalar_t x", out_params="scalar_t y",
        operation="y = x * ;"),                                      # syntax error
    "reduction": S.KernelSource(
        name="broken_reduction", kind="reduction", doc="deliberately broken",
        in_params="scalar_t x", out_params="scalar_t s", map_expr="x.not_a_member",  # type error
        reduce_expr="a + b", post_map_expr="s = a", identity="0"),
}


@pytest.mark.parametrize("backend", _backends())
@pytest.mark.parametrize("arch", ARCHS)
def test_every_kernel_compiles(backend, arch, tmp_path):
    source, names = translation_unit()
    cubin = _compile(backend, source, arch, tmp_path)
    missing = [n for n in names if n.encode() not in cubin]
    assert not missing, f"{backend} {arch}: kernels missing from the cubin: {missing}"


_BROKEN_MESSAGE = {"raw": "undefined_symbol", "elementwise": "expected an expression",
                   "reduction": "not_a_member"}


@pytest.mark.parametrize("backend", _backends())
@pytest.mark.parametrize("kind", sorted(_BROKEN))
def test_broken_source_fails_to_compile(backend, kind, tmp_path):
    """A registry entry with a syntax or type error fails the compile test, with the compiler's message."""
    good, _ = translation_unit()
    bad, _ = translation_unit({kind: _BROKEN[kind]}, prefix="broken_")
    with pytest.raises(CompileError, match=_BROKEN_MESSAGE[kind]):
        _compile(backend, good + bad, "sm_80", tmp_path)


@pytest.mark.skipif(_nvcc() is None, reason="nvcc is not on PATH")
def test_float32_kernels_do_no_double_arithmetic(tmp_path):
    """A stray double literal (``x * 0.1`` rather than ``x * scalar_t(0.1)``) would make float32 kernels slow."""
    source, _ = translation_unit(dtypes=("float32",))
    cu = tmp_path / "f32.cu"
    cu.write_text(source)
    proc = subprocess.run([_nvcc(), "-arch=sm_80", "--cubin", "-x", "cu", "-Xptxas",
                           "--warn-on-double-precision-use", "-o", str(tmp_path / "f32.cubin"),
                           str(cu)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "double" not in proc.stderr.lower(), proc.stderr


def _cupy_codegen():
    """CuPy's private code generators, or a skip reason."""
    try:
        import cupy  # noqa: F401
        from cupy._core import _carray, _kernel, _reduction, _scalar, core
    except Exception as e:  # pragma: no cover - depends on the environment
        return None, f"CuPy is not importable ({type(e).__name__})"
    need = [(_kernel, "_get_elementwise_kernel_code"), (_kernel, "_ArgInfo"),
            (_kernel, "_TypeMap"), (_kernel, "_get_param_info"),
            (_reduction, "_ReductionKernel_get_cached_function_code"),
            (core, "_cupy_header_list"), (core, "assemble_cupy_compiler_options")]
    if not all(hasattr(m, a) for m, a in need):
        return None, "this CuPy version has other private code generators"
    return (cupy, _carray, _kernel, _reduction, _scalar, core), None


@pytest.mark.skipif(_NVRTC is None, reason="no libnvrtc")
@pytest.mark.parametrize("arch", ARCHS)
def test_code_that_cupy_generates_compiles(arch):
    """The real ElementwiseKernel/ReductionKernel code, as CuPy writes it, compiles with CuPy's options.

    Uses CuPy internals (codegen only; nothing needs a GPU), so it skips on
    CuPy versions whose internals differ.
    """
    mods, reason = _cupy_codegen()
    if mods is None:
        pytest.skip(reason)
    cupy, _carray, _kernel, _reduction, _scalar, core = mods
    NDARRAY, INDEXER, SCALAR = 1, 2, 3       # cupy/_core/_kernel.pxd: enum _ArgKind
    header = "".join(f"#include <{h}>\n" for h in core._cupy_header_list)
    opts = tuple(core.assemble_cupy_compiler_options(())) + ("-ftz=true",)
    codes = []
    for name, e in S.REGISTRY.items():
        if e.kind == "raw":
            continue
        for dtype, _ in S.variants(e):
            r = S.render(name, dtype)
            ins = _kernel._get_param_info(r.in_params, True)
            outs = _kernel._get_param_info(r.out_params, False)
            try:
                if e.kind == "elementwise":   # 4-D strided operands: CuPy's most general indexing
                    params = ins + outs + _kernel._get_param_info("CIndexer _ind", False)
                    infos = [(_kernel._ArgInfo(SCALAR, _scalar.CScalar, p.dtype, 0, True, True)
                              if p.name in e.scalars else
                              _kernel._ArgInfo(NDARRAY, cupy.ndarray, p.dtype, 1 if p.raw else 4,
                                               p.raw, True))
                             for p in ins + outs]
                    infos.append(_kernel._ArgInfo(INDEXER, _carray.Indexer, None, 4, True, True))
                    code = _kernel._get_elementwise_kernel_code(
                        tuple(infos), _kernel._TypeMap(()), params, e.operation,
                        r.function_names[0], r.preamble)
                else:
                    params = (ins + outs
                              + _kernel._get_param_info("CIndexer _in_ind, CIndexer _out_ind", False)
                              + _kernel._get_param_info("int32 _block_stride", True))
                    infos = [_kernel._ArgInfo(NDARRAY, cupy.ndarray, p.dtype, 4, False, True) for p in ins]
                    infos += [_kernel._ArgInfo(NDARRAY, cupy.ndarray, p.dtype, 1, True, True) for p in outs]
                    infos += [_kernel._ArgInfo(INDEXER, _carray.Indexer, None, 4, True, True),
                              _kernel._ArgInfo(INDEXER, _carray.Indexer, None, 1, True, True),
                              _kernel._ArgInfo(SCALAR, _scalar.CScalar, np.dtype(np.int32), 0, True, True)]
                    code = _reduction._ReductionKernel_get_cached_function_code(
                        len(ins), len(outs), params, tuple(infos),
                        _kernel._TypeMap((("IndexT", np.int32),)), r.function_names[0], 512,
                        r.reduce_type, e.identity, e.map_expr, e.reduce_expr, e.post_map_expr,
                        r.preamble, ())
            except Exception as ex:  # pragma: no cover - internals changed
                pytest.skip(f"CuPy's private code generators changed: {type(ex).__name__}: {ex}")
            assert r.function_names[0] in code
            # one namespace per kernel keeps each scalar_t typedef (and CuPy's macros) local
            codes.append(f"namespace tg_cupy_{len(codes)} {{\n{code}\n}}\n"
                         "#undef REDUCE\n#undef POST_MAP\n#undef _REDUCE\n")
    _compile_cupy_code(header + "\n".join(codes), opts, arch)


def _compile_cupy_code(source: str, options: tuple, arch: str) -> None:
    lib = _NVRTC
    prog = ctypes.c_void_p()
    assert lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), b"kern.cu", 0, None, None) == 0
    try:
        opts = [o.encode() for o in options] + [f"--gpu-architecture={arch}".encode()]
        rc = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
        if rc != 0:
            size = ctypes.c_size_t()
            lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
            log = ctypes.create_string_buffer(size.value)
            lib.nvrtcGetProgramLog(prog, log)
            raise CompileError(log.value.decode(errors="replace") + "\n" + source[-3000:])
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))


# ---------------------------------------------------------------------------
# host emulation: the same source, compiled as C++ and run on the CPU
# ---------------------------------------------------------------------------

def compile_host(source: str, workdir: Path) -> Path:
    """The CUDA translation unit compiled as C++ into a host shared library; raises CompileError."""
    return _compile_host(source, workdir)


_NO_CXX = pytest.mark.skipif(_host_compiler() is None, reason="no C++ compiler for the host emulation")


@pytest.fixture(scope="module")
def host():
    """The registry compiled into a host shared library (skips without a C++ compiler)."""
    if _host_compiler() is None:
        pytest.skip("no C++ compiler for the host emulation")
    source, _ = translation_unit()
    with tempfile.TemporaryDirectory() as d:
        yield _Emulator(ctypes.CDLL(str(compile_host(source, Path(d)))))


@_NO_CXX
@pytest.mark.parametrize("kind", sorted(_BROKEN))
def test_broken_source_fails_host_compile(kind, tmp_path):
    """Without nvcc or NVRTC (as in CI) the host build still catches syntax and type errors."""
    good, _ = translation_unit()
    bad, _ = translation_unit({kind: _BROKEN[kind]}, prefix="broken_")
    with pytest.raises(CompileError, match=_BROKEN_MESSAGE[kind].split()[0]):
        compile_host(good + bad, tmp_path)


class _Emulator:
    """Calls a kernel once per emulated (block, thread) of a small grid, sequentially."""

    GRID, BLOCK = 3, 4

    def __init__(self, lib):
        self.lib = lib

    def launch(self, fn: str, args: list, argtypes: list) -> None:
        f = getattr(self.lib, fn)
        f.argtypes, f.restype = argtypes, None
        converted = [a.ctypes.data_as(ctypes.c_void_p) if isinstance(a, np.ndarray) else a for a in args]
        for b in range(self.GRID):
            for t in range(self.BLOCK):
                self.lib.tinygan_emulate_thread(self.GRID, self.BLOCK, b, t)
                f(*converted)

    def raw(self, name: str, dtype: str, itype: str, arrays: list, ints: list) -> None:
        r = S.render(name, dtype, itype)
        ityp = ctypes.c_int if itype == "int32" else ctypes.c_longlong
        self.launch(r.function_names[0], arrays + ints,
                    [ctypes.c_void_p] * len(arrays) + [ityp] * len(ints))

    def elementwise(self, name: str, dtype: str, **values) -> dict:
        """Run entry ``name``; array args are flattened C-contiguous copies (pre-broadcast)."""
        r = S.render(name, dtype)
        e = r.source
        ct = {"float32": ctypes.c_float, "float64": ctypes.c_double, "bool": ctypes.c_bool}
        args, types, n, outs = [], [], None, {}
        for is_out, plist in ((False, S.parse_params(r.in_params)),
                              (True, S.parse_params(r.out_params))):
            for raw, typ, pname in plist:
                v = values[pname]
                if pname in e.scalars:
                    args.append(ct[typ](v))
                    types.append(ct[typ])
                    continue
                a = np.ascontiguousarray(v, dtype=np.dtype(typ)).copy()
                if not raw:
                    n = a.size if n is None else n
                    assert a.size == n, f"{name}: {pname} has {a.size} elements, expected {n}"
                if is_out:
                    outs[pname] = a
                args.append(a)
                types.append(ctypes.c_void_p)
        self.launch(r.function_names[0], args + [n], types + [ctypes.c_longlong])
        return outs

    def reduction(self, name: str, dtype: str, out_size: int, **values) -> np.ndarray:
        r = S.render(name, dtype)
        args, in_size = [], None
        for _, typ, pname in S.parse_params(r.in_params):
            a = np.ascontiguousarray(values[pname], dtype=np.dtype(typ)).ravel()
            in_size = a.size
            args.append(a)
        (out_spec,) = S.parse_params(r.out_params)
        out = np.full(out_size, np.nan, dtype=np.dtype(out_spec[1]))
        self.launch(r.function_names[0], args + [out, in_size, out_size],
                    [ctypes.c_void_p] * (len(args) + 1) + [ctypes.c_longlong] * 2)
        return out


CONV_CASES = [
    # N, Hp, Wp, C, kh, kw, sh, sw   (padded input; the windows that fit)
    (2, 6, 7, 3, 3, 3, 1, 1),
    (1, 9, 8, 2, 4, 4, 2, 2),
    (3, 5, 9, 1, 2, 3, 3, 2),
    (2, 4, 4, 5, 4, 4, 1, 1),
    (1, 11, 6, 4, 1, 2, 2, 3),
]


def _layout(a: np.ndarray, layout: str) -> np.ndarray:
    """The values of ``a`` in another memory layout (same shape): what conv.py may pass."""
    if layout == "contiguous":
        return a
    if layout == "cropped":                 # a window of a bigger buffer (a cropped gradient)
        big = np.zeros(tuple(n + 3 for n in a.shape), a.dtype)
        view = big[tuple(slice(1, 1 + n) for n in a.shape)]
        view[...] = a
        return view
    if layout == "transposed":              # last axis outermost (NCHW memory seen as NHWC)
        perm = (a.ndim - 1,) + tuple(range(a.ndim - 1))
        inv = tuple(int(k) for k in np.argsort(perm))
        return np.ascontiguousarray(a.transpose(perm)).transpose(inv)
    raise ValueError(layout)


def _strides(a: np.ndarray) -> list:
    return [s // a.itemsize for s in a.strides]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("itype", ["int32", "int64"])
@pytest.mark.parametrize("layout", ["contiguous", "cropped", "transposed"])
@pytest.mark.parametrize("case", CONV_CASES)
def test_im2col_col2im_match_numpy_on_host(host, case, layout, itype, dtype):
    from tinygan.kernels import conv
    N, Hp, Wp, C, kh, kw, sh, sw = case
    Ho, Wo = (Hp - kh) // sh + 1, (Wp - kw) // sw + 1
    rng = np.random.default_rng(sum(case))
    x_pad = _layout(rng.standard_normal((N, Hp, Wp, C)).astype(dtype), layout)
    window = [C, kh, kw, sh, sw, Ho, Wo]

    cols = np.full((N * Ho * Wo, kh * kw * C), np.nan, dtype=dtype)
    host.raw("im2col_nhwc", dtype, itype, [x_pad, cols], [cols.size] + _strides(x_pad) + window)
    np.testing.assert_array_equal(cols, conv._im2col(x_pad, (kh, kw), (sh, sw), (Ho, Wo)))

    dcols = _layout(rng.standard_normal(cols.shape).astype(dtype), layout)
    dx_pad = np.full((N, Hp, Wp, C), np.nan, dtype=dtype)
    host.raw("col2im_nhwc", dtype, itype, [dcols, dx_pad],
             [dx_pad.size] + _strides(dcols) + [Hp, Wp] + window)
    # bit-exact: the gather adds in the same order as NumPy's per-tap slice-adds
    np.testing.assert_array_equal(dx_pad, conv._col2im(dcols, (Hp, Wp), (kh, kw), (sh, sw), (Ho, Wo)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_leaky_relu_kernels_match_numpy_on_host(host, dtype):
    from tinygan.kernels import activations as act
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3, 5)).astype(dtype)
    x.flat[:3] = [0.0, -0.0, 1e-3]
    for slope in (0.2, 0.01, 0.0):
        y_ref, mask_ref = act.leaky_relu_forward(x, slope)
        out = host.elementwise("leaky_relu_forward", dtype, x=x, slope=slope, y=np.empty_like(x),
                               mask=np.empty(x.shape, bool))
        np.testing.assert_array_equal(out["mask"].reshape(x.shape), mask_ref)
        np.testing.assert_allclose(out["y"].reshape(x.shape), y_ref, rtol=1e-7 if dtype == "float64" else 1e-6)
        s_ref = act.leaky_relu_scale(mask_ref, slope, np.dtype(dtype))
        out = host.elementwise("leaky_relu_scale", dtype, mask=mask_ref, slope=slope, s=np.empty_like(x))
        np.testing.assert_allclose(out["s"].reshape(x.shape), s_ref, rtol=1e-7)
        g = rng.standard_normal(x.shape).astype(dtype)
        out = host.elementwise("leaky_relu_backward", dtype, g=g, mask=mask_ref, slope=slope,
                               dx=np.empty_like(x))
        np.testing.assert_allclose(out["dx"].reshape(x.shape), act.leaky_relu_backward(g, mask_ref, slope),
                                   rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 4, 5)])
def test_batch_norm_kernels_match_numpy_on_host(host, dtype, shape):
    from tinygan.kernels import batchnorm as bn
    rng = np.random.default_rng(2)
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    c = shape[1]
    gamma = rng.standard_normal(c).astype(dtype)
    beta = rng.standard_normal(c).astype(dtype)
    y_ref, mean, var, xhat_ref, invstd = bn.batch_norm_forward(x, gamma, beta, 1e-5)
    cs = bn.channel_shape(x.ndim, c)
    rtol = 1e-12 if dtype == "float64" else 2e-6

    def full(v):
        return np.broadcast_to(v.reshape(cs), shape)

    # the variance as the fused sum of squares / M (channels-last layout for the reduction)
    last = (0,) + tuple(range(2, x.ndim)) + (1,)
    s = host.reduction("batch_norm_centered_sumsq", dtype, c,
                       x=x.transpose(last), mean=full(mean).transpose(last))
    np.testing.assert_allclose(s / (x.size // c), var, rtol=rtol * 10)

    out = host.elementwise("batch_norm_normalize", dtype, x=x, mean=full(mean), invstd=full(invstd),
                           gamma=full(gamma), beta=full(beta), xhat=np.empty_like(x), y=np.empty_like(x))
    np.testing.assert_allclose(out["xhat"].reshape(shape), xhat_ref, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(out["y"].reshape(shape), y_ref, rtol=rtol, atol=rtol)

    g = rng.standard_normal(shape).astype(dtype)
    dx_ref, dgamma_ref, dbeta_ref = bn.batch_norm_backward(g, xhat_ref, invstd, gamma)
    dgamma = host.reduction("batch_norm_dot", dtype, c, g=g.transpose(last), xhat=xhat_ref.transpose(last))
    np.testing.assert_allclose(dgamma, dgamma_ref, rtol=rtol * 10, atol=rtol * 10)
    m = x.size // c
    out = host.elementwise("batch_norm_backward", dtype, g=g, xhat=xhat_ref, dbeta_m=full(dbeta_ref / m),
                           dgamma_m=full(dgamma_ref / m), scale=full(gamma * invstd), dx=np.empty_like(x))
    np.testing.assert_allclose(out["dx"].reshape(shape), dx_ref, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_adam_kernel_matches_numpy_on_host(host, dtype, weight_decay):
    from tinygan.kernels import optim as k
    rng = np.random.default_rng(3)
    p, m, v = (rng.standard_normal(17).astype(dtype) for _ in range(3))
    v = np.abs(v)
    p_ref, m_ref, v_ref = p.copy(), m.copy(), v.copy()
    for step in (1, 2, 3):
        g = rng.standard_normal(17).astype(dtype)
        hyper = dict(lr=2e-4, beta1=0.5, beta2=0.999, eps=1e-8, step=step, weight_decay=weight_decay)
        k.adam_step_(p_ref, g, m_ref, v_ref, **hyper)
        bc1 = 1 - hyper["beta1"] ** step
        out = host.elementwise(
            "adam_step", dtype, g=g, beta1=0.5, one_minus_beta1=1 - 0.5, beta2=0.999,
            one_minus_beta2=1 - 0.999, bias_correction2_sqrt=np.sqrt(1 - 0.999 ** step), eps=1e-8,
            step_size=2e-4 / bc1, weight_decay=weight_decay, p=p, m=m, v=v)
        p, m, v = out["p"], out["m"], out["v"]
        tol = 1e-12 if dtype == "float64" else 1e-6
        np.testing.assert_allclose(p, p_ref, rtol=tol)
        np.testing.assert_allclose(m, m_ref, rtol=tol, atol=tol)
        np.testing.assert_allclose(v, v_ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_rmsprop_kernel_matches_numpy_on_host(host, dtype, centered, momentum):
    from tinygan.kernels import optim as k
    rng = np.random.default_rng(4)
    p = rng.standard_normal(13).astype(dtype)
    v, buf, gavg = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    p_ref, v_ref, buf_ref, gavg_ref = p.copy(), v.copy(), buf.copy(), gavg.copy()
    dummy = np.zeros(1, dtype)
    for _ in range(3):
        g = rng.standard_normal(13).astype(dtype)
        hyper = dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.01, momentum=momentum, centered=centered)
        k.rmsprop_step_(p_ref, g, v_ref, buf_ref if momentum else None, gavg_ref if centered else None,
                        **hyper)
        out = host.elementwise(
            "rmsprop_step", dtype, g=g, alpha=0.99, one_minus_alpha=1 - 0.99, eps=1e-8, lr=1e-2,
            weight_decay=0.01, momentum=momentum, use_momentum=momentum > 0, centered=centered,
            p=p, v=v, buf=buf if momentum else dummy, gavg=gavg if centered else dummy)
        p, v = out["p"], out["v"]
        buf = out["buf"] if momentum else buf
        gavg = out["gavg"] if centered else gavg
        tol = 1e-12 if dtype == "float64" else 2e-6
        np.testing.assert_allclose(p, p_ref, rtol=tol)
        np.testing.assert_allclose(v, v_ref, rtol=tol)
        if momentum:
            np.testing.assert_allclose(buf, buf_ref, rtol=tol)
        if centered:
            np.testing.assert_allclose(gavg, gavg_ref, rtol=tol)
