"""Every CUDA source string tinygan compiles, in one registry.

Nothing here imports CuPy: the registry is plain data, so the CI test
``tests/test_cuda_compile.py`` can compile every entry with ``nvcc`` (or
NVRTC) on a machine without a GPU, and :mod:`tinygan.kernels.cuda.launch`
builds the CuPy kernel objects from exactly the same text.

Three kinds of entry, one per CuPy kernel class:

``raw``          a whole CUDA translation unit for :class:`cupy.RawKernel`,
                 written against ``scalar_t`` (float/double) and ``index_t``
                 (int/long long), which :func:`render` typedefs in front of it.
                 Kernel names get a ``_f32``/``_f64`` and ``_i32``/``_i64``
                 suffix so that every variant has its own symbol (and shows up
                 under its own name in a profiler).
``elementwise``  ``in_params`` / ``out_params`` / ``operation`` for
                 :class:`cupy.ElementwiseKernel`; ``scalar_t`` in the params is
                 replaced by the concrete dtype name (``float32``), so scalars
                 are cast to the array dtype and a wrong array dtype is an error.
``reduction``    ``map_expr`` / ``reduce_expr`` / ``post_map_expr`` / ``identity``
                 for :class:`cupy.ReductionKernel`, typed the same way.

The element-wise kernels replace equations whose NumPy form lives in
``tinygan/kernels/{activations,batchnorm,optim}.py``; that NumPy code is each
kernel's *twin*, and ``tests/test_cuda.py`` compares the two.

Notes on numerics (see ``docs/gpu.md``): CuPy compiles every kernel with
``-ftz=true`` (float32 subnormals are flushed to zero; float64 is not
affected), and NVRTC contracts ``a * b + c`` into fused multiply-adds, so
float32 results agree with NumPy to a few ulp, not bit for bit.  The
gather-style ``col2im`` only adds, in NumPy's order, so it *is* bit-exact.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["KernelSource", "Rendered", "REGISTRY", "DTYPES", "INDEX_TYPES", "render",
           "variants", "parse_params"]

#: dtype name -> C type of ``scalar_t``.
DTYPES: dict[str, str] = {"float32": "float", "float64": "double"}

#: index-type name -> C type of ``index_t`` (raw kernels only).  int32 indexing
#: is used whenever every flat index fits (cheaper division on the GPU).
INDEX_TYPES: dict[str, str] = {"int32": "int", "int64": "long long"}

_SUFFIX = {"float32": "f32", "float64": "f64", "int32": "i32", "int64": "i64"}


@dataclass(frozen=True)
class KernelSource:
    """One registry entry (see the module docstring for the three kinds)."""

    name: str
    kind: str                          # "raw" | "elementwise" | "reduction"
    doc: str
    code: str = ""                     # raw: the translation unit
    kernel_names: tuple[str, ...] = ()  # raw: the extern "C" __global__ functions in it
    in_params: str = ""                # elementwise / reduction
    out_params: str = ""
    operation: str = ""                # elementwise: loop body (element index ``i``)
    scalars: tuple[str, ...] = ()      # elementwise / reduction: inputs passed as host scalars
    map_expr: str = ""                 # reduction
    reduce_expr: str = ""
    post_map_expr: str = ""
    identity: str = ""
    preamble: str = ""                 # elementwise / reduction: code above the kernel


@dataclass(frozen=True)
class Rendered:
    """A registry entry specialised to one dtype (and, for raw kernels, one index type)."""

    source: KernelSource
    dtype: str
    index_type: str | None
    function_names: tuple[str, ...]    # CUDA symbols: raw kernels, or the one generated kernel
    code: str = ""                     # raw: full translation unit
    in_params: str = ""                # elementwise / reduction, CuPy syntax with concrete dtypes
    out_params: str = ""
    preamble: str = ""                 # typedef of scalar_t + the entry's preamble
    reduce_type: str = ""              # reduction: C type of the accumulator

    @property
    def kind(self) -> str:
        return self.source.kind


# ---------------------------------------------------------------------------
# raw kernels: im2col / col2im on channels-last (NHWC) images
# ---------------------------------------------------------------------------

_IM2COL_NHWC = r"""
// cols[(n, i, j), (p, q, c)] = x_pad[n, i*sh + p, j*sw + q, c]
//   x_pad (N, Hp, Wp, C) with any strides (sN, sH, sW, sC, in elements: a cropped or
//   channels-last view works as is); cols (N*Ho*Wo, kh*kw*C) C-contiguous.
// One thread per element of cols; consecutive threads write consecutive
// elements and, for a channels-last x_pad, read consecutive channels.
extern "C" __global__ void tinygan_im2col_nhwc(
    const scalar_t* __restrict__ x_pad, scalar_t* __restrict__ cols,
    const index_t total,                              // N*Ho*Wo*kh*kw*C
    const index_t sN, const index_t sH, const index_t sW, const index_t sC,
    const index_t C, const index_t kh, const index_t kw,
    const index_t sh, const index_t sw,
    const index_t Ho, const index_t Wo)
{
    for (index_t idx = (index_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (index_t)gridDim.x * blockDim.x) {
        index_t t = idx;
        const index_t c = t % C;  t /= C;
        const index_t q = t % kw; t /= kw;
        const index_t p = t % kh; t /= kh;
        const index_t j = t % Wo; t /= Wo;
        const index_t i = t % Ho;
        const index_t n = t / Ho;
        cols[idx] = x_pad[n * sN + (i * sh + p) * sH + (j * sw + q) * sW + c * sC];
    }
}
"""

_COL2IM_NHWC = r"""
// The adjoint of im2col as a GATHER (no atomics): one thread per element of
// the padded input gradient dx_pad (N, Hp, Wp, C), C-contiguous, sums every
// dcols entry that im2col copied from that element,
//   dx_pad[n, y, x, c] = sum over (i, p) with y = i*sh + p, 0 <= i < Ho, 0 <= p < kh,
//                        and (j, q) with x = j*sw + q, 0 <= j < Wo, 0 <= q < kw, of
//                        dcols[(n, i, j), (p, q, c)]
// dcols (N*Ho*Wo, kh*kw*C) with any strides (sR, sK, in elements).  Terms are
// added with p, then q, ascending: the order of NumPy's per-tap slice-adds, so
// float results match the NumPy path bit for bit.
extern "C" __global__ void tinygan_col2im_nhwc(
    const scalar_t* __restrict__ dcols, scalar_t* __restrict__ dx_pad,
    const index_t total,                              // N*Hp*Wp*C
    const index_t sR, const index_t sK,
    const index_t Hp, const index_t Wp, const index_t C,
    const index_t kh, const index_t kw,
    const index_t sh, const index_t sw,
    const index_t Ho, const index_t Wo)
{
    for (index_t idx = (index_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (index_t)gridDim.x * blockDim.x) {
        index_t t = idx;
        const index_t c = t % C;  t /= C;
        const index_t x = t % Wp; t /= Wp;
        const index_t y = t % Hp;
        const index_t n = t / Hp;
        // the last window row/column that can touch (y, x), i.e. the smallest tap p/q
        const index_t i_last = (y / sh < Ho - 1) ? y / sh : Ho - 1;
        const index_t j_last = (x / sw < Wo - 1) ? x / sw : Wo - 1;
        scalar_t acc = scalar_t(0);
        for (index_t i = i_last, p = y - i_last * sh; i >= 0 && p < kh; --i, p += sh) {
            for (index_t j = j_last, q = x - j_last * sw; j >= 0 && q < kw; --j, q += sw) {
                acc += dcols[((n * Ho + i) * Wo + j) * sR + ((p * kw + q) * C + c) * sK];
            }
        }
        dx_pad[idx] = acc;
    }
}
"""


# ---------------------------------------------------------------------------
# the registry
# ---------------------------------------------------------------------------

_ENTRIES = [
    KernelSource(
        name="im2col_nhwc", kind="raw",
        doc="Windows of a padded NHWC image as GEMM rows (twin: conv._im2col).",
        code=_IM2COL_NHWC, kernel_names=("tinygan_im2col_nhwc",)),
    KernelSource(
        name="col2im_nhwc", kind="raw",
        doc="Adjoint of im2col_nhwc, one gathering thread per input element (twin: conv._col2im).",
        code=_COL2IM_NHWC, kernel_names=("tinygan_col2im_nhwc",)),
    KernelSource(
        name="leaky_relu_forward", kind="elementwise",
        doc="y = x if x > 0 else slope x, and mask = x > 0 "
            "(twin: activations.leaky_relu_forward).",
        in_params="scalar_t x, scalar_t slope",
        out_params="scalar_t y, bool mask",
        scalars=("slope",),
        operation="""
            mask = x > scalar_t(0);                     // mask = x > 0
            y = mask ? x : x * slope;                   // y = x if x > 0 else a x
        """),
    KernelSource(
        name="leaky_relu_scale", kind="elementwise",
        doc="s = 1 where mask else slope (twin: activations.leaky_relu_scale).",
        in_params="bool mask, scalar_t slope",
        out_params="scalar_t s",
        scalars=("slope",),
        operation="s = mask ? scalar_t(1) : slope;"),
    KernelSource(
        name="leaky_relu_backward", kind="elementwise",
        doc="dx = g * (1 if mask else slope) (twin: activations.leaky_relu_backward).",
        in_params="scalar_t g, bool mask, scalar_t slope",
        out_params="scalar_t dx",
        scalars=("slope",),
        operation="dx = mask ? g : g * slope;"),
    KernelSource(
        name="batch_norm_normalize", kind="elementwise",
        doc="xhat = (x - mean) invstd, y = gamma xhat + beta with per-channel (1, C, 1, 1) "
            "operands broadcast by CuPy, any input layout (twin: batchnorm.batch_norm_forward).",
        in_params="scalar_t x, scalar_t mean, scalar_t invstd, scalar_t gamma, scalar_t beta",
        out_params="scalar_t xhat, scalar_t y",
        operation="""
            xhat = (x - mean) * invstd;                 // xhat = (x - mu_c) / sqrt(var_c + eps)
            y = xhat * gamma + beta;                    // y = gamma_c xhat + beta_c
        """),
    KernelSource(
        name="batch_norm_backward", kind="elementwise",
        doc="dx = (g - dbeta/M - xhat dgamma/M) gamma invstd, the element-wise part of "
            "batch-norm backward (twin: batchnorm.batch_norm_backward).",
        in_params="scalar_t g, scalar_t xhat, scalar_t dbeta_m, scalar_t dgamma_m, scalar_t scale",
        out_params="scalar_t dx",
        operation="dx = (g - dbeta_m - xhat * dgamma_m) * scale;"),
    KernelSource(
        name="batch_norm_centered_sumsq", kind="reduction",
        doc="sum over the reduced axes of (x - mean)^2 without a temporary (the batch "
            "variance times M; twin: the var line of batchnorm.batch_norm_forward).",
        in_params="scalar_t x, scalar_t mean", out_params="scalar_t s",
        map_expr="(x - mean) * (x - mean)", reduce_expr="a + b", post_map_expr="s = a",
        identity="0"),
    KernelSource(
        name="batch_norm_dot", kind="reduction",
        doc="dgamma = sum over the reduced axes of g xhat without a temporary "
            "(twin: the dgamma line of batchnorm.batch_norm_backward).",
        in_params="scalar_t g, scalar_t xhat", out_params="scalar_t s",
        map_expr="g * xhat", reduce_expr="a + b", post_map_expr="s = a", identity="0"),
    KernelSource(
        name="adam_step", kind="elementwise",
        doc="One in-place Adam step over p, m and v, bias corrections folded into host "
            "scalars (twin: optim.adam_step_).",
        in_params=("scalar_t g, scalar_t beta1, scalar_t one_minus_beta1, scalar_t beta2, "
                   "scalar_t one_minus_beta2, scalar_t bias_correction2_sqrt, scalar_t eps, "
                   "scalar_t step_size, scalar_t weight_decay"),
        out_params="scalar_t p, scalar_t m, scalar_t v",
        scalars=("beta1", "one_minus_beta1", "beta2", "one_minus_beta2", "bias_correction2_sqrt",
                 "eps", "step_size", "weight_decay"),
        operation="""
            const scalar_t gw = (weight_decay != scalar_t(0)) ? g + weight_decay * p : g;  // g = g + wd p
            m = beta1 * m + one_minus_beta1 * gw;                   // m = b1 m + (1 - b1) g
            v = beta2 * v + one_minus_beta2 * (gw * gw);            // v = b2 v + (1 - b2) g^2
            const scalar_t denom = sqrt(v) / bias_correction2_sqrt + eps;  // sqrt(v_hat) + eps
            p = p - step_size * (m / denom);                        // p = p - lr m_hat / denom
        """),
    KernelSource(
        name="rmsprop_step", kind="elementwise",
        doc="One in-place RMSprop step (plain, centered and/or momentum; the optional "
            "buffers are raw so that a dummy stands in when unused; twin: optim.rmsprop_step_).",
        in_params=("scalar_t g, scalar_t alpha, scalar_t one_minus_alpha, scalar_t eps, "
                   "scalar_t lr, scalar_t weight_decay, scalar_t momentum, bool use_momentum, "
                   "bool centered"),
        out_params="scalar_t p, scalar_t v, raw scalar_t buf, raw scalar_t gavg",
        scalars=("alpha", "one_minus_alpha", "eps", "lr", "weight_decay", "momentum",
                 "use_momentum", "centered"),
        operation="""
            const scalar_t gw = (weight_decay != scalar_t(0)) ? g + weight_decay * p : g;  // g = g + wd p
            v = alpha * v + one_minus_alpha * (gw * gw);            // v = a v + (1 - a) g^2
            scalar_t avg;
            if (centered) {
                const scalar_t ga = alpha * gavg[i] + one_minus_alpha * gw;  // gavg = a gavg + (1 - a) g
                gavg[i] = ga;
                avg = sqrt(v - ga * ga) + eps;                      // avg = sqrt(v - gavg^2) + eps
            } else {
                avg = sqrt(v) + eps;                                // avg = sqrt(v) + eps
            }
            if (use_momentum) {
                const scalar_t b = momentum * buf[i] + gw / avg;    // buf = mu buf + g / avg
                buf[i] = b;
                p = p - lr * b;                                     // p = p - lr buf
            } else {
                p = p - lr * (gw / avg);                            // p = p - lr g / avg
            }
        """),
]

#: name -> entry, for every CUDA source in tinygan.
REGISTRY: dict[str, KernelSource] = {e.name: e for e in _ENTRIES}
assert len(REGISTRY) == len(_ENTRIES), "duplicate kernel names in the registry"


# ---------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------

_PARAM_RE = re.compile(r"^(?:(raw)\s+)?([A-Za-z_][A-Za-z0-9_]*)\s+([A-Za-z_][A-Za-z0-9_]*)$")


def parse_params(params: str, dtype: str | None = None) -> list[tuple[bool, str, str]]:
    """``"raw scalar_t buf, bool m"`` -> ``[(True, "scalar_t", "buf"), (False, "bool", "m")]``.

    With ``dtype`` the type ``scalar_t`` is replaced by that dtype name.
    """
    out = []
    for item in params.split(","):
        item = " ".join(item.split())
        if not item:
            continue
        m = _PARAM_RE.match(item)
        if m is None:
            raise ValueError(f"cannot parse kernel parameter {item!r} in {params!r}")
        raw, typ, name = bool(m.group(1)), m.group(2), m.group(3)
        if dtype is not None and typ == "scalar_t":
            typ = dtype
        out.append((raw, typ, name))
    return out


def _format_params(params: list[tuple[bool, str, str]]) -> str:
    return ", ".join(("raw " if raw else "") + f"{typ} {name}" for raw, typ, name in params)


def variants(source: KernelSource) -> list[tuple[str, str | None]]:
    """Every ``(dtype, index_type)`` the entry is compiled for (index_type None unless raw)."""
    if source.kind == "raw":
        return [(d, i) for d in DTYPES for i in INDEX_TYPES]
    return [(d, None) for d in DTYPES]


def render(name: str | KernelSource, dtype: str, index_type: str | None = None) -> Rendered:
    """Specialise registry entry ``name`` (or an unregistered entry) to ``dtype``.

    ``dtype`` is ``"float32"`` or ``"float64"``; ``index_type`` (``"int32"`` or
    ``"int64"``) is required for raw kernels and refused for the others.
    """
    source = name if isinstance(name, KernelSource) else REGISTRY[name]
    name = source.name
    if dtype not in DTYPES:
        raise TypeError(f"CUDA kernel {name}: unsupported dtype {dtype!r}, "
                        f"expected one of {sorted(DTYPES)}")
    ctype = DTYPES[dtype]
    typedef = f"typedef {ctype} scalar_t;\n"
    if source.kind == "raw":
        if index_type not in INDEX_TYPES:
            raise TypeError(f"CUDA kernel {name}: index_type must be one of "
                            f"{sorted(INDEX_TYPES)}, got {index_type!r}")
        suffix = f"_{_SUFFIX[dtype]}_{_SUFFIX[index_type]}"
        code = source.code
        names = []
        for k in source.kernel_names:
            code, n = re.subn(rf"\b{re.escape(k)}\b", k + suffix, code)
            if n == 0:
                raise ValueError(f"CUDA kernel {name}: kernel {k!r} not found in its source")
            names.append(k + suffix)
        code = typedef + f"typedef {INDEX_TYPES[index_type]} index_t;\n" + code
        return Rendered(source, dtype, index_type, tuple(names), code=code)
    if source.kind not in ("elementwise", "reduction"):
        raise ValueError(f"CUDA kernel {name}: unknown kind {source.kind!r}")
    if index_type is not None:
        raise TypeError(f"CUDA kernel {name}: index_type applies to raw kernels only")
    return Rendered(
        source, dtype, None, (f"tinygan_{name}_{_SUFFIX[dtype]}",),
        in_params=_format_params(parse_params(source.in_params, dtype)),
        out_params=_format_params(parse_params(source.out_params, dtype)),
        preamble=typedef + source.preamble,
        reduce_type=ctype if source.kind == "reduction" else "")
