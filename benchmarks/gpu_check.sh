#!/usr/bin/env bash
# One command that checks tinygan's CuPy path on a real GPU and keeps every result.
#
#   benchmarks/gpu_check.sh [--dry] [RESULTS_DIR]    (default: $OUT, else benchmarks/results/gpu-run/)
#
# Under 8 minutes in all (each stage has its own time limit, shrunk to fit what is left, so one
# hang cannot eat the others). At most 8 files, written into RESULTS_DIR, summary.txt last:
#   versions.txt  device, driver, CUDA, CuPy, NumPy, PyTorch, Python, TF32 on/off
#   tests.log     the gpu-marked tests of the whole suite, then the CUDA compile tests (nvcc/NVRTC)
#   checks.log    the probes (benchmarks/gpu_check.py: im2col/col2im at odd strides and past the
#                 32-bit index limit, Adam/RMSprop on non-contiguous parameters, a host-sync probe
#                 inside train_step, host-to-device copies per step, peak memory / seconds / kernel
#                 launches of a DCGAN-64 step); the default job on the GPU (a few hundred steps,
#                 seconds per step from CUDA events), its first-step losses against a CPU run of the
#                 same seed, tinygan eval of the result (GPU_CHECK_EVAL=0 skips it); tinygan bench's progress
#   probes.json   every probe's numbers
#   bench.md/.json  tinygan bench --device cuda --only step, TF32 off and on
#   summary.txt   rc and seconds per stage, then every verdict (written last)
#
# --dry (or GPU_CHECK_DRY=1): the same stages on the CPU stand-in for CuPy (tests/fakecupy) with
# tiny shapes and a subset of the tests, no bench: checks this script in CI
# (tests/test_cuda_standin.py), not a GPU.
# Uses $PYTHON (default python3) from the repository root; nothing is installed.
set -uo pipefail
cd "$(dirname "$0")/.."
dry=${GPU_CHECK_DRY:-0}
if [ "${1:-}" = "--dry" ]; then dry=1; shift; fi
out=${1:-${OUT:-benchmarks/results/gpu-run}}
mkdir -p "$out"
out=$(cd "$out" && pwd)
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
budget=${GPU_CHECK_BUDGET:-470}          # seconds for all stages (the whole command stays under 8 min)
t_start=$(date +%s)
if [ "$dry" = 1 ]; then
    export PYTHONPATH=$PWD/tests/fakecupy:$PYTHONPATH TINYGAN_FAKE_CUPY=1
    steps=${GPU_CHECK_STEPS:-3}
    train_args=(--batch-size 16 --ngf 8 --ndf 8 --sample-every 1000)
    eval_args=(--n 64)
else
    steps=${GPU_CHECK_STEPS:-300}
    train_args=()
    eval_args=(--n 2500)
fi
summary=$out/summary.txt
stages=$(mktemp)
: > "$out/tests.log"
: > "$out/checks.log"
rm -f "$summary"

stage() {   # stage NAME LOG SECONDS COMMAND...: run COMMAND under a limit, output appended to LOG
    local name=$1 log=$2 limit=$3 start rc left
    shift 3
    left=$(( budget - ($(date +%s) - t_start) ))
    [ "$limit" -gt "$left" ] && limit=$left
    if [ "$limit" -lt 5 ]; then
        echo "$name: skipped (the $budget s budget is spent)" | tee -a "$stages"
        return
    fi
    echo "=== $name ($(date -u +%H:%M:%S), limit $limit s): $*" >> "$out/$log"
    start=$(date +%s)
    timeout --kill-after=10 "$limit" "$@" >> "$out/$log" 2>&1
    rc=$?
    echo "$name: rc=$rc, $(( $(date +%s) - start )) s$([ $rc = 124 ] && echo " (timed out after $limit s)")" \
        | tee -a "$stages"
}

# --- versions -----------------------------------------------------------------------------
{
    date -u
    echo "mode: $([ "$dry" = 1 ] && echo 'DRY RUN on the CPU stand-in for CuPy (tests/fakecupy): no GPU was used' || echo 'GPU')"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,compute_cap --format=csv 2>&1 | head -3
    command -v nvcc >/dev/null && nvcc --version 2>&1 | tail -1
    "$py" - <<'EOF'
import os, platform, sys
import numpy
print("python", sys.version.split()[0], platform.machine())
print("numpy", numpy.__version__)
try:
    import cupy
    fake = " (stand-in)" if getattr(cupy, "FAKE", False) else ""
    print(f"cupy {cupy.__version__}{fake}, CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}, "
          f"driver {cupy.cuda.runtime.driverGetVersion()}")
    props = cupy.cuda.runtime.getDeviceProperties(0)
    print("device", props["name"].decode(), f"sm_{props['major']}{props['minor']}",
          f"{props['totalGlobalMem'] / 2**30:.0f} GiB")
    try:
        from cupy._core import _routines_linalg as linalg
        tf32 = linalg.get_compute_type(numpy.dtype(numpy.float32)) == linalg.COMPUTE_TYPE_TF32
        print("TF32 for float32 matmuls:", "on" if tf32 else "off", f"(CUPY_TF32={os.environ.get('CUPY_TF32', 'unset')})")
    except Exception as e:
        print("TF32: unknown:", e, f"(CUPY_TF32={os.environ.get('CUPY_TF32', 'unset')})")
except Exception as e:
    print("cupy: unavailable:", e)
try:
    import torch
    print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(),
          "available", torch.cuda.is_available())
except Exception as e:
    print("torch: unavailable:", e)
import tinygan
print("tinygan.gpu_available()", tinygan.gpu_available())
reason = tinygan.backend.gpu_unavailable_reason()
if reason:
    print("  because:", reason)
EOF
} > "$out/versions.txt" 2>&1
cat "$out/versions.txt"

# --- tests ------------------------------------------------------------------------------------
pytest=("$py" -m pytest -q -p no:cacheprovider -o addopts= -rfE --tb=short)
if [ "$dry" = 1 ]; then
    stage tests tests.log 60 "${pytest[@]}" -m "gpu and not slow" tests/test_cuda.py
    stage compile-tests tests.log 60 "${pytest[@]}" tests/test_cuda_compile.py -k "registry or render"
else
    stage tests tests.log 140 "${pytest[@]}" -m "gpu and not slow" --durations=10 tests/
    stage compile-tests tests.log 45 "${pytest[@]}" -rs tests/test_cuda_compile.py
fi

# --- probes -----------------------------------------------------------------------------------
stage probes checks.log 90 "$py" benchmarks/gpu_check.py probes --json "$out/probes.json" \
    $([ "$dry" = 1 ] && echo --dry)

# --- the default job on the GPU, against the CPU, and its evaluation ---------------------------
run_dir=$(mktemp -d)
tol=1e-4
[ "${CUPY_TF32:-0}" != 0 ] && tol=2e-2
stage train checks.log 80 bash -c "
    set -e
    $py -m tinygan train --device cuda --steps $steps --out $run_dir/gpu --no-progress ${train_args[*]:-}
    $py -m tinygan train --device cpu --steps 1 --out $run_dir/cpu --no-progress --checkpoint-every 1000 \
        --sample-every 1000 ${train_args[*]:-}
    $py benchmarks/gpu_check.py compare $run_dir --tol $tol
"
if [ "${GPU_CHECK_EVAL:-1}" = 0 ]; then      # (the dry-run test skips it when the digit classifier is not cached)
    echo "eval: skipped (GPU_CHECK_EVAL=0)" | tee -a "$stages"
else                                         # the digit classifier: cached in $TINYGAN_CACHE or ~/.cache/tinygan
    stage eval checks.log 60 "$py" -m tinygan eval --checkpoint "$run_dir/gpu/checkpoint.npz" --device cuda \
        --json "$run_dir/eval.json" "${eval_args[@]}"
fi

# --- data-parallel training: NCCL through cupyx.distributed, one GPU per rank (docs/distributed.md) ---
# Two ranks when the machine has two GPUs, else one (NCCL refuses two ranks on one GPU): the same run as
# one process, with --sync-bn; the weights' largest difference after 10 steps goes to checks.log.
if [ "$dry" = 1 ] || ! command -v mpiexec >/dev/null; then
    echo "distributed: skipped ($([ "$dry" = 1 ] && echo 'a dry run' || echo 'no mpiexec: pip install -e .[mpi]'))" \
        | tee -a "$stages"
else
    ranks=$(( $(nvidia-smi -L 2>/dev/null | wc -l) >= 2 ? 2 : 1 ))
    dist_args=(--device cuda --steps 10 --batch-size 64 --no-progress --sample-every 1000)
    stage distributed checks.log 60 bash -c "
        set -e
        $py -m tinygan train ${dist_args[*]} --out $run_dir/one
        OMP_NUM_THREADS=1 mpiexec -n $ranks $py -m tinygan train ${dist_args[*]} --distributed --sync-bn \
            --out $run_dir/ranks
        $py - $run_dir/one/checkpoint.npz $run_dir/ranks/checkpoint.npz $ranks <<'PY'
import sys
import numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
worst = max(float(np.abs(a[k] - b[k]).max()) for k in a.files if a[k].dtype.kind == 'f')
print(f'distributed: {sys.argv[3]} rank(s) with NCCL vs one process, 10 steps: max |weight difference| {worst:.3g}')
PY
    "
fi

# --- tinygan bench, TF32 off and on -----------------------------------------------------------
if [ "$dry" = 1 ]; then
    echo "bench: skipped in a dry run (PyTorch has no GPU here)" | tee -a "$stages"
else
    stage bench checks.log 90 "$py" -m tinygan bench --device cuda --tf32 --only step --sizes 64 28 \
        --batch 64 --reps 20 --parity-iters 3 --f64-iters 1 --json "$out/bench.json" --markdown "$out/bench.md"
fi

# --- summary (last) ---------------------------------------------------------------------------
{
    echo "gpu_check $([ "$dry" = 1 ] && echo '(DRY RUN on the CPU stand-in: no GPU used)') $(date -u), $(( $(date +%s) - t_start )) s"
    grep -E "^(device|cupy|TF32)" "$out/versions.txt"
    echo "--- stages"
    cat "$stages"
    echo "--- tests"
    grep -E "^[0-9]+ (passed|failed)|^(FAILED|ERROR) |passed|failed" "$out/tests.log" | grep -v "^===" | tail -8
    echo "--- probes, training, eval"
    grep -E "^(im2col_col2im_odd_strides|index_limit|optim_non_contiguous|host_sync|h2d_per_step|dcgan64_step|distributed): |^first-step|^sec_per_iter|^last step|Frechet|FID|error|Error" \
        "$out/checks.log" | grep -vE "^(warning|note):" | cut -c1-400
} > "$summary"
rm -f "$stages"
echo "--- summary ($summary)"
cat "$summary"
