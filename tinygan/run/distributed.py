"""Data-parallel training: R processes started by ``mpiexec``, each with its slice of every global batch.

``mpiexec -n R tinygan train --distributed ...`` runs R copies of the same run.
Each process (a *rank*, r = 0 .. R-1) draws the same global batch of N samples
(the real images, the noise, the penalty's random draws) and keeps rows
``[r N/R, (r+1) N/R)``; after each backward pass the gradients are averaged
with one all-reduce per network over a flat buffer::

    g  <-  1/R sum_r g_r          g_r: the gradient of the mean loss over rank r's slice

which is the gradient of the mean loss over the global batch, so a run on R
ranks is the run on one process up to rounding (with ``--sync-bn``, which
makes batch norm use the global batch's statistics: ``tinygan.functional.sync_batch_norm``;
without it each rank normalises its own slice, as PyTorch's DDP does).

The transport is never tinygan's own: host (NumPy) arrays and small Python
objects go through MPI (``mpi4py``); with ``--device cuda`` the arrays go
through NCCL (``cupyx.distributed.NCCLBackend``, its unique id exchanged over
MPI), one GPU per rank.  Both are a :class:`Communicator`: the trainer and the
loop only call its methods.  Rank 0 alone writes the run folder.

Failures: an error that every rank meets at the same point (a bad setting, a
diverged run) is agreed on through :func:`agree` and printed once by rank 0;
an error on one rank alone (anything inside a step) is printed with its rank
and ends every rank through ``MPI_Abort``, so nothing waits forever in a
collective.  See docs/distributed.md.
"""
from __future__ import annotations

import importlib.util
import os
from typing import Any

import numpy as np

from tinygan.autograd import Tensor
from tinygan.backend import get_array_module

__all__ = ["Communicator", "MPICommunicator", "NCCLCommunicator", "environment_problem", "launched_by_mpiexec",
           "world", "connect", "current", "agree", "RankError", "on_all_ranks", "AveragedOptimizer",
           "average_gradients", "RankSlice", "rank_rows", "broadcast_module_", "average_rows"]

# Variables that MPI launchers set in each process they start (MPICH/Intel MPI's Hydra, PMIx, Open MPI, MVAPICH).
LAUNCH_VARIABLES = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
RANK_VARIABLES = ("PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK")
INSTALL_HINT = "pip install 'tinygan[mpi]' (mpi4py and the mpich wheel), or mpi4py built against your cluster's MPI"


# ----------------------------------------------------------------------------- the environment

def launched_by_mpiexec() -> bool:
    """True when an MPI launcher (``mpiexec``, ``mpirun``, ``srun``) started this process."""
    return any(v in os.environ for v in LAUNCH_VARIABLES)


def launch_rank() -> int | None:
    """This process's rank as the launcher's environment says it (before MPI starts), or None."""
    for v in RANK_VARIABLES:
        if os.environ.get(v, "").isdigit():
            return int(os.environ[v])
    return None


def environment_problem() -> str | None:
    """Why ``--distributed`` cannot run in this process (one line), or None; starts MPI when it can."""
    if importlib.util.find_spec("mpi4py") is None:
        return f"mpi4py is not installed: {INSTALL_HINT}"
    if not launched_by_mpiexec():
        return ("this process was not started by an MPI launcher: run mpiexec -n 2 tinygan train --distributed "
                "... (docs/distributed.md)")
    try:
        from mpi4py import MPI   # noqa: F401, PLC0415  (MPI_Init happens here)
    except (ImportError, RuntimeError, OSError) as e:
        return f"mpi4py cannot load an MPI library ({e}): {INSTALL_HINT}"
    return None


# ----------------------------------------------------------------------------- communicators

class Communicator:
    """What data-parallel training needs from a transport.

    Array methods act in place on a contiguous array of this rank's device;
    object methods move small picklable values between the run's own
    processes (records, random states, optimizer state).
    """

    rank: int = 0
    size: int = 1

    def allreduce_sum_(self, a):
        """a <- sum over ranks of a (element-wise); returns a."""
        raise NotImplementedError

    def broadcast_(self, a, root: int = 0):
        """a <- rank ``root``'s a; returns a."""
        raise NotImplementedError

    def allgather(self, obj) -> list:
        """[obj of rank 0, obj of rank 1, ...] on every rank."""
        raise NotImplementedError

    def bcast(self, obj, root: int = 0):
        """Rank ``root``'s obj on every rank."""
        raise NotImplementedError

    def abort(self, code: int) -> None:
        """End every rank now (after printing what went wrong)."""
        raise NotImplementedError


class MPICommunicator(Communicator):
    """Host arrays through mpi4py's buffer interface (no copy); objects through mpi4py's pickled collectives."""

    def __init__(self, comm=None):
        from mpi4py import MPI   # noqa: PLC0415  (imported only by distributed runs)
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()

    def allreduce_sum_(self, a):
        self.comm.Allreduce(self.MPI.IN_PLACE, a, op=self.MPI.SUM)
        return a

    def broadcast_(self, a, root: int = 0):
        self.comm.Bcast(a, root=root)
        return a

    def allgather(self, obj) -> list:
        return self.comm.allgather(obj)

    def bcast(self, obj, root: int = 0):
        return self.comm.bcast(obj, root=root)

    def abort(self, code: int) -> None:
        self.comm.Abort(code)

    def local_rank(self) -> int:
        """This rank's index among the ranks of its host (which GPU it takes)."""
        node = self.comm.Split_type(self.MPI.COMM_TYPE_SHARED)
        try:
            return node.Get_rank()
        finally:
            node.Free()


class NCCLCommunicator(Communicator):
    """Device (CuPy) arrays through NCCL; objects (and NCCL's unique id, at the start) through ``host``'s MPI.

    ``backend`` is a ``cupyx.distributed.NCCLBackend`` (made here when None):
    ``all_reduce(in, out, "sum")`` and ``broadcast(a, root)`` on CuPy arrays,
    on the current stream, so they queue behind the step's kernels.
    """

    def __init__(self, host: Communicator, backend=None):
        self.host, self.rank, self.size = host, host.rank, host.size
        if backend is None:
            from cupyx.distributed import NCCLBackend   # noqa: PLC0415
            backend = NCCLBackend(self.size, self.rank, use_mpi=True)
        self.nccl = backend

    def allreduce_sum_(self, a):
        self.nccl.all_reduce(a, a, "sum")
        return a

    def broadcast_(self, a, root: int = 0):
        self.nccl.broadcast(a, root)
        return a

    def allgather(self, obj) -> list:
        return self.host.allgather(obj)

    def bcast(self, obj, root: int = 0):
        return self.host.bcast(obj, root)

    def abort(self, code: int) -> None:
        self.host.abort(code)


_STATE: dict[str, Communicator | None] = {"mpi": None, "active": None}    # this process's communicators


def world() -> MPICommunicator:
    """The MPI communicator of every rank of the run (starts MPI on the first call)."""
    if _STATE["mpi"] is None:
        _STATE["mpi"] = MPICommunicator()
    return _STATE["mpi"]


def current() -> Communicator | None:
    """The communicator of this process's distributed run once it has one, else None (one process)."""
    return _STATE["active"] or _STATE["mpi"]


def connect(device: str) -> Communicator:
    """The communicator for ``device``: MPI on the CPU; on a GPU, NCCL with GPU ``local rank`` selected.

    Choosing the GPU can fail on one rank (no CuPy, too few GPUs); that is
    agreed on over MPI before NCCL starts, so no rank is left waiting in it.
    """
    mpi = world()
    if device != "cuda":
        _STATE["active"] = mpi
    elif not isinstance(_STATE["active"], NCCLCommunicator):
        error = None
        try:
            _select_gpu(mpi.local_rank())
        except Exception as e:   # noqa: BLE001  (agreed on below, then raised on every rank)
            error = e
        agree(mpi, error)
        _STATE["active"] = NCCLCommunicator(mpi)
    return _STATE["active"]


def _select_gpu(local_rank: int) -> None:
    """Make GPU ``local_rank`` of this host the current device (tinygan's 'cuda' is the current one)."""
    from tinygan.backend import cupy_module   # noqa: PLC0415
    cp = cupy_module()                        # a clear error when CuPy or a GPU is missing
    count = cp.cuda.runtime.getDeviceCount()
    if local_rank >= count:
        raise RuntimeError(f"--device cuda --distributed: this host has {count} GPU(s) for at least "
                           f"{local_rank + 1} ranks; start at most {count} ranks per host")
    cp.cuda.Device(local_rank).use()


# ----------------------------------------------------------------------------- agreeing on errors

class RankError(RuntimeError):
    """Another rank's error, raised on every rank once all of them know it."""


def on_all_ranks(error: BaseException) -> BaseException:
    """Mark ``error`` as met by every rank at the same point: rank 0 alone prints it, nobody aborts."""
    error.all_ranks = True
    return error


def agree(comm: Communicator, error: BaseException | None) -> None:
    """Every rank says whether it failed; if any did, every rank raises the lowest failing rank's error.

    A collective (one allgather), so every rank must call it at the same
    point.  Used around what can fail on some ranks only (rank 0's folder and
    checkpoint, a GPU that cannot be selected) before any collective that
    would otherwise wait for the failed rank.
    """
    failures = comm.allgather(None if error is None else f"{type(error).__name__}: {error}")
    first = next((r for r, f in enumerate(failures) if f is not None), None)
    if first is None:
        return
    if first == comm.rank:
        raise on_all_ranks(error)
    raise on_all_ranks(RankError(f"rank {first} of {comm.size}: {failures[first].partition(': ')[2]}"))


# ----------------------------------------------------------------------------- a rank's share of the batch

def rank_rows(n_global: int, comm: Communicator) -> slice:
    """The rows of a global batch of ``n_global`` that this rank takes (validate() checks that R divides N)."""
    n = n_global // comm.size
    return slice(comm.rank * n, (comm.rank + 1) * n)


class RankSlice:
    """A NumPy Generator's draws for the global batch, cut to this rank's rows.

    ``random((n, 1, 1, 1))`` on rank r of R draws ``(n R, 1, 1, 1)`` from the
    shared generator and returns rows ``[r n, (r+1) n)``: every rank advances
    the generator alike and gets its share of the draws one process would make
    (the gradient penalty's interpolation weights).  The first axis of
    ``size`` must be the batch axis.
    """

    def __init__(self, rng: np.random.Generator, comm: Communicator):
        self.rng, self.rank, self.size = rng, comm.rank, comm.size

    @property
    def bit_generator(self):
        """The shared generator's state (saved in the checkpoint, the same on every rank)."""
        return self.rng.bit_generator

    def _cut(self, draw, size, *args, **kwargs):
        shape = (size,) if isinstance(size, (int, np.integer)) else tuple(size)
        full = draw(*args, size=(shape[0] * self.size,) + shape[1:], **kwargs)
        return full[self.rank * shape[0]:(self.rank + 1) * shape[0]]

    def random(self, size, dtype=np.float64):
        return self._cut(self.rng.random, size, dtype=dtype)

    def standard_normal(self, size, dtype=np.float64):
        return self._cut(self.rng.standard_normal, size, dtype=dtype)

    def normal(self, loc=0.0, scale=1.0, size=None):
        return self._cut(self.rng.normal, size, loc, scale)

    def uniform(self, low=0.0, high=1.0, size=None):
        return self._cut(self.rng.uniform, size, low, high)

    def integers(self, low, high=None, size=None):
        return self._cut(self.rng.integers, size, low, high)


# ----------------------------------------------------------------------------- parameters and gradients

def _flat_groups(arrays):
    """Indices of ``arrays`` grouped by dtype, in order: one flat buffer per group (usually one)."""
    groups: dict[Any, list[int]] = {}
    for i, a in enumerate(arrays):
        groups.setdefault(a.dtype, []).append(i)
    return list(groups.values())


def _all_reduce_flat(arrays, comm: Communicator, scale: float):
    """``scale * sum over ranks`` of each array, through one flat buffer per dtype; returns new arrays."""
    out = list(arrays)
    for idx in _flat_groups(arrays):
        xp = get_array_module(arrays[idx[0]])
        flat = xp.concatenate([arrays[i].ravel() for i in idx])       # (P,) P = sum of the sizes
        comm.allreduce_sum_(flat)
        if scale != 1:
            flat *= flat.dtype.type(scale)
        offset = 0
        for i in idx:
            n = arrays[i].size
            out[i] = flat[offset:offset + n].reshape(arrays[i].shape)
            offset += n
    return out


def average_gradients(params, comm: Communicator):
    """g_p <- 1/R sum_r g_p for every parameter with a gradient; returns sum_p ||g_p||^2 after (a device scalar).

    One all-reduce over a flat buffer of all the gradients (per dtype: one for
    a network).  A parameter without a gradient is left out: every rank runs
    the same graph, so the same ones are left out everywhere.
    """
    params = [p for p in params if p.grad is not None]
    if not params:
        return np.zeros((), dtype=np.float32)
    averaged = _all_reduce_flat([p.grad._data for p in params], comm, 1.0 / comm.size)
    total = None
    for p, g in zip(params, averaged):
        p.grad = Tensor(g)
        s = (g * g).sum()
        total = s if total is None else total + s
    return total


class AveragedOptimizer:
    """An optimizer whose ``step`` first averages the gradients over the ranks (:func:`average_gradients`).

    Everything else (``param_groups``, ``state``, ``zero_grad``,
    ``state_dict``, ``load_state_dict``) is the wrapped optimizer's.
    ``grad_sq`` is sum ||g||^2 of the last averaged gradient (the log's
    ``grad_sq_D`` / ``grad_sq_G``).
    """

    def __init__(self, opt, comm: Communicator):
        self.opt, self.comm, self.grad_sq = opt, comm, None

    def __getattr__(self, name):
        return getattr(self.opt, name)

    def step(self) -> None:
        params = [p for group in self.opt.param_groups for p in group["params"]]
        self.grad_sq = average_gradients(params, self.comm)
        self.opt.step()


def broadcast_module_(module, comm: Communicator, root: int = 0) -> None:
    """Every parameter and floating buffer of ``module`` <- rank ``root``'s, through one flat buffer per dtype."""
    arrays = [p._data for p in module.parameters()]
    arrays += [b for _, b in module.named_buffers() if b.dtype.kind == "f"]     # batch norm's running statistics
    for idx in _flat_groups(arrays):
        xp = get_array_module(arrays[idx[0]])
        flat = xp.concatenate([arrays[i].ravel() for i in idx])
        comm.broadcast_(flat, root)
        offset = 0
        for i in idx:
            n = arrays[i].size
            arrays[i][...] = flat[offset:offset + n].reshape(arrays[i].shape)     # in place: views stay valid
            offset += n


def average_rows(comm: Communicator, rows: list[dict], bad: str | None) -> tuple[list[dict], str | None]:
    """The log rows of the global batch, and the first rank's non-finite tensor (one allgather).

    Each rank's figures are means over its slice, and the slices have equal
    sizes, so the mean over ranks is the global batch's mean; ``step`` and
    ``epoch`` are the same everywhere, ``sec_per_iter`` is the slowest rank's.
    """
    gathered = comm.allgather((rows, bad))
    merged = []
    for i, row in enumerate(rows):
        out = {}
        for k, v in row.items():
            values = [g[0][i][k] for g in gathered]
            if k in ("step", "epoch"):
                out[k] = v
            elif k == "sec_per_iter":
                out[k] = max(values)
            else:
                out[k] = float(sum(values) / len(values))
        merged.append(out)
    bad_all = next((f"{b} (rank {r})" for r, (_, b) in enumerate(gathered) if b is not None), None)
    return merged, bad_all
