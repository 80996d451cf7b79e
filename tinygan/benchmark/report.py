"""Reporting: the machine and library versions, markdown tables, JSON, and "where we stand vs targets".

Everything here works on the plain dicts the benchmarks produce (see
``docs/benchmarks.md`` for the JSON layout), so a saved JSON file can be
re-rendered.  PyTorch and CuPy are imported only to read their versions,
inside :func:`versions`.
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
from collections import defaultdict
from pathlib import Path

import numpy as np

# The issues' targets (#13 on the CPU: at or under PyTorch's time, in less memory).
CPU_STEP_RATIO = 1.0         # whole DCGAN iteration at or under PyTorch's time
CPU_KERNEL_RATIO = 1.5       # no kernel row above 1.5x PyTorch
CPU_GEMM_SHARE = 70.0        # GEMM-bound kernels at >= 70% of NumPy's own GEMM rate
CPU_BANDWIDTH_SHARE = 70.0   # batch norm, LeakyReLU and Adam at >= 70% of the all-cores copy bandwidth
MEMORY_BOUND_TARGET_OPS = ("batch_norm", "leaky_relu", "adam")
GPU_STEP_RATIO = 1.5         # whole iteration within 1.5x of PyTorch + cuDNN
GPU_BANDWIDTH_SHARE = 80.0   # element-wise kernels and Adam at >= 80% of copy bandwidth


# ---------------------------------------------------------------------------- machine and versions

def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def machine_info(device: str, threads: int) -> dict:
    """CPU model, core counts, memory, threads used; the GPU's name on ``cuda``."""
    model = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                  if line.startswith("model name")), platform.processor() or platform.machine())
    flags = next((line.split(":", 1)[1].split() for line in _read("/proc/cpuinfo").splitlines()
                  if line.startswith("flags")), [])
    mem = next((int(line.split()[1]) // 1024 for line in _read("/proc/meminfo").splitlines()
                if line.startswith("MemTotal")), None)
    info = {"cpu": model, "cores": os.cpu_count(),
            "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "simd": [f for f in ("avx2", "avx512f", "fma") if f in flags], "memory_mib": mem,
            "threads": threads, "platform": platform.platform(), "device": device}
    if device != "cpu":
        try:
            import cupy
            props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
            info["gpu"] = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
            info["gpu_memory_mib"] = props["totalGlobalMem"] // (1 << 20)
        except Exception as e:  # noqa: BLE001 - informational only
            info["gpu"] = f"unknown ({e})"
    return info


def blas_info() -> dict:
    """NumPy's BLAS: the build's name and version, and threadpoolctl's live view (threads, architecture)."""
    out: dict = {}
    try:
        deps = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        out["build"] = f"{deps.get('name')} {deps.get('version')}"
    except Exception:  # noqa: BLE001 - numpy < 1.25 or an odd build
        out["build"] = "unknown"
    try:
        from threadpoolctl import threadpool_info
        for pool in threadpool_info():
            path = pool.get("filepath", "")
            if pool.get("user_api") == "blas" and ("numpy" in path or "scipy_openblas" in path):
                out.update({k: pool.get(k) for k in ("internal_api", "version", "num_threads", "architecture")})
                break
    except ImportError:
        out["threadpoolctl"] = "not installed"
    # how long OpenBLAS's idle workers spin (2^n cycles), as this process's OpenBLAS read it at load
    # (tinygan/__init__.py sets 12; docs/benchmarks.md, "OpenBLAS's idle threads")
    out["thread_timeout"] = os.environ.get("OPENBLAS_THREAD_TIMEOUT", "default")
    return out


def git_commit(*paths: str) -> str:
    """The tinygan checkout's commit, '+dirty' if tracked files (under ``paths``, if given) differ from it.

    Read-only (no index refresh); "unknown" outside a git checkout.  The
    benchmark reports and the result scripts under benchmarks/ all record it.
    """
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, env=env, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *paths], cwd=root,
                               env=env, capture_output=True, text=True, timeout=10).stdout.strip()
        return f"{head}{'+dirty' if dirty else ''}" if head else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _tinygan_version() -> str:
    """tinygan's installed version (its package metadata), "unknown" when it is not installed."""
    try:
        return importlib.metadata.version("tinygan")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def cpu_kernels() -> str:
    """The CPU batch-norm / LeakyReLU kernels: "numba X.Y" when compiled (tinygan/kernels/jit.py), else "numpy"."""
    from tinygan.kernels import jit
    return f"numba {jit.numba.__version__}" if jit.enabled() else "numpy"


def versions(device: str) -> dict:
    """Python, NumPy (+ BLAS), PyTorch (+ its CPU/GPU back ends), tinygan (+ commit), CuPy on ``cuda``."""
    import torch
    out = {"python": platform.python_version(), "numpy": np.__version__, "blas": blas_info(),
           "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
           "torch_mkldnn": bool(torch.backends.mkldnn.is_available()),
           "torch_mkl": bool(torch.backends.mkl.is_available()),
           "tinygan": _tinygan_version(), "tinygan_commit": git_commit(), "tinygan_kernels": cpu_kernels()}
    if device != "cpu":
        import cupy
        out["cupy"] = cupy.__version__
        out["cuda_runtime"] = cupy.cuda.runtime.runtimeGetVersion()
        out["torch_cuda"] = torch.version.cuda
        out["cudnn"] = torch.backends.cudnn.version()
    return out


# ---------------------------------------------------------------------------- ceilings

def merge_ceilings(first: dict, second: dict) -> dict:
    """The better of two ceiling measurements, field by field (a burst of load lowers a measurement)."""
    out = dict(first)
    for key, value in second.items():
        if key.endswith(("_gflops", "_gbs")):
            out[key] = max(value, first.get(key, 0.0))
    return out


def copy_ceiling(ceilings: dict) -> float | None:
    """The copy bandwidth memory-bound rows are held to: all cores (tinygan's thread pool) when measured."""
    return ceilings.get("tinygan_copy_all_gbs") or ceilings.get("tinygan_copy_gbs")


def apply_ceilings(tables: list[dict], ceilings: dict) -> None:
    """(Re)compute every row's share of the ceiling from ``ceilings``, in place."""
    gemm, copy = ceilings.get("tinygan_gemm_gflops"), copy_ceiling(ceilings)
    for table in tables:
        for r in table["kernels"]:
            ceiling = gemm if r["bound"] == "gemm" else copy
            if "tinygan_rate" in r and ceiling:
                r["ceiling_share"] = 100.0 * r["tinygan_rate"] / ceiling
        for s in table["steps"]:
            if "tinygan_gflops" in s and gemm:
                s["ceiling_share"] = 100.0 * s["tinygan_gflops"] / gemm


# ---------------------------------------------------------------------------- formatting

def _ms(t: dict | None) -> str:
    if not t:
        return "-"
    return f"{t['median_ms']:.3g} [{t['q1_ms']:.3g}-{t['q3_ms']:.3g}]"


def _num(v, fmt=".3g") -> str:
    return "-" if v is None else format(v, fmt)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def kernel_table(rows: list[dict]) -> str:
    """One line per kernel row: agreement, both times (median [IQR]), ratio, rates, share of the ceiling."""
    header = ["config", "layer", "op", "pass", "shape", "max rel err", "tinygan ms [IQR]", "PyTorch ms [IQR]",
              "tinygan/PyTorch", "tinygan rate", "PyTorch rate", "% ceiling"]
    body = []
    for r in rows:
        err = f"{r['agree']:.1e}" + ("" if r["ok"] else " FAIL")
        unit = "GF/s" if r["unit"] == "GFLOP/s" else "GB/s"
        body.append([r["config"], r["layer"], r["op"], r["pass"], r["shape"], err, _ms(r.get("tinygan")),
                     _ms(r.get("torch")), _num(r.get("ratio"), ".2f"),
                     f"{_num(r.get('tinygan_rate'))} {unit}" if "tinygan_rate" in r else "-",
                     f"{_num(r.get('torch_rate'))} {unit}" if "torch_rate" in r else "-",
                     _num(r.get("ceiling_share"), ".0f")])
    return _table(header, body)


def _mem(m: dict | None, side: str) -> str:
    if not m or side not in m:
        return "-"
    v = m[side]
    if "error" in v:
        return "error"
    return f"{v['step_peak_mib']:.0f} (peak {v['peak_mib']:.0f})"


def step_table(rows: list[dict]) -> str:
    """One line per configuration: parity, both times, ratio, GFLOP/s, peak memory."""
    header = ["config", "parity f32: grads from same weights / losses / weights after N iters", "f64", "tinygan ms [IQR]",
              "PyTorch ms [IQR]", "tinygan/PyTorch", "GFLOP", "tinygan GF/s (% GEMM ceiling)", "PyTorch GF/s",
              "tinygan MiB step (process peak)", "PyTorch MiB step (process peak)"]
    body = []
    for r in rows:
        p = r["parity"]
        par = (f"{p['probe_grad_rel_l2']:.1e} / {p['loss_rel']:.1e} / {p['weight_rel_l2']:.1e}"
               + (" ok" if p["ok"] else " FAIL " + ",".join(p["failed"])))
        p64 = r.get("parity_f64")
        f64 = "-" if not p64 else (f"{max(p64['loss_rel'], p64['weight_rel_l2'], p64['weight_max_abs']):.0e}"
                                  + (" ok" if p64["ok"] else " FAIL"))
        rate = "-" if "tinygan_gflops" not in r else (
            f"{r['tinygan_gflops']:.3g}" + (f" ({r['ceiling_share']:.0f}%)" if "ceiling_share" in r else ""))
        body.append([r["config"], par, f64, _ms(r.get("tinygan")), _ms(r.get("torch")), _num(r.get("ratio"), ".2f"),
                     f"{r['gflop']:.3g}", rate, _num(r.get("torch_gflops")), _mem(r.get("memory"), "tinygan"),
                     _mem(r.get("memory"), "torch")])
    return _table(header, body)


def coverage_lines(kernels: list[dict], steps: list[dict]) -> list[str]:
    """How much of each measured iteration the kernel rows explain (sum of calls per step x median)."""
    lines = []
    for s in steps:
        rows = [r for r in kernels if r["config"] == s["config"] and "tinygan" in r]
        if not rows or "tinygan" not in s:
            continue
        est = {side: sum(r["per_step"] * r[side]["median_ms"] for r in rows) for side in ("tinygan", "torch")}
        lines.append(f"- {s['config']}: the kernel rows (calls per iteration x median, timed in isolation) add up "
                     f"to {est['tinygan']:.0f} ms against tinygan's measured {s['tinygan']['median_ms']:.0f} ms "
                     f"iteration, and to {est['torch']:.0f} ms against PyTorch's {s['torch']['median_ms']:.0f} ms; "
                     "the difference is autograd, glue ops, ReLU/Tanh and allocation, less what runs faster "
                     "inside a step than alone.")
    return lines


# ---------------------------------------------------------------------------- targets

def _excess_by_op(kernels: list[dict], config: str) -> tuple[list, list]:
    """(per op, per row) extra tinygan ms per training iteration = calls per step x (tinygan - PyTorch)."""
    by_op: dict = defaultdict(float)
    by_row = []
    for r in kernels:
        if r["config"] != config or "tinygan" not in r or not r["per_step"]:
            continue
        extra = r["per_step"] * (r["tinygan"]["median_ms"] - r["torch"]["median_ms"])
        by_op[f"{r['op']} {r['pass']}"] += extra
        by_row.append((extra, f"{r['op']} {r['pass']} {r['layer']}"))
    return sorted(by_op.items(), key=lambda kv: -kv[1]), sorted(by_row, reverse=True)


def _holder(kernels: list[dict], step: dict) -> str:
    """A sentence naming the ops that hold the extra time of one configuration's iteration."""
    ops, rows = _excess_by_op(kernels, step["config"])
    gap = step["tinygan"]["median_ms"] - step["torch"]["median_ms"]
    if not ops:
        return "no kernel rows for this configuration (run without --only step to attribute the time)"
    top = ", ".join(f"{name} {ms:+.0f} ms" for name, ms in ops[:4] if ms > 0) or "none of the kernels"
    rest = gap - sum(ms for _, ms in ops)
    worst = f"; the single largest row: {rows[0][1]} ({rows[0][0]:+.0f} ms)" if rows and rows[0][0] > 0 else ""
    return (f"tinygan is {gap:+.0f} ms per iteration behind; estimated from the kernel rows (calls per step x "
            f"time difference): {top}{worst}; not covered by the rows (autograd, glue, ReLU/Tanh): {rest:+.0f} ms")


def evaluate_targets(result: dict) -> list[dict]:
    """Each target of the issue: met or not, the numbers, and what holds the time where it is missed."""
    table = next((t for t in result["tables"] if not t.get("tf32")), None)
    if table is None:
        return []
    kernels = [r for r in table["kernels"] if "tinygan" in r]
    steps = [s for s in table["steps"] if "tinygan" in s]
    ceilings = result.get("ceilings", {})
    out = []
    gpu = result["device"] != "cpu"

    step_limit = GPU_STEP_RATIO if gpu else CPU_STEP_RATIO
    for s in steps:
        met = s["ratio"] <= step_limit
        out.append({"target": (f"whole DCGAN iteration within {step_limit}x of PyTorch + cuDNN" if gpu
                               else "whole DCGAN iteration at or under PyTorch's time"),
                    "scope": s["config"], "value": f"{s['ratio']:.2f}x", "met": met,
                    "holds": None if met else _holder(kernels, s)})
    if not gpu:
        for s in table["steps"]:
            mem = s.get("memory") or {}
            a, b = mem.get("tinygan", {}), mem.get("torch", {})
            if "step_peak_mib" not in a or "step_peak_mib" not in b:
                continue
            met = a["step_peak_mib"] <= b["step_peak_mib"]
            out.append({"target": "one iteration's memory no higher than PyTorch's", "scope": s["config"],
                        "value": f"{a['step_peak_mib']:.0f} vs {b['step_peak_mib']:.0f} MiB (process peaks "
                                 f"{a['peak_mib']:.0f} vs {b['peak_mib']:.0f})", "met": met,
                        "holds": None if met else "activations the graph keeps and the step's temporaries "
                                                  "(see docs/benchmarks.md, Memory)"})

    if not gpu and kernels:          # --only step times no kernel row: nothing to judge
        bad = sorted((r for r in kernels if r["ratio"] > CPU_KERNEL_RATIO), key=lambda r: -r["ratio"])
        out.append({"target": f"no kernel worse than {CPU_KERNEL_RATIO:g}x PyTorch", "scope": "all kernel rows",
                    "value": f"worst {max((r['ratio'] for r in kernels), default=0):.2f}x", "met": not bad,
                    "holds": None if not bad else "; ".join(
                        f"{r['config']} {r['op']} {r['pass']} {r['layer']} {r['ratio']:.2f}x" for r in bad[:8])
                    + (f"; and {len(bad) - 8} more" if len(bad) > 8 else "")})
        gemm = [r for r in kernels if r["bound"] == "gemm" and "ceiling_share" in r]
        if gemm:
            slow = sorted((r for r in gemm if r["ceiling_share"] < CPU_GEMM_SHARE), key=lambda r: r["ceiling_share"])
            weighted = [r for r in gemm if r["per_step"]]
            agg = (100.0 * sum(r["per_step"] * r["work"] for r in weighted)
                   / sum(r["per_step"] * r["tinygan"]["median_ms"] * 1e-3 for r in weighted)
                   / ceilings["tinygan_gemm_gflops"]) if weighted else None
            # The shortfall in ms per iteration against the 70% rate says which row holds the time.
            target_rate = CPU_GEMM_SHARE / 100 * ceilings["tinygan_gemm_gflops"]
            short = sorted(((r["per_step"] * (r["tinygan"]["median_ms"] - r["work"] * 1e3 / target_rate), r)
                            for r in slow), key=lambda t: -t[0])
            out.append({"target": f"GEMM-bound kernels at >= {CPU_GEMM_SHARE:.0f}% of NumPy's own GEMM rate "
                                  f"({ceilings['tinygan_gemm_gflops']:.0f} GFLOP/s)",
                        "scope": "conv2d, conv_transpose2d, linear rows",
                        "value": f"{len(gemm) - len(slow)}/{len(gemm)} rows; time-weighted over a step "
                                 + (f"{agg:.0f}%" if agg is not None else "-"),
                        "met": not slow,
                        "holds": None if not slow else "; ".join(
                            f"{r['config']} {r['op']} {r['pass']} {r['layer']} {r['ceiling_share']:.0f}%"
                            + (f" ({ms:+.0f} ms/iter vs 70%)" if r["per_step"] else " (not in the step)")
                            for ms, r in short[:8]) + (f"; and {len(short) - 8} more" if len(short) > 8 else "")})
        copy = copy_ceiling(ceilings)
        mem = [r for r in kernels if r["op"] in MEMORY_BOUND_TARGET_OPS and "ceiling_share" in r]
        if mem and copy:
            slow = sorted((r for r in mem if r["ceiling_share"] < CPU_BANDWIDTH_SHARE),
                          key=lambda r: r["ceiling_share"])
            out.append({"target": f"batch norm, LeakyReLU and Adam at >= {CPU_BANDWIDTH_SHARE:.0f}% of the "
                                  f"all-cores copy bandwidth ({copy:.1f} GB/s)",
                        "scope": "batch_norm, leaky_relu, adam rows", "value": f"{len(mem) - len(slow)}/{len(mem)} rows",
                        "met": not slow,
                        "holds": None if not slow else "; ".join(
                            f"{r['config']} {r['op']} {r['pass']} {r['layer']} {r['ceiling_share']:.0f}%"
                            for r in slow[:8]) + (f"; and {len(slow) - 8} more" if len(slow) > 8 else "")})
    else:
        # BCE on (N,) logits moves a few hundred bytes: launch-bound, so it is left out of this target.
        mem = [r for r in kernels if r["op"] in ("batch_norm", "leaky_relu", "adam") and "ceiling_share" in r]
        slow = sorted((r for r in mem if r["ceiling_share"] < GPU_BANDWIDTH_SHARE), key=lambda r: r["ceiling_share"])
        out.append({"target": f"element-wise kernels and Adam at >= {GPU_BANDWIDTH_SHARE:.0f}% of copy bandwidth "
                              f"({ceilings.get('tinygan_copy_gbs', 0):.0f} GB/s)",
                    "scope": "batch_norm, leaky_relu, adam rows (BCE on N logits is launch-bound)",
                    "value": f"{len(mem) - len(slow)}/{len(mem)} rows", "met": not slow,
                    "holds": None if not slow else "; ".join(
                        f"{r['config']} {r['op']} {r['pass']} {r['layer']} {r['ceiling_share']:.0f}%"
                        for r in slow[:8]) + (f"; and {len(slow) - 8} more" if len(slow) > 8 else "")})
    return out


def targets_markdown(targets: list[dict]) -> str:
    if not targets:
        return "_No timed rows: nothing to compare with the targets._"
    lines = []
    for t in targets:
        mark = "met" if t["met"] else "MISSED"
        lines.append(f"- **{mark}** - {t['target']} ({t['scope']}): {t['value']}")
        if t.get("holds"):
            lines.append(f"  - where the time is: {t['holds']}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- whole reports

def tables_markdown(result: dict) -> str:
    """The kernel and step tables of every run (float32, and TF32 when asked for)."""
    parts = []
    for t in result["tables"]:
        title = "TF32 on (both frameworks)" if t.get("tf32") else "float32"
        if t["kernels"]:
            parts += [f"### Kernels, {title}", "", kernel_table(t["kernels"]), ""]
        if t["steps"]:
            parts += [f"### Whole training iteration, {title}", "", step_table(t["steps"]), ""]
            cov = coverage_lines(t["kernels"], t["steps"])
            if cov:
                parts += cov + [""]
    return "\n".join(parts)


def _ceilings_markdown(c: dict) -> str:
    lines = [f"- GEMM (float32, n = {', '.join(map(str, c.get('gemm_sizes', [])))}): "
             f"{c.get('tinygan_library', 'numpy')} {c.get('tinygan_gemm_gflops', 0):.0f} GFLOP/s, "
             f"PyTorch {c.get('torch_gemm_gflops', 0):.0f} GFLOP/s",
             f"- copy ({c.get('copy_bytes', 0) >> 20} MiB, read + write): {c.get('tinygan_library', 'numpy')} "
             f"{c.get('tinygan_copy_gbs', 0):.1f} GB/s"
             + (f" on one core, {c['tinygan_copy_all_gbs']:.1f} GB/s on {c.get('copy_threads', '?')} threads "
                "(tinygan's element-wise pool: the memory-bound rows' ceiling)" if c.get("tinygan_copy_all_gbs")
                else "")
             + f", PyTorch {c.get('torch_copy_gbs', 0):.1f} GB/s"]
    return "\n".join(lines)


def full_markdown(result: dict) -> str:
    """The results file: machine, versions, command, ceilings, tables, targets."""
    m, v = result["machine"], result["versions"]
    blas = v.get("blas", {})
    lines = [f"# tinygan vs PyTorch ({result['device']})", "",
             "## Machine", "",
             f"- CPU: {m['cpu']}; {m['cores']} cores ({m['cores_usable']} usable), SIMD {', '.join(m['simd']) or '-'}, "
             f"{m.get('memory_mib') or '?'} MiB",
             f"- threads: {m['threads']} (NumPy's BLAS via threadpoolctl, tinygan's element-wise pool, torch.set_num_threads)"]
    if m.get("gpu"):
        lines.append(f"- GPU: {m['gpu']} ({m.get('gpu_memory_mib', '?')} MiB)")
    lines += ["", "## Versions", "",
              f"- Python {v['python']}, NumPy {v['numpy']} with {blas.get('build', '?')}"
              + (f" ({blas.get('internal_api')} {blas.get('version')}, {blas.get('architecture')}, "
                 f"{blas.get('num_threads')} threads)" if blas.get("internal_api") else "")
              + (f", OPENBLAS_THREAD_TIMEOUT={blas['thread_timeout']}" if "thread_timeout" in blas else ""),
              f"- PyTorch {v['torch']} (mkldnn {v['torch_mkldnn']}, mkl {v['torch_mkl']}, "
              f"{v['torch_threads']} threads)",
              f"- tinygan {v['tinygan']} at {v['tinygan_commit']}; CPU batch norm and LeakyReLU kernels: "
              f"{v.get('tinygan_kernels', 'numpy')}"]
    if v.get("cupy"):
        lines.append(f"- CuPy {v['cupy']}, CUDA runtime {v['cuda_runtime']}; PyTorch CUDA {v['torch_cuda']}, "
                     f"cuDNN {v['cudnn']}")
    lines += ["", "## Command", "", f"    {result['command']}", ""]
    if result.get("timing"):
        lines += ["## Timing method", "", f"- {result['timing']} (docs/benchmarks.md, Timing method)", ""]
    lines += [
              "## Ceilings (measured on this machine)", "", _ceilings_markdown(result["ceilings"]), "",
              "## Results", "", tables_markdown(result),
              "## Where we stand vs targets", "", targets_markdown(result.get("targets", [])), ""]
    if result.get("quick"):
        lines.insert(2, "_--quick run: tiny shapes and 1-2 repetitions; the times mean nothing._\n")
    return "\n".join(lines)


def write_json(result: dict, path: str) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(result, indent=1, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def write_markdown(result: dict, path: str) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(full_markdown(result))
