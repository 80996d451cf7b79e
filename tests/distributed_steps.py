"""Data-parallel GAN steps in float64: R ranks x N/R samples against one process x N samples.

``train(loss, steps, comm)`` runs the two halves of a training iteration
(``tinygan.gan.steps.d_step`` / ``g_step``) on a small float64 DCGAN, with the
pieces the trainer uses on several ranks: this rank's rows of the global batch,
the penalty's draws cut by :class:`RankSlice`, gradients averaged by
:class:`AveragedOptimizer`, batch norm over the global batch in
``sync_batch_norm``; ``comm=None`` is the one-process run.

Two communicators drive it:

* :class:`ThreadComm`: R ranks as R threads of one process (``run_ranks``),
  for the in-process tests, and wrapped in an NCCL communicator whose
  ``backend`` is :class:`FakeNCCL` (NumPy arrays), to run the GPU path's
  wiring without a GPU;
* MPI: ``mpiexec -n 2 python tests/distributed_steps.py LOSS`` trains on each
  rank with the real MPI communicator; rank 0 also trains the one-process run
  and prints the largest difference as JSON (tests/test_distributed.py).
"""
from __future__ import annotations

import contextlib
import json
import sys
import threading

import numpy as np

from tinygan import autograd
from tinygan import functional as F
from tinygan import optim
from tinygan import random as _random
from tinygan.autograd import Tensor
from tinygan.backend import to_device
from tinygan.gan.losses import get_loss
from tinygan.gan.models import build_gan
from tinygan.gan.recipes import recipe_for
from tinygan.gan.steps import d_step, g_step
from tinygan.run.distributed import (AveragedOptimizer, Communicator, RankSlice, broadcast_module_,
                                     rank_rows)

N, NZ, SHAPE = 64, 8, (1, 16, 16)


class ThreadComm(Communicator):
    """Rank ``rank`` of ``size`` threads that take turns, like coroutines: one runs at a time.

    A rank runs until its next collective, leaves its value there and hands
    the turn to the next rank; when the turn comes back every rank has left
    its value for that collective (all ranks make the same collectives), and
    values add in rank order.  Taking turns keeps the engine's process-wide
    state (the grad mode, which backward switches off while it runs) each
    rank's own: it is saved at each hand-over and restored after.
    """

    def __init__(self, rank: int, shared: dict):
        self.rank, self.size, self.shared, self.round = rank, shared["size"], shared, 0

    def wait_turn(self) -> None:
        cond = self.shared["cond"]
        with cond:
            if not cond.wait_for(lambda: self.shared["turn"] == self.rank or self.shared["failed"], timeout=60):
                raise TimeoutError(f"rank {self.rank}: no turn within 60 s")
            if self.shared["failed"]:
                raise RuntimeError("another rank failed")

    def pass_turn(self) -> None:
        with self.shared["cond"]:
            self.shared["turn"] = (self.rank + 1) % self.size
            self.shared["cond"].notify_all()

    def _exchange(self, value):
        values = self.shared["values"].setdefault(self.round, [None] * self.size)
        values[self.rank] = value
        self.round += 1
        grad_mode = autograd._grad_enabled
        self.pass_turn()
        self.wait_turn()
        autograd._grad_enabled = grad_mode
        return list(values)

    def allreduce_sum_(self, a):
        values = self._exchange(a.copy())
        total = values[0].copy()
        for v in values[1:]:
            total += v
        a[...] = total
        return a

    def broadcast_(self, a, root: int = 0):
        a[...] = self._exchange(a.copy())[root]
        return a

    def allgather(self, obj) -> list:
        return self._exchange(obj)

    def bcast(self, obj, root: int = 0):
        return self._exchange(obj)[root]

    def abort(self, code: int) -> None:
        raise SystemExit(code)


class FakeNCCL:
    """``cupyx.distributed.NCCLBackend``'s two calls, on NumPy arrays, through a :class:`ThreadComm`."""

    def __init__(self, comm: ThreadComm):
        self.comm, self.calls = comm, []

    def all_reduce(self, in_array, out_array, op="sum"):
        assert op == "sum" and in_array is out_array, (op, "in place")
        self.calls.append(("all_reduce", in_array.size))
        self.comm.allreduce_sum_(out_array)

    def broadcast(self, in_out_array, root=0):
        self.calls.append(("broadcast", in_out_array.size))
        self.comm.broadcast_(in_out_array, root)


def run_ranks(size: int, fn):
    """[fn(ThreadComm(r)) for r in range(size)], the ranks as threads taking turns; re-raises a rank's error."""
    shared = {"size": size, "values": {}, "turn": 0, "failed": False, "cond": threading.Condition()}
    results, errors = [None] * size, []

    def rank(r):
        comm = ThreadComm(r, shared)
        try:
            comm.wait_turn()
            results[r] = fn(comm)
        except BaseException as e:   # noqa: BLE001
            errors.append(e)
            with shared["cond"]:
                shared["failed"] = True
        comm.pass_turn()

    threads = [threading.Thread(target=rank, args=(r,)) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def train(loss: str, steps: int, comm: Communicator | None = None, sync_bn: bool = True,
          device: str = "cpu") -> dict:
    """Weights and buffers of G and D (host float64 arrays) after ``steps`` iterations (see the module docstring)."""
    _random.manual_seed(0)
    G, D = build_gan("dcgan", image_shape=SHAPE, nz=NZ, ngf=8, ndf=8, num_classes=0, loss=loss)
    G.double().to(device)
    D.double().to(device)
    opt_g, opt_d = (optim.Adam(net.parameters(), lr=1e-3, betas=(0.5, 0.999)) for net in (G, D))
    draws = np.random.default_rng(1)                   # z and the penalty's eps, as the trainer's generator
    data = np.random.default_rng(2)                    # the global batch of "images"
    rows = slice(0, N)
    if comm is not None:
        opt_g, opt_d = AveragedOptimizer(opt_g, comm), AveragedOptimizer(opt_d, comm)
        draws, rows = RankSlice(draws, comm), rank_rows(N, comm)
        broadcast_module_(G, comm)
        broadcast_module_(D, comm)
    objective, gp_weight = get_loss(loss), recipe_for(loss).gp_weight
    for _ in range(steps):
        real = Tensor(to_device(data.uniform(-1, 1, (N,) + SHAPE)[rows], device))   # (n, 1, 16, 16), n = N / R
        with F.sync_batch_norm(comm.allreduce_sum_) if comm is not None and sync_bn else contextlib.nullcontext():
            z = Tensor(to_device(draws.standard_normal((real.shape[0], NZ)), device))   # (n, NZ): rank's rows
            fake = G(z)
            d_step(D, opt_d, objective, real, fake, gp_weight=gp_weight, rng=draws)
            g_step(D, opt_g, objective, fake)
    state = {f"G/{k}": np.asarray(v, dtype=np.float64) for k, v in G.state_dict().items()}
    state.update({f"D/{k}": np.asarray(v, dtype=np.float64) for k, v in D.state_dict().items()})
    return state


def largest_difference(a: dict, b: dict) -> float:
    """max over entries of max |a - b| / max(1, max |a|)."""
    return max(float(np.abs(a[k] - b[k]).max() / max(1.0, np.abs(a[k]).max())) for k in a)


if __name__ == "__main__":   # mpiexec -n R python tests/distributed_steps.py LOSS STEPS
    from tinygan.run.distributed import MPICommunicator
    loss, steps = sys.argv[1], int(sys.argv[2])
    comm = MPICommunicator()
    mine = train(loss, steps, comm)
    if comm.rank == 0:
        alone = train(loss, steps)
        print(json.dumps({"ranks": comm.size, "loss": loss, "max_difference": largest_difference(alone, mine)}))
