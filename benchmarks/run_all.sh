#!/usr/bin/env bash
# Every benchmark, into benchmarks/results/: the CPU always, the GPU when CuPy sees one.
#   benchmarks/run_all.sh            (extra arguments go to every `tinygan bench` call, e.g. --threads 2)
set -euo pipefail
cd "$(dirname "$0")/.."
out=benchmarks/results
mkdir -p "$out"
stamp=$(date +%Y%m%d-%H%M%S)
tinygan bench --device cpu --json "$out/cpu-$stamp.json" --markdown "$out/cpu-$stamp.md" "$@"
if python -c "import sys, tinygan; sys.exit(0 if tinygan.gpu_available() else 1)"; then
    tinygan bench --device cuda --tf32 --json "$out/gpu-$stamp.json" --markdown "$out/gpu-$stamp.md" "$@"
fi
echo "results in $out/*-$stamp.{json,md}"
