#!/usr/bin/env bash
# Mutation testing with mutmut 3 (pip install -e ".[dev]"), one group of modules at a time.
#
#   scripts/mutation.sh GROUP [--fresh] [--survivors] [--standin] [--only REGEX] [--jobs N]
#   scripts/mutation.sh list            # the groups, their modules and test files
#   scripts/mutation.sh score [GROUP]   # per-module scores of the last run(s)
#
# Each group mutates its modules and runs only its own fast, torch-free test files (mutmut
# further narrows that to the tests that reach the mutated function).  The run happens in
# build/mutation/GROUP/ (ignored by git): a copy of tinygan/, tests/ and pyproject.toml
# with a setup.cfg holding the group's [mutmut] section, so groups never share state and a
# later run only re-tests what changed.  --fresh starts the group over; --survivors
# re-tests only the mutants that survived (after adding tests); --only REGEX narrows --survivors
# and --standin to the mutant names matching an extended regex (one module of a long group,
# say: --only 'kernels\.layout').  --standin re-tests the
# survivors of the group's CPU run with the CuPy stand-in (TINYGAN_FAKE_CUPY=1: every `device`
# test also runs its "cuda" case, as tests/test_cuda_standin.py does in the default pytest), in
# build/mutation/GROUP+standin/; `score` counts a mutant killed when either run killed it.
# docs/testing.md has the scores and the list of equivalent mutants, which `score` leaves out
# of the denominator.
set -euo pipefail -f     # -f: the module globs below go to mutmut as written
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$ROOT/build/mutation"

# group | modules to mutate (globs, relative to the repository) | pytest arguments, ';'-separated
# (test files, and a -k or --deselect where a file holds slow tests of other layers, or PyTorch
# parity tests: a --deselect takes a node-id prefix and, unlike -k, touches only its file) | modules
# left alone (besides tinygan/kernels/reference.py, the tests' oracle; the kernels group leaves
# tinygan/kernels/cuda/ to the cuda group, which mutates its launchers' host side on the CuPy stand-in)
GROUPS_TABLE='
gan|tinygan/gan/losses.py tinygan/gan/penalties.py tinygan/gan/steps.py|tests/test_semantics_gan.py;tests/test_losses.py;tests/test_steps.py;-k;not trainer and not train_step and not command_line
optim|tinygan/optim.py tinygan/kernels/optim.py|tests/test_optim_semantics.py;tests/test_kernels_optim_semantics.py;tests/test_semantics.py;tests/test_kernels_fast.py;tests/test_nn_optim.py;tests/test_engine_contracts.py;tests/test_errors.py
nn|tinygan/nn/*|tests/test_nn_optim.py;tests/test_nn_init.py;tests/test_nn_semantics.py;tests/test_nn_module.py;tests/test_semantics.py;tests/test_errors.py;tests/test_engine_contracts.py;tests/test_spectral_norm_semantics.py;tests/test_spectral_norm.py;--deselect;tests/test_spectral_norm.py::test_matches_torch;--deselect;tests/test_spectral_norm.py::test_penalty_through_sigma_matches_torch;--deselect;tests/test_spectral_norm.py::test_sngan_without_loss;--deselect;tests/test_spectral_norm.py::test_cli_flag;--deselect;tests/test_spectral_norm.py::test_resume_is_bit_identical
kernels|tinygan/kernels/*|tests/test_kernels_conv.py;tests/test_kernels_conv_helpers.py;tests/test_kernels_fast.py;tests/test_semantics.py;tests/test_engine_contracts.py;tests/test_kernels_semantics.py;tests/test_kernels_layout.py;tests/test_kernels_activations.py;tests/test_kernels_batchnorm.py|tinygan/kernels/optim.py tinygan/kernels/__init__.py tinygan/kernels/cuda/*
functional|tinygan/functional.py|tests/test_functional_semantics.py;tests/test_nn_semantics.py;tests/test_semantics.py;tests/test_gradcheck.py;tests/test_errors.py
ops|tinygan/ops.py|tests/test_ops_semantics.py;tests/test_ops_inplace_semantics.py;tests/test_inplace.py;tests/test_autograd.py;tests/test_errors.py;tests/test_gradcheck.py
cuda|tinygan/kernels/cuda/launch.py|tests/test_cuda_standin.py;tests/test_cuda.py
'

field() {  # field GROUP N
    echo "$GROUPS_TABLE" | awk -F'|' -v g="$1" -v n="$2" '$1 == g { print $n }'
}

cmd="${1:-}"
case "$cmd" in
    ""|-h|--help)
        sed -n '2,15p' "$0"; exit 0 ;;
    list)
        echo "$GROUPS_TABLE" | awk -F'|' 'NF >= 3 { gsub(/;/, " ", $3); printf "%-10s mutates %s%s\n           runs    pytest %s\n", $1, $2, (NF > 3 ? " except " $4 : ""), $3 }'
        exit 0 ;;
    score)
        shift
        exec python "$ROOT/scripts/mutation_score.py" "$WORK" "$@" ;;
esac

group="$cmd"; shift
modules="$(field "$group" 2)"
tests="$(field "$group" 3)"
exclude="$(field "$group" 4) tinygan/kernels/reference.py"
# the launchers run only with CuPy: their group always runs on the stand-in (TINYGAN_FAKE_CUPY=1),
# where their host-side arithmetic feeds the host builds of the CUDA kernels and the NumPy twins
[ "$group" = cuda ] && export TINYGAN_FAKE_CUPY=1
if [ -z "$modules" ]; then
    echo "unknown group '$group'; run: scripts/mutation.sh list" >&2
    exit 2
fi
fresh=0; survivors=0; standin=0; only=""; jobs="${MUTMUT_JOBS:-2}"
while [ $# -gt 0 ]; do
    case "$1" in
        --fresh) fresh=1 ;;
        --survivors) survivors=1 ;;
        --standin) standin=1 ;;
        --jobs) jobs="$2"; shift ;;
        --only) only="$2"; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
command -v mutmut >/dev/null || { echo 'mutmut is not installed: pip install -e ".[dev]"' >&2; exit 2; }

dir="$WORK/$group"
if [ "$standin" = 1 ]; then
    [ -d "$dir/mutants" ] || { echo "run scripts/mutation.sh $group first (the stand-in pass re-tests its survivors)" >&2; exit 2; }
    mapfile -t names < <(cd "$dir" && mutmut results 2>/dev/null | awk -F': ' '/: (survived|no tests)$/ { gsub(/^ +/, "", $1); print $1 }' | grep -E -- "${only:-.}")
    dir="$WORK/$group+standin"
    rm -rf "$dir"
    export TINYGAN_FAKE_CUPY=1
fi
[ "$fresh" = 1 ] && rm -rf "$dir"
mkdir -p "$dir"
# the sources and tests as they are now (mutmut copies them again into $dir/mutants)
# The sources are copied once per fresh run (a later run re-tests against the mutants made from
# them; after changing the library, use --fresh); the tests are refreshed every time.
if [ ! -d "$dir/tinygan" ]; then
    cp -a "$ROOT/tinygan" "$dir/"
    find "$dir/tinygan" -name __pycache__ -prune -exec rm -rf {} +
fi
rm -rf "$dir/tests"
cp -a "$ROOT/tests" "$dir/"
find "$dir/tests" -name __pycache__ -prune -exec rm -rf {} +
cp "$ROOT/pyproject.toml" "$dir/pyproject.toml"
{
    echo "[mutmut]"
    echo "source_paths = tinygan"
    echo "only_mutate ="
    for m in $modules; do echo "    $m"; done
    echo "do_not_mutate ="
    for m in $exclude; do echo "    $m"; done
    echo "pytest_add_cli_args_test_selection ="
    echo "$tests" | tr ';' '\n' | sed 's/^/    /'
    echo "pytest_add_cli_args ="
    echo "    -p"
    echo "    no:cacheprovider"
} > "$dir/setup.cfg"

cd "$dir"
# always collect the test <-> function map afresh: mutmut's incremental update can lose
# associations after the tests change, and then reports "no tests" for mutants that have some
rm -f mutants/mutmut-stats.json
# one BLAS thread per worker; the ci hypothesis profile (derandomized: the same examples each run)
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HYPOTHESIS_PROFILE=ci
start=$(date +%s)
if [ "$standin" = 1 ]; then
    if [ "${#names[@]}" = 0 ]; then echo "no survivors to re-test"; else mutmut run --max-children "$jobs" "${names[@]}"; fi
elif [ "$survivors" = 1 ] && [ -d mutants ]; then
    mapfile -t names < <(mutmut results 2>/dev/null | awk -F': ' '/: (survived|no tests)$/ { gsub(/^ +/, "", $1); print $1 }' | grep -E -- "${only:-.}")
    if [ "${#names[@]}" = 0 ]; then echo "no survivors to re-test"; else mutmut run --max-children "$jobs" "${names[@]}"; fi
else
    mutmut run --max-children "$jobs"
fi
echo "wall time: $(( $(date +%s) - start )) s"
python "$ROOT/scripts/mutation_score.py" "$WORK" "${group%+standin}"
