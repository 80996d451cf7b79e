"""The Python part of ``benchmarks/gpu_check.sh``: checks of tinygan's CuPy path that need a GPU.

    python benchmarks/gpu_check.py probes --json OUT.json [--dry]
    python benchmarks/gpu_check.py compare RUN_DIR [--tol T]

``probes`` (one JSON object, every check with ``ok`` and its numbers; a
one-line verdict per check on stdout):

* ``im2col_col2im_odd_strides``  the raw kernels against NumPy, bit for bit, at
  odd strides and kernel sizes, on contiguous, cropped and transposed inputs;
* ``index_limit``                im2col and col2im on matrices past 2^30 elements
  (the 64-bit-index variants on a real GPU; with ``--dry`` the limit is lowered
  instead), sampled rows against the NumPy formula;
* ``optim_non_contiguous``       Adam and RMSprop (centered, momentum) on
  transposed and strided parameters against the NumPy twins;
* ``host_sync``                  a ~1 s spin kernel is queued, then one
  ``train_step``: it must return before the spin kernel ends (no host sync
  inside a step);
* ``h2d_per_step``               host-to-device copies per training step
  (``cupy.asarray``/``array``/``ascontiguousarray`` of host data counted), and
  how many are 0-d (a Python scalar made a device array);
* ``dcgan64_step``               peak GPU memory of one DCGAN-64 training step
  (an allocator that tracks the pool's peak) and seconds per step; the kernel
  launches per step come from ``nsys`` when it is installed.

``compare`` reads two run folders written by ``tinygan train`` (``gpu`` and
``cpu`` under RUN_DIR): the first step's losses must agree to float32 noise;
prints seconds per step on the GPU (from CUDA events).

``--dry`` runs on the CPU stand-in for CuPy (``tests/fakecupy``, put on
``PYTHONPATH`` by ``gpu_check.sh --dry``) with small shapes: it checks the
script, not a GPU.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

LOSSES = ("Loss_D", "Loss_G", "D_x", "D_G_z1", "D_G_z2")


def _cp():
    from tinygan.backend import cupy_module
    return cupy_module()


def _fake(cp) -> bool:
    return bool(getattr(cp, "FAKE", False))


# ---------------------------------------------------------------------------
# probes
# ---------------------------------------------------------------------------

def _layout(a: np.ndarray, layout: str) -> np.ndarray:
    if layout == "contiguous":
        return a
    if layout == "cropped":
        big = np.zeros(tuple(n + 3 for n in a.shape), a.dtype)
        view = big[tuple(slice(1, 1 + n) for n in a.shape)]
        view[...] = a
        return view
    perm = (a.ndim - 1,) + tuple(range(a.ndim - 1))
    return np.ascontiguousarray(a.transpose(perm)).transpose(tuple(int(k) for k in np.argsort(perm)))


def _to_gpu_keeping_layout(cp, a: np.ndarray):
    base = a
    while base.base is not None:
        base = base.base
    gbase = cp.asarray(base)
    offset = a.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    from cupy.lib.stride_tricks import as_strided
    return as_strided(gbase.ravel()[offset // a.itemsize:], shape=a.shape, strides=a.strides)


def probe_odd_strides(cp, dry: bool) -> dict:
    from tinygan.kernels import conv
    from tinygan.kernels.cuda import launch
    cases = [(2, 11, 9, 3, 3, 5, 3, 2), (3, 10, 13, 5, 4, 3, 2, 3), (1, 17, 16, 2, 5, 4, 5, 3),
             (2, 9, 9, 7, 1, 1, 3, 3), (4, 34, 34, 3, 4, 4, 2, 2)]
    failed = []
    for case in cases:
        N, Hp, Wp, C, kh, kw, sh, sw = case
        Ho, Wo = (Hp - kh) // sh + 1, (Wp - kw) // sw + 1
        rng = np.random.default_rng(sum(case))
        for layout in ("contiguous", "cropped", "transposed"):
            for dtype in ("float32", "float64"):
                x = _layout(rng.standard_normal((N, Hp, Wp, C)).astype(dtype), layout)
                cols = launch.im2col_nhwc(_to_gpu_keeping_layout(cp, x), (kh, kw), (sh, sw), (Ho, Wo))
                if not np.array_equal(cols.get(), conv._im2col(x, (kh, kw), (sh, sw), (Ho, Wo))):
                    failed.append(f"im2col {case} {layout} {dtype}")
                d = _layout(rng.standard_normal(cols.shape).astype(dtype), layout)
                dx = launch.col2im_nhwc(_to_gpu_keeping_layout(cp, d), (Hp, Wp), (kh, kw), (sh, sw), (Ho, Wo))
                if not np.array_equal(dx.get(), conv._col2im(d, (Hp, Wp), (kh, kw), (sh, sw), (Ho, Wo))):
                    failed.append(f"col2im {case} {layout} {dtype}")
    return {"ok": not failed, "cases": len(cases) * 6, "failed": failed}


def probe_index_limit(cp, dry: bool) -> dict:
    """im2col and col2im past 2^30 elements: the int64 variants, checked on sampled elements."""
    from tinygan.kernels.cuda import launch
    saved = launch._INT32_LIMIT
    if dry:
        launch._INT32_LIMIT = 512                    # the same code path on small arrays
    try:
        rng = np.random.default_rng(0)
        out = {}
        # im2col: cols (N*64*64, 4*4*64) = 2^30 elements at N = 256 (+ 1 image: past the limit)
        N, C, k, Ho = (256 + 1, 64, 4, 64) if not dry else (3, 4, 2, 6)
        Hp = Ho + k - 1
        x = rng.standard_normal((N, Hp, Hp, C)).astype(np.float32)
        plan = launch.im2col_plan("im2col_nhwc", x.shape, tuple(s // 4 for s in x.strides), (k, k), (1, 1),
                                  (Ho, Ho))
        xg = cp.asarray(x)
        cols = launch.im2col_nhwc(xg, (k, k), (1, 1), (Ho, Ho))
        rows = np.unique(np.concatenate([[0, cols.shape[0] - 1], rng.integers(0, cols.shape[0], 2000)]))
        got = cols[cp.asarray(rows)].get()
        n, rem = np.divmod(rows, Ho * Ho)
        i, j = np.divmod(rem, Ho)
        want = np.stack([x[n, i + p, j + q, :] for p in range(k) for q in range(k)], axis=1).reshape(len(rows), -1)
        out["im2col"] = {"elements": int(plan["total"]), "index_type": plan["index_type"],
                         "ok": bool(np.array_equal(got, want) and plan["index_type"] == "int64")}
        del xg, cols
        # col2im: 2x2 windows at stride 2 do not overlap, so dx[n, y, x, c] is one dcols entry
        N, C, Ho = (1024 + 1, 256, 33) if not dry else (3, 4, 5)
        Hp = 2 * Ho
        dcols = cp.asarray(rng.standard_normal((N * Ho * Ho, 4 * C)).astype(np.float32)) if dry else \
            cp.random.standard_normal((N * Ho * Ho, 4 * C), dtype=cp.float32)
        plan = launch.col2im_plan("col2im_nhwc", dcols.shape, (dcols.shape[1], 1), (Hp, Hp), (2, 2), (2, 2),
                                  (Ho, Ho))
        dx = launch.col2im_nhwc(dcols, (Hp, Hp), (2, 2), (2, 2), (Ho, Ho))
        total = dx.size
        flat = np.unique(np.concatenate([[0, total - 1], rng.integers(0, total, 2000)]))
        got = dx.ravel()[cp.asarray(flat)].get()
        n, rem = np.divmod(flat, Hp * Hp * C)
        y, rem = np.divmod(rem, Hp * C)
        xx, c = np.divmod(rem, C)
        src_rows = (n * Ho + y // 2) * Ho + xx // 2
        src_cols = ((y % 2) * 2 + xx % 2) * C + c
        want = dcols[cp.asarray(src_rows), cp.asarray(src_cols)].get()
        out["col2im"] = {"elements": int(total), "index_type": plan["index_type"],
                         "ok": bool(np.array_equal(got, want) and plan["index_type"] == "int64")}
        del dcols, dx
        cp.get_default_memory_pool().free_all_blocks()
    finally:
        launch._INT32_LIMIT = saved
    out["ok"] = all(v["ok"] for v in out.values() if isinstance(v, dict))
    return out


def probe_optim_non_contiguous(cp, dry: bool) -> dict:
    from tinygan.kernels import optim as kopt
    rng = np.random.default_rng(1)
    failed = []
    layouts = {"transposed": lambda a: np.ascontiguousarray(a.T).T,
               "strided": lambda a: np.repeat(a, 2, axis=1)[:, ::2]}
    for name, make in layouts.items():
        for dtype, tol in (("float32", 2e-6), ("float64", 1e-12)):
            p = make(rng.standard_normal((7, 5)).astype(dtype))
            m, v = make(np.zeros((7, 5), dtype)), make(np.zeros((7, 5), dtype))
            buf, gavg = make(np.zeros((7, 5), dtype)), make(np.zeros((7, 5), dtype))
            host = {k: a.copy() for k, a in dict(p=p, m=m, v=v, buf=buf, gavg=gavg).items()}
            dev = {k: _to_gpu_keeping_layout(cp, a) for k, a in dict(p=p, m=m, v=v, buf=buf, gavg=gavg).items()}
            if dev["p"].strides != p.strides:
                failed.append(f"{name}: layout not kept on the device")
            p2 = dev["p"].copy()
            host2 = host["p"].copy()
            for step in range(1, 4):
                g = rng.standard_normal((7, 5)).astype(dtype)
                kopt.adam_step_(host["p"], g, host["m"], host["v"], lr=1e-2, beta1=0.5, beta2=0.999, eps=1e-8,
                                step=step, weight_decay=0.01)
                kopt.adam_step_(dev["p"], cp.asarray(g), dev["m"], dev["v"], lr=1e-2, beta1=0.5, beta2=0.999,
                                eps=1e-8, step=step, weight_decay=0.01)
                hyper = dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.01, momentum=0.9, centered=True)
                kopt.rmsprop_step_(host2, g, host["v"].copy(), host["buf"], host["gavg"], **hyper)
                kopt.rmsprop_step_(p2, cp.asarray(g), dev["v"].copy(), dev["buf"], dev["gavg"], **hyper)
            for key, a, b in (("adam p", dev["p"], host["p"]), ("adam m", dev["m"], host["m"]),
                              ("adam v", dev["v"], host["v"]), ("rmsprop p", p2, host2),
                              ("rmsprop buf", dev["buf"], host["buf"])):
                if not np.allclose(a.get(), b, rtol=tol, atol=tol):
                    failed.append(f"{name} {dtype} {key}")
    return {"ok": not failed, "failed": failed}


def _trainer(device: str, **kw):
    from tinygan.run.config import TrainConfig
    from tinygan.run.trainer import Trainer
    base = dict(device=device, steps=10, progress=False, out=tempfile.mkdtemp(prefix="gpu-check-"))
    base.update(kw)
    return Trainer(TrainConfig(**base))


def probe_host_sync(cp, dry: bool) -> dict:
    if _fake(cp):
        return {"ok": True, "skipped": "the stand-in runs kernels synchronously: nothing to measure"}
    t = _trainer("cuda", batch_size=64)
    for _ in range(3):                                  # compile every kernel first
        t.train_step()
    cp.cuda.get_current_stream().synchronize()
    spin = cp.RawKernel(r'''
extern "C" __global__ void tinygan_spin(long long cycles) {
    long long t0 = clock64();
    while (clock64() - t0 < cycles) { }
}''', "tinygan_spin")
    props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    khz = props.get("clockRate") or 1_500_000
    seconds = 1.5
    start, spun = cp.cuda.Event(), cp.cuda.Event()
    start.record()
    spin((1,), (1,), (np.int64(int(khz * 1e3 * seconds)),))
    spun.record()
    t0 = time.perf_counter()
    t.train_step()
    host_s = time.perf_counter() - t0
    spin_done = bool(spun.done)                          # CuPy: Event.done (cudaEventQuery)
    cp.cuda.get_current_stream().synchronize()
    total_s = time.perf_counter() - t0
    return {"ok": not spin_done, "train_step_host_s": round(host_s, 4), "spin_plus_step_s": round(total_s, 4),
            "spin_finished_before_train_step_returned": spin_done,
            "meaning": "ok: train_step queued its work and returned while the GPU was still busy"}


class _CopyCounter:
    """Counts host-to-device copies made through cupy.asarray / array / ascontiguousarray (patched)."""

    def __init__(self, cp):
        self.cp, self.saved, self.n, self.scalar, self.depth = cp, {}, 0, 0, 0

    def __enter__(self):
        for name in ("asarray", "array", "ascontiguousarray", "asanyarray"):
            fn = getattr(self.cp, name)
            self.saved[name] = fn

            def counted(a, *args, _fn=fn, **kwargs):
                if self.depth == 0 and not isinstance(a, self.cp.ndarray):   # outermost call only
                    self.n += 1
                    self.scalar += np.ndim(a) == 0
                self.depth += 1
                try:
                    return _fn(a, *args, **kwargs)
                finally:
                    self.depth -= 1
            setattr(self.cp, name, counted)
        return self

    def __exit__(self, *exc):
        for name, fn in self.saved.items():
            setattr(self.cp, name, fn)


def probe_h2d(cp, dry: bool) -> dict:
    out = {}
    for model in ("dcgan", "cgan"):
        t = _trainer("cuda", model=model, batch_size=16 if dry else 64, **({"ngf": 8, "ndf": 8} if dry else {}))
        t.train_step()
        steps = 3
        with _CopyCounter(cp) as c:
            for _ in range(steps):
                t.train_step()
        out[model] = {"per_step": c.n / steps, "of_which_0d_per_step": c.scalar / steps}
    # the budget: the real batch and z (+ labels for cgan) are the only copies a step needs
    out["ok"] = (out["dcgan"]["per_step"] - out["dcgan"]["of_which_0d_per_step"] <= 2
                 and out["cgan"]["per_step"] - out["cgan"]["of_which_0d_per_step"] <= 3)
    out["note"] = ("0-d copies are Python scalars made device arrays (autograd's _as_tensor); "
                   "tinygan.backend.scalar_constant caches them once _as_tensor uses it")
    return out


class _PeakTracker:
    """Peak bytes in use in CuPy's pool while enabled (an allocator wrapper; the stand-in's own counter)."""

    def __init__(self, cp):
        self.cp, self.peak = cp, 0
        if _fake(cp):
            self.pool = cp.get_default_memory_pool()
        else:
            self.pool = cp.cuda.MemoryPool()
            cp.cuda.set_allocator(self._malloc)

    def _malloc(self, size):
        mem = self.pool.malloc(size)
        self.peak = max(self.peak, self.pool.used_bytes())
        return mem

    def start(self):
        if _fake(self.cp):
            self.pool.reset_peak()
        self.peak = self.pool.used_bytes()

    def result(self) -> int:
        return int(self.pool.peak) if _fake(self.cp) else int(self.peak)


def probe_dcgan64(cp, dry: bool) -> dict:
    tracker = _PeakTracker(cp)                         # before the networks exist: every buffer goes through it
    kw = dict(batch_size=8, ngf=8, ndf=8, image_size=16) if dry else dict(batch_size=64, image_size=64)
    t = _trainer("cuda", **kw)
    for _ in range(2):
        t.train_step()
    cp.cuda.get_current_stream().synchronize()
    live = tracker.pool.used_bytes()
    tracker.start()
    if _fake(cp):
        cp.stats.reset()
    steps = 2 if dry else 20
    start, end = cp.cuda.Event(), cp.cuda.Event()
    start.record()
    for _ in range(steps):
        t.train_step()
    end.record()
    end.synchronize()
    sec = cp.cuda.get_elapsed_time(start, end) / 1e3 / steps
    out = {"config": kw, "live_bytes_between_steps": int(live), "peak_bytes_in_step": tracker.result(),
           "sec_per_step": round(sec, 5), "ok": True}
    if _fake(cp):
        out["launches_per_step_standin_estimate"] = cp.stats.launches / steps
        out["launches_per_step"] = "n/a on the stand-in (see the estimate)"
    else:
        out["launches_per_step"] = _nsys_launches(kw)
    return out


_NSYS_SCRIPT = r"""
import sys
sys.path.insert(0, {bench!r})
import gpu_check
import cupy
t = gpu_check._trainer("cuda", **{kw!r})
for _ in range(3):
    t.train_step()
cupy.cuda.get_current_stream().synchronize()
cupy.cuda.profiler.start()
for _ in range({steps}):
    t.train_step()
cupy.cuda.get_current_stream().synchronize()
cupy.cuda.profiler.stop()
"""


def _nsys_launches(kw: dict, steps: int = 5):
    """Kernel launches per step from Nsight Systems (``nsys``), or a string saying why not."""
    nsys = shutil.which("nsys")
    if nsys is None:
        return "n/a (nsys is not installed)"
    with tempfile.TemporaryDirectory() as d:
        script = Path(d) / "step.py"
        script.write_text(_NSYS_SCRIPT.format(bench=str(Path(__file__).parent), kw=kw, steps=steps))
        rep = Path(d) / "rep"
        try:
            subprocess.run([nsys, "profile", "--capture-range=cudaProfilerApi", "--trace=cuda", "-o", str(rep),
                            "--force-overwrite=true", sys.executable, str(script)], check=True,
                           capture_output=True, text=True, timeout=150)
            stats = subprocess.run([nsys, "stats", "--report", "cuda_gpu_kern_sum", "--format", "csv",
                                    "--force-export=true", str(rep) + ".nsys-rep"], check=True,
                                   capture_output=True, text=True, timeout=60).stdout
        except Exception as e:  # noqa: BLE001 - report, do not fail the whole check
            return f"n/a (nsys failed: {type(e).__name__}: {str(e)[:200]})"
    lines = [ln for ln in stats.splitlines() if ln.count(",") > 3]
    header = next((i for i, ln in enumerate(lines) if "Instances" in ln), None)
    if header is None:
        return "n/a (no kernel table in nsys stats)"
    col = lines[header].split(",").index("Instances")
    total = sum(int(float(ln.split(",")[col].strip('"'))) for ln in lines[header + 1:])
    return total / steps


PROBES = [("im2col_col2im_odd_strides", probe_odd_strides), ("index_limit", probe_index_limit),
          ("optim_non_contiguous", probe_optim_non_contiguous), ("host_sync", probe_host_sync),
          ("h2d_per_step", probe_h2d), ("dcgan64_step", probe_dcgan64)]


def run_probes(args) -> int:
    cp = _cp()
    results = {"stand_in": _fake(cp)}
    for name, fn in PROBES:
        t0 = time.perf_counter()
        try:
            r = fn(cp, args.dry)
        except Exception as e:  # noqa: BLE001 - one failing probe must not hide the others
            r = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        r["seconds"] = round(time.perf_counter() - t0, 2)
        results[name] = r
        extra = {k: v for k, v in r.items() if k not in ("ok", "seconds")}
        print(f"{name}: {'ok' if r['ok'] else 'FAILED'} ({r['seconds']} s) {json.dumps(extra, default=str)}",
              flush=True)
    Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    return 0 if all(r["ok"] for k, r in results.items() if isinstance(r, dict)) else 1


# ---------------------------------------------------------------------------
# compare a GPU run with a CPU run
# ---------------------------------------------------------------------------

def run_compare(args) -> int:
    d = Path(args.run_dir)
    rows = [json.loads(line) for line in (d / "gpu" / "metrics.jsonl").read_text().splitlines()]
    cpu = json.loads((d / "cpu" / "metrics.jsonl").read_text().splitlines()[0])
    rel = {k: abs(cpu[k] - rows[0][k]) / max(abs(cpu[k]), 1e-6) for k in LOSSES}
    print("first step, cpu:", {k: cpu[k] for k in LOSSES})
    print("first step, gpu:", {k: rows[0][k] for k in LOSSES})
    worst = max(rel.values())
    ok = worst <= args.tol
    print(f"first-step losses: max relative difference {worst:.2e} (tolerance {args.tol:g}): "
          f"{'ok' if ok else 'FAILED'}")
    s = sorted(r["sec_per_iter"] for r in rows[10:] if r.get("sec_per_iter") is not None)
    if s:
        print(f"sec_per_iter (CUDA events) median {s[len(s) // 2]:.5f} s over {len(s)} steps after 10 warm-up, "
              f"min {s[0]:.5f}, max {s[-1]:.5f}")
    print("last step:", {k: rows[-1][k] for k in LOSSES + ("step",)})
    return 0 if ok and all(math.isfinite(rows[-1][k]) for k in LOSSES) else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    pr = sub.add_parser("probes")
    pr.add_argument("--json", required=True)
    pr.add_argument("--dry", action="store_true", help="small shapes, for the CPU stand-in")
    pr.set_defaults(func=run_probes)
    co = sub.add_parser("compare")
    co.add_argument("run_dir")
    co.add_argument("--tol", type=float, default=1e-4)
    co.set_defaults(func=run_compare)
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
