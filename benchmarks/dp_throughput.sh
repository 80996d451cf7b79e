#!/usr/bin/env bash
# Usage: bash benchmarks/dp_throughput.sh   (needs the mpi extra; results: benchmarks/results/distributed-cpu-2core.md)
# 1 process vs 2 ranks, 3 rounds; prints the median sec_per_iter (steps 6-40) and wall per command
A="--steps 40 --no-progress --sample-every 1000 --checkpoint-every 1000"
med() { python - "$1" <<'PY'
import json, sys, statistics, glob
vals = []
for f in glob.glob(sys.argv[1] + "/metrics.jsonl"):
    rows = [json.loads(l) for l in open(f) if l.strip()]
    vals = [r["sec_per_iter"] for r in rows if r["step"] > 5]
print(f"{statistics.median(vals):.3f}")
PY
}
for round in 1 2 3; do
  rm -rf /tmp/tp; mkdir -p /tmp/tp
  for cfg in a b c d; do
    s=$(date +%s.%N)
    case $cfg in
      a) OMP_NUM_THREADS=2 tinygan train $A --out /tmp/tp/a >/dev/null 2>&1 ;;
      b) OMP_NUM_THREADS=1 tinygan train $A --out /tmp/tp/b >/dev/null 2>&1 ;;
      c) OMP_NUM_THREADS=1 mpiexec -n 2 tinygan train $A --distributed --out /tmp/tp/c >/dev/null 2>&1 ;;
      d) OMP_NUM_THREADS=1 mpiexec -n 2 tinygan train $A --distributed --sync-bn --out /tmp/tp/d >/dev/null 2>&1 ;;
    esac
    e=$(date +%s.%N)
    echo "round $round cfg $cfg s/step $(med /tmp/tp/$cfg) wall $(python -c "print(round($e-$s,1))") load $(cut -d' ' -f1 /proc/loadavg)"
  done
done
