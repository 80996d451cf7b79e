"""Data-parallel training (tinygan/run/distributed.py, docs/distributed.md).

In-process: R ranks as threads taking turns (tests/distributed_steps.py's
ThreadComm), float64, against one process: the slices, the averaged
gradients, sync batch norm, the penalty's draws, and the GPU path's NCCL
communicator on a fake NCCL backend (NumPy arrays, and the CuPy stand-in's
device arrays, tests/fakecupy).  Across processes: ``mpiexec -n 2`` (the
``mpi`` extra, part of ``test``) with one BLAS thread per rank: float64 steps
over real MPI, the command line's 2 x 32 = 1 x 64 with ``--sync-bn``, a
bit-identical resume on 2 ranks, another world size refused, and a failure on
one rank ending every rank with its message.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import distributed_steps as ds
from tinygan.run import distributed
from tinygan.run.config import ConfigError, TrainConfig
from tinygan.run.distributed import NCCLCommunicator, RankError, RankSlice, agree, average_rows

ROOT = Path(__file__).resolve().parents[1]
# The mpich wheel puts mpiexec beside the interpreter, on PATH only in an activated environment.
MPIEXEC = shutil.which("mpiexec") or shutil.which("mpiexec", path=str(Path(sys.executable).parent))
needs_mpiexec = pytest.mark.skipif(MPIEXEC is None, reason="mpiexec is not installed (pip install -e '.[mpi]')")
TIGHT = 1e-10          # float64: the order of additions only


# ----------------------------------------------------------------------------- in process: ranks as threads

@pytest.mark.parametrize("loss", ["nonsaturating", "wgan-gp"])
def test_two_ranks_with_sync_bn_are_one_process_in_float64(loss):
    alone = ds.train(loss, 3)
    ranks = ds.run_ranks(2, lambda comm: ds.train(loss, 3, comm))
    assert ds.largest_difference(alone, ranks[0]) < TIGHT
    assert ds.largest_difference(ranks[0], ranks[1]) == 0.0          # every rank holds the same weights


def test_four_ranks_with_sync_bn_are_one_process_in_float64():
    alone = ds.train("nonsaturating", 2)
    ranks = ds.run_ranks(4, lambda comm: ds.train("nonsaturating", 2, comm))
    assert max(ds.largest_difference(alone, r) for r in ranks) < TIGHT


def test_without_sync_bn_each_rank_normalises_its_own_slice():
    alone = ds.train("nonsaturating", 2)
    ranks = ds.run_ranks(2, lambda comm: ds.train("nonsaturating", 2, comm, sync_bn=False))
    assert ds.largest_difference(alone, ranks[0]) > 1e-4              # another run: slice statistics
    # ... yet one run across the ranks: averaged gradients keep the weights equal (buffers are per rank)
    weights = {k: v for k, v in ranks[0].items() if "running" not in k and "num_batches" not in k}
    assert ds.largest_difference(weights, ranks[1]) == 0.0


def test_gpu_path_nccl_communicator_on_a_fake_backend():
    """The NCCL communicator's wiring: the same run, one all-reduce per network per step over a flat buffer."""
    alone = ds.train("nonsaturating", 2)
    backends = []

    def rank(comm):
        backend = ds.FakeNCCL(comm)
        backends.append(backend)
        return ds.train("nonsaturating", 2, NCCLCommunicator(comm, backend))

    ranks = ds.run_ranks(2, rank)
    assert ds.largest_difference(alone, ranks[0]) < TIGHT
    G, D = ds.build_gan("dcgan", image_shape=ds.SHAPE, nz=ds.NZ, ngf=8, ndf=8, num_classes=0)
    sizes = [size for op, size in backends[0].calls if op == "all_reduce"]
    for net in (G, D):
        assert sizes.count(net.num_parameters()) == 2                 # 2 steps: one flat all-reduce each
    assert ("broadcast", G.num_parameters() + sum(b.size for _, b in G.named_buffers()
                                                  if b.dtype.kind == "f")) in backends[0].calls


def test_gpu_path_on_the_cupy_stand_in():
    """Device arrays end to end (tests/fakecupy: NumPy posing as CuPy, which refuses host/device mixes):
    sync batch norm, the flat buffers and the NCCL communicator on 'cuda' tensors, against one CPU process."""
    code = ("import distributed_steps as ds\n"
            "from tinygan.run.distributed import NCCLCommunicator\n"
            "import cupy\n"
            "assert cupy.FAKE\n"
            "alone = ds.train('nonsaturating', 2)\n"
            "ranks = ds.run_ranks(2, lambda c: ds.train('nonsaturating', 2, NCCLCommunicator(c, ds.FakeNCCL(c)),"
            " device='cuda'))\n"
            "print(ds.largest_difference(alone, ranks[0]), ds.largest_difference(ranks[0], ranks[1]))\n")
    env = {**_env(), "TINYGAN_FAKE_CUPY": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "fakecupy"), str(ROOT), str(ROOT / "tests")])}
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    to_cpu, between_ranks = map(float, done.stdout.split())
    assert to_cpu < TIGHT and between_ranks == 0.0


def test_rank_slices_of_draws_are_the_global_draw():
    whole = np.random.default_rng(5)
    expect = [whole.random((8, 1, 1, 1)), whole.standard_normal((8, 3)), whole.integers(0, 10, 8),
              whole.uniform(-1, 1, (8, 2)), whole.normal(0, 2, (8,))]

    def draw(comm):
        r = RankSlice(np.random.default_rng(5), comm)
        return [r.random((2, 1, 1, 1)), r.standard_normal((2, 3)), r.integers(0, 10, 2), r.uniform(-1, 1, (2, 2)),
                r.normal(0, 2, (2,))]

    got = ds.run_ranks(4, draw)
    for i, e in enumerate(expect):
        np.testing.assert_array_equal(np.concatenate([g[i] for g in got]), e)


def test_log_rows_are_the_global_batch_means():
    def rank(comm):
        rows = [{"step": 1, "epoch": 0, "Loss_D": float(comm.rank), "sec_per_iter": 1.0 + comm.rank}]
        return average_rows(comm, rows, "generator x" if comm.rank == 1 else None)

    for rows, bad in ds.run_ranks(2, rank):
        assert rows == [{"step": 1, "epoch": 0, "Loss_D": 0.5, "sec_per_iter": 2.0}]
        assert bad == "generator x (rank 1)"


def test_agree_raises_the_first_failing_ranks_error_everywhere():
    def rank(comm):
        try:
            agree(comm, ValueError("no data here") if comm.rank >= 1 else None)
        except (ValueError, RankError) as e:
            return type(e).__name__, str(e), getattr(e, "all_ranks", False)
        return None

    got = ds.run_ranks(3, rank)
    assert got[0] == ("RankError", "rank 1 of 3: no data here", True)
    assert got[1] == ("ValueError", "no data here", True)
    assert got[2] == ("RankError", "rank 1 of 3: no data here", True)
    assert ds.run_ranks(2, lambda comm: agree(comm, None)) == [None, None]


def test_a_diverged_rank_stops_every_rank_at_the_same_flush():
    """A NaN weight on one rank (its own batch-norm buffers, say) stops every rank, each knowing which."""
    from tinygan.run.loop import NonFiniteError, _host_rows

    class Ranked:                                    # what _host_rows reads of a trainer
        def __init__(self, comm):
            self.comm = comm

        def nonfinite_state(self):
            return "discriminator main.3.running_var" if self.comm.rank == 1 else None

    def rank(comm):
        with pytest.raises(NonFiniteError) as caught:
            _host_rows([{"step": 7, "epoch": 0, "Loss_D": 1.0, "sec_per_iter": 0.1}], Ranked(comm), None)
        return str(caught.value), getattr(caught.value, "all_ranks", False)

    for message, all_ranks in ds.run_ranks(2, rank):
        assert message.startswith("step 7: the discriminator main.3.running_var (rank 1) holds NaN") and all_ranks


# ----------------------------------------------------------------------------- settings

def test_sync_bn_without_distributed_is_refused():
    with pytest.raises(ConfigError, match=r"^--sync-bn: needs --distributed"):
        TrainConfig(sync_bn=True).validate()


def test_distributed_outside_mpiexec_is_refused(monkeypatch):
    for v in distributed.LAUNCH_VARIABLES:
        monkeypatch.delenv(v, raising=False)
    with pytest.raises(ConfigError, match=r"^--distributed: this process was not started by an MPI launcher"):
        TrainConfig(distributed=True).validate()
    # a saved config read back (tinygan sample) needs no MPI
    assert TrainConfig.from_dict(TrainConfig(distributed=True).to_dict()).distributed


def test_distributed_without_mpi4py_is_refused(monkeypatch):
    real = distributed.importlib.util.find_spec
    monkeypatch.setattr(distributed.importlib.util, "find_spec", lambda name: None if name == "mpi4py" else real(name))
    with pytest.raises(ConfigError, match=r"^--distributed: mpi4py is not installed: pip install"):
        TrainConfig(distributed=True).validate()


@pytest.mark.parametrize("changes, flag", [({"loss": "ragan"}, "--loss ragan"), ({"mbstd": True}, "--mbstd"),
                                           ({"sync_bn": True, "r1": 1.0}, "--sync-bn and --r1")])
def test_batch_coupled_settings_are_refused(changes, flag):
    if any(k not in TrainConfig.__dataclass_fields__ for k in changes):
        pytest.skip(f"{changes} is not a setting in this tree")
    with pytest.raises(ConfigError, match="^" + flag):
        TrainConfig(distributed=True, **changes).validate(environment=False)


# ----------------------------------------------------------------------------- across processes: mpiexec

def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in distributed.LAUNCH_VARIABLES}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", TINYGAN_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]))
    return env


def _run(args, ranks: int | None, timeout: int = 180) -> subprocess.CompletedProcess:
    """``mpiexec -n ranks python ARGS`` (``ranks`` None: one plain process), killed after ``timeout`` s."""
    cmd = ([MPIEXEC, "-n", str(ranks)] if ranks else []) + [sys.executable] + args
    return subprocess.run(cmd, env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def _train(out, ranks, *extra) -> subprocess.CompletedProcess:
    args = ["-m", "tinygan", "train", "--image-size", "16", "--ngf", "8", "--ndf", "8", "--batch-size", "64",
            "--no-progress", "--out", str(out), *extra]
    return _run(args + (["--distributed"] if ranks and "--resume" not in extra else []), ranks)


def _arrays(path) -> dict:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _rows(out) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k != "sec_per_iter"}
            for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]


@needs_mpiexec
def test_mpi_two_ranks_are_one_process_in_float64():
    done = _run([str(ROOT / "tests" / "distributed_steps.py"), "nonsaturating", "3"], ranks=2)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["ranks"] == 2 and result["max_difference"] < TIGHT


@needs_mpiexec
def test_cli_two_ranks_of_32_with_sync_bn_are_one_process_of_64(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    assert _train(one, None, "--steps", "4", "--r1", "0").returncode == 0    # no R1 with --sync-bn either
    done = _train(two, 2, "--steps", "4", "--sync-bn")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("trained 4 steps") == 1                   # rank 0 speaks for the run
    # float32 weights: close.  Adam divides each gradient by its own running size, so a component that
    # is rounding noise (~0) can move a whole step either way: no weight may be further apart than the
    # 4 steps of lr 2e-4 (the DCGAN recipe) could take it, and all but 0.1% must agree to rounding.
    a, b = _arrays(one / "checkpoint.npz"), _arrays(two / "checkpoint.npz")
    for k in (k for k in a if a[k].dtype.kind == "f"):
        diff = np.abs(b[k].astype(np.float64) - a[k])
        assert diff.max() <= 2 * 4 * 2e-4, k
        assert np.mean(diff > 1e-5 + 1e-3 * np.abs(a[k])) < 1e-3, k
    for r1, r2 in zip(_rows(one), _rows(two), strict=True):
        for k in r1:
            assert r2[k] == pytest.approx(r1[k], rel=1e-4, abs=1e-6), (r1["step"], k)


@needs_mpiexec
def test_cli_two_rank_resume_is_bit_identical_and_another_world_size_is_refused(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert _train(straight, 2, "--steps", "4").returncode == 0
    assert _train(split, 2, "--steps", "2").returncode == 0
    done = _train(split, None, "--resume", "--steps", "4")                 # 1 process: refused
    assert done.returncode == 2 and done.stderr.count("error:") == 1, done.stderr
    assert "trained on 2 process(es) and this resume runs on 1" in done.stderr
    done = _run(["-m", "tinygan", "train", "--resume", "--distributed", "--out", str(split), "--steps", "4",
                 "--no-progress"], ranks=2)
    assert done.returncode == 0, done.stderr
    a, b = _arrays(straight / "checkpoint.npz"), _arrays(split / "checkpoint.npz")
    assert a.keys() == b.keys()
    for k in a:
        if k == "config.json":                                            # the same run in another folder
            assert {**json.loads(b[k].tobytes()), "out": ""} == {**json.loads(a[k].tobytes()), "out": ""}
        else:
            np.testing.assert_array_equal(b[k], a[k], err_msg=k)
    assert _rows(split) == _rows(straight)


@needs_mpiexec
def test_a_failure_on_one_rank_stops_every_rank_with_its_message(tmp_path):
    script = tmp_path / "fail_on_rank_1.py"
    script.write_text(
        "import sys\n"
        "from mpi4py import MPI\n"
        "from tinygan import cli\n"
        "from tinygan.run import trainer\n"
        "if MPI.COMM_WORLD.Get_rank() == 1:\n"
        "    step = trainer.Trainer._train_step\n"
        "    def broken(self):\n"
        "        if self.step == 2:\n"
        "            raise RuntimeError('the disk of rank 1 is on fire')\n"
        "        return step(self)\n"
        "    trainer.Trainer._train_step = broken\n"
        "sys.exit(cli.main(sys.argv[1:]))\n")
    done = _run([str(script), "train", "--distributed", "--image-size", "16", "--ngf", "8", "--ndf", "8",
                 "--steps", "50", "--no-progress", "--out", str(tmp_path / "run")], ranks=2, timeout=120)
    assert done.returncode != 0
    assert "tinygan train: error: the disk of rank 1 is on fire [rank 1 of 2; stopping every rank]" in done.stderr
    assert "Traceback" not in done.stderr


@needs_mpiexec
def test_cli_settings_errors_under_mpiexec_are_one_line_once(tmp_path):
    done = _train(tmp_path / "odd", 2, "--batch-size", "63", "--dry-run")
    assert done.returncode == 2
    assert done.stderr.strip() == ("tinygan train: error: --batch-size 63: --distributed splits every batch over "
                                   "the 2 processes; give a multiple of 2 (e.g. 62)")
    (tmp_path / "taken").mkdir()
    assert _train(tmp_path / "taken", None, "--dry-run").returncode == 0
    done = _train(tmp_path / "taken", 2, "--dry-run")                      # rank 0's folder check
    assert done.returncode == 2 and done.stderr.count("error:") == 1, done.stderr
    assert "--resume" in done.stderr and "Traceback" not in done.stderr
