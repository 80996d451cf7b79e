"""CUDA sources compiled for the *host*: the machinery shared by the compile tests and the stand-in.

``tests/test_cuda_compile.py`` puts every entry of
:data:`tinygan.kernels.cuda.sources.REGISTRY` into one translation unit, and
compiles it for the GPU (nvcc / NVRTC) and, as C++, for the CPU.  The fake
``cupy`` package (``tests/fakecupy/cupy``) runs the same host build whenever
tinygan launches a kernel on the stand-in.  Both use this module:

* :func:`elementwise_source` / :func:`reduction_source` -- a ``__global__``
  function equivalent to what CuPy's ``ElementwiseKernel`` /
  ``ReductionKernel`` generates (in/out parameters as references to element
  ``i``, a grid-stride loop), from CuPy-syntax parameters;
* :func:`translation_unit` -- every variant of every registry entry, each in
  its own namespace;
* :func:`compile_host` -- the unit compiled as C++ into a shared library
  (``__global__`` defined away, ``blockIdx``/``threadIdx`` emulated), and
  :func:`host_library`, the same with a cache on disk, so that the stand-in
  compiles once per source text, not once per process;
* :func:`kernel_signatures` / :func:`launcher_source` -- the parameters of
  each ``extern "C" __global__`` function, and a host ``<name>__launch(grid,
  block, ...)`` that runs every (block, thread) of a launch in a C loop.

Nothing here imports CuPy; it needs a C++ compiler (``$CXX``, ``c++``,
``g++`` or ``clang++``) only for the compile steps.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from tinygan.kernels.cuda import sources as S

__all__ = ["CTYPE", "CompileError", "elementwise_source", "reduction_source", "translation_unit",
           "HOST_PRELUDE", "host_compiler", "compile_host", "host_library", "kernel_signatures",
           "launcher_source", "with_launchers", "ctype_dtype", "Param"]

#: CuPy type names (as in kernel parameters) -> C types.
CTYPE = {"float32": "float", "float64": "double", "bool": "bool", "int32": "int", "int64": "long long",
         "uint32": "unsigned int", "uint64": "unsigned long long", "int8": "signed char",
         "uint8": "unsigned char", "int16": "short", "uint16": "unsigned short"}


class CompileError(Exception):
    pass


# ---------------------------------------------------------------------------
# CuPy kernels as plain __global__ functions
# ---------------------------------------------------------------------------

def elementwise_source(fn: str, in_params: str, out_params: str, operation: str, preamble: str,
                       scalars, uid: str) -> str:
    """A ``__global__`` function ``fn`` equivalent to ``cupy.ElementwiseKernel``.

    ``in_params``/``out_params`` use CuPy's syntax with concrete types
    (``"float32 x, raw float32 buf"``); the inputs named in ``scalars`` are
    passed by value, every other array as a pointer to a C-contiguous buffer
    of the broadcast shape (``raw`` ones as the whole array), and the last
    parameter is the element count ``_n``.
    """
    params, body = [], []
    ins = S.parse_params(in_params)
    outs = S.parse_params(out_params)
    for is_out, plist in ((False, ins), (True, outs)):
        for raw, typ, name in plist:
            ctype = CTYPE[typ]
            const = "" if is_out else "const "
            if name in scalars:
                if is_out:
                    raise CompileError(f"{fn}: output {name} cannot be a scalar")
                params.append(f"const {ctype} {name}")
            elif raw:
                params.append(f"{const}{ctype}* __restrict__ {name}")
            else:
                params.append(f"{const}{ctype}* __restrict__ _raw_{name}")
                body.append(f"{const}{ctype} &{name} = _raw_{name}[i];")
    return f"""
namespace tg_{uid} {{
{preamble}
extern "C" __global__ void {fn}({", ".join(params)}, const long long _n) {{
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < _n;
         i += (long long)gridDim.x * blockDim.x) {{
        {" ".join(body)}
        {operation};
    }}
}}
}}  // namespace tg_{uid}
"""


def reduction_source(fn: str, in_params: str, out_params: str, map_expr: str, reduce_expr: str,
                     post_map_expr: str, identity: str, reduce_type: str, preamble: str, scalars,
                     uid: str) -> str:
    """A ``__global__`` function ``fn`` equivalent to ``cupy.ReductionKernel``.

    Inputs are (in_size,) arrays laid out so that element j belongs to output
    ``j % out_size`` (the kept axes last); each thread reduces one output.
    """
    params, loads, stores = [], [], []
    for raw, typ, name in S.parse_params(in_params):
        ctype = CTYPE[typ]
        if name in scalars:
            params.append(f"const {ctype} {name}")
        else:
            params.append(f"const {ctype}* __restrict__ _raw_{name}")
            loads.append(f"const {ctype} {name} = _raw_{name}[_j];")
    for raw, typ, name in S.parse_params(out_params):
        ctype = CTYPE[typ]
        params.append(f"{ctype}* __restrict__ _raw_{name}")
        stores.append(f"{ctype} &{name} = _raw_{name}[_i];")
    return f"""
namespace tg_{uid} {{
{preamble}
#define REDUCE(a, b) ({reduce_expr})
#define POST_MAP(a) ({post_map_expr})
typedef {reduce_type} _type_reduce;
extern "C" __global__ void {fn}({", ".join(params)}, const long long _in_size,
                                const long long _out_size) {{
    for (long long _i = (long long)blockIdx.x * blockDim.x + threadIdx.x; _i < _out_size;
         _i += (long long)gridDim.x * blockDim.x) {{
        _type_reduce _s = _type_reduce({identity});
        for (long long _j = _i; _j < _in_size; _j += _out_size) {{
            {" ".join(loads)}
            _type_reduce _a = static_cast<_type_reduce>({map_expr});
            _s = REDUCE(_s, _a);
        }}
        {" ".join(stores)}
        POST_MAP(_s);
    }}
}}
#undef REDUCE
#undef POST_MAP
}}  // namespace tg_{uid}
"""


def rendered_source(r: S.Rendered, uid: str, host_launchers: bool = False) -> str:
    """One rendered registry entry as CUDA source in namespace ``tg_<uid>``."""
    e = r.source
    if e.kind == "raw":
        code = r.code + (launcher_source(r.code) if host_launchers else "")
        return f"namespace tg_{uid} {{\n{code}\n}}  // namespace tg_{uid}\n"
    if e.kind == "elementwise":
        src = elementwise_source(r.function_names[0], r.in_params, r.out_params, e.operation,
                                 r.preamble, e.scalars, uid)
    elif e.kind == "reduction":
        src = reduction_source(r.function_names[0], r.in_params, r.out_params, e.map_expr,
                               e.reduce_expr, e.post_map_expr, e.identity, r.reduce_type,
                               r.preamble, e.scalars, uid)
    else:  # pragma: no cover - registry validation catches this
        raise AssertionError(f"unknown kind {e.kind!r}")
    return with_launchers(src) if host_launchers else src


def with_launchers(source: str) -> str:
    """``source`` and its :func:`launcher_source`, inside its closing namespace if it ends with one."""
    launchers = launcher_source(source)
    if source.rstrip().endswith(tuple(f"}}  // namespace {ns}" for ns in re.findall(r"namespace (\w+) \{", source))):
        head, tail = source.rsplit("}  // namespace", 1)
        return head + launchers + "}  // namespace" + tail
    return source + launchers


def translation_unit(registry=None, prefix: str = "", dtypes=None,
                     host_launchers: bool = False) -> tuple[str, list[str]]:
    """Every variant of every entry as one CUDA source, and the kernel symbols it defines.

    Each variant sits in its own namespace (its ``scalar_t``/``index_t``
    typedefs stay local); the ``extern "C"`` kernel names are unique because
    :func:`sources.render` suffixes them with the dtype (and index type).
    ``host_launchers`` adds a host ``<name>__launch`` per kernel (host builds
    only: it calls the kernel like a function).
    """
    registry = S.REGISTRY if registry is None else registry
    parts, names = [], []
    for k, (name, entry) in enumerate(registry.items()):
        for v, (dtype, itype) in enumerate(S.variants(entry)):
            if dtypes is not None and dtype not in dtypes:
                continue
            r = S.render(entry, dtype, itype)
            parts.append(rendered_source(r, f"{prefix}{k}_{v}", host_launchers))
            names += r.function_names
    return "\n".join(parts), names


# ---------------------------------------------------------------------------
# kernel signatures and host launchers
# ---------------------------------------------------------------------------

_COMMENT_RE = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_KERNEL_RE = re.compile(r'extern\s+"C"\s+__global__\s+void\s+([A-Za-z_]\w*)\s*\(([^)]*)\)')
_TYPEDEF_RE = re.compile(r"typedef\s+([A-Za-z_][\w\s]*?)\s+([A-Za-z_]\w*)\s*;")


class Param:
    """One kernel parameter: C type (typedefs resolved), pointer or value, name."""

    __slots__ = ("ctype", "pointer", "name", "const")

    def __init__(self, ctype: str, pointer: bool, name: str, const: bool):
        self.ctype, self.pointer, self.name, self.const = ctype, pointer, name, const

    def __repr__(self) -> str:
        return f"{'const ' if self.const else ''}{self.ctype}{'*' if self.pointer else ''} {self.name}"


def kernel_signatures(code: str) -> dict[str, list[Param]]:
    """``{kernel name: [Param, ...]}`` for every ``extern "C" __global__`` function in ``code``.

    ``typedef``s in the code (``scalar_t``, ``index_t``) are resolved.
    """
    text = _COMMENT_RE.sub(" ", code)
    typedefs = {alias: " ".join(base.split()) for base, alias in _TYPEDEF_RE.findall(text)}
    out = {}
    for name, params in _KERNEL_RE.findall(text):
        plist = []
        for item in params.split(","):
            item = " ".join(item.replace("*", " * ").split())
            if not item:
                continue
            words = [w for w in item.split() if w not in ("__restrict__",)]
            pname = words[-1]
            pointer = "*" in words
            const = "const" in words
            base = " ".join(w for w in words[:-1] if w not in ("const", "*"))
            while base in typedefs:
                base = typedefs[base]
            plist.append(Param(base, pointer, pname, const))
        out[name] = plist
    return out


def launcher_source(code: str) -> str:
    """Host functions ``<name>__launch(grid, block, <the kernel's parameters>)`` for ``code``'s kernels.

    Each runs the kernel once per emulated (block, thread) of a 1-D launch,
    setting ``blockIdx``/``threadIdx``/``gridDim``/``blockDim`` as the GPU
    would; the kernels' grid-stride loops do the rest.
    """
    text = _COMMENT_RE.sub(" ", code)
    parts = []
    for name, params in _KERNEL_RE.findall(text):
        params = " ".join(params.split())
        names = [" ".join(p.replace("*", " ").split()).split()[-1] for p in params.split(",") if p.strip()]
        parts.append(f"""
extern "C" void {name}__launch(unsigned _grid, unsigned _block{", " if params else ""}{params}) {{
    for (unsigned _b = 0; _b < _grid; ++_b)
        for (unsigned _t = 0; _t < _block; ++_t) {{
            tinygan_emulate_thread(_grid, _block, _b, _t);
            {name}({", ".join(names)});
        }}
}}
""")
    return "".join(parts)


def ctype_dtype(ctype: str) -> np.dtype:
    """The NumPy dtype of a C type name (``"long long"`` -> int64)."""
    for typ, c in CTYPE.items():
        if c == ctype:
            return np.dtype(typ)
    aliases = {"long": "int64", "unsigned": "uint32", "unsigned long": "uint64", "char": "int8",
               "size_t": "uint64", "ptrdiff_t": "int64", "long int": "int64"}
    if ctype in aliases:
        return np.dtype(aliases[ctype])
    raise TypeError(f"no NumPy dtype for C type {ctype!r}")


# ---------------------------------------------------------------------------
# host compiler
# ---------------------------------------------------------------------------

HOST_PRELUDE = r"""
#include <cmath>
using std::sqrt; using std::exp; using std::log; using std::fabs; using std::tanh;
using std::fmin; using std::fmax; using std::pow;
struct tinygan_uint3 { unsigned int x, y, z; };
static tinygan_uint3 threadIdx = {0, 0, 0}, blockIdx = {0, 0, 0};
static tinygan_uint3 blockDim = {1, 1, 1}, gridDim = {1, 1, 1};
extern "C" void tinygan_emulate_thread(unsigned grid, unsigned block, unsigned b, unsigned t) {
    gridDim.x = grid; blockDim.x = block; blockIdx.x = b; threadIdx.x = t;
}
#define __global__
#define __device__
#define __forceinline__ inline
"""


def host_compiler() -> str | None:
    for cxx in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if cxx and shutil.which(cxx):
            return shutil.which(cxx)
    return None


def compile_host(source: str, workdir: Path, name: str = "emulate") -> Path:
    """The CUDA translation unit compiled as C++ into a host shared library; raises CompileError."""
    cxx = host_compiler()
    if cxx is None:
        raise CompileError("no C++ compiler (set $CXX, or install c++/g++/clang++)")
    workdir = Path(workdir)
    cpp, so = workdir / f"{name}.cpp", workdir / f"{name}.so"
    cpp.write_text(HOST_PRELUDE + source)
    proc = subprocess.run([cxx, "-std=c++17", "-O1", "-ffp-contract=off", "-shared",
                           "-fPIC", "-o", str(so), str(cpp)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise CompileError(proc.stderr)
    return so


_LOADED: dict[str, ctypes.CDLL] = {}


def host_library(source: str) -> ctypes.CDLL:
    """:func:`compile_host` of ``source`` with a cache on disk (one build per source text and compiler).

    The library lands in ``$TMPDIR/tinygan-hostbuild/<hash>.so`` (written under
    a temporary name, then renamed, so concurrent processes never load half a
    file) and is loaded once per process.
    """
    key = hashlib.sha256((HOST_PRELUDE + source + str(host_compiler())).encode()).hexdigest()[:24]
    lib = _LOADED.get(key)
    if lib is not None:
        return lib
    cache = Path(os.environ.get("TINYGAN_HOSTBUILD_CACHE") or Path(tempfile.gettempdir()) / "tinygan-hostbuild")
    cache.mkdir(parents=True, exist_ok=True)
    so = cache / f"{key}.so"
    if not so.is_file():
        with tempfile.TemporaryDirectory(dir=cache) as d:
            built = compile_host(source, Path(d), name=key)
            os.replace(built, so)
    lib = ctypes.CDLL(str(so))
    _LOADED[key] = lib
    return lib
