"""A sweep split over the ranks of an MPI job: no communication per step.

``mpiexec -n N python -m mpi4py -m xpopt sweep ...`` gives every rank the same grid
(:func:`xpopt.sweep.check_sweep`, on each rank alike); rank ``r`` trains the models
``r, r + N, r + 2N, ...`` of the grid order (:func:`xpopt.sweep.train_models`, stacked as a
plain sweep stacks them: every model stays bit for bit :func:`xpopt.train`'s, whatever it is
stacked with), and the ranks talk only twice: before training, to agree on a checkpoint, and
after, when rank 0 gathers every model's parameters, costs, final cost and accuracy (small
host data, pickled by mpi4py's ``gather``) into one :class:`~xpopt.sweep_result.SweepResult`
in grid order. At one rank this is the plain sweep.

With a checkpoint, each rank keeps its own file: ``run.npz`` becomes ``run.rank0-of-2.npz``
and so on (a resume needs the same number of ranks: another split is another sweep, and the
checkpoint's description of its models refuses it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy

from ..backend import get_xp, to_host, to_module
from ..checkpoint import CheckpointError
from ..flat import FlatDict
from ..network import parameter_layout
from ..sweep import SweepPlan, _check_data, check_sweep, result_of, train_models
from ..sweep_result import SweepResult
from .engine import world

__all__ = ["job_world", "rank_checkpoint", "split_sweep", "sweep"]

# Set by the launchers for every rank: MPICH's and Intel MPI's Hydra, Slurm's PMI, Open MPI.
_LAUNCHER_SIZES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE")


def job_world():
    """``MPI.COMM_WORLD`` when this process is one rank of a job of several (started by
    ``mpiexec``/``srun``, or through ``python -m mpi4py``), else None. MPI is initialised
    only then: a plain run never imports ``mpi4py.MPI``."""
    sizes = [os.environ.get(name, "") for name in _LAUNCHER_SIZES]
    launched = "mpi4py.run" in sys.modules or any(v.isdigit() and int(v) > 1 for v in sizes)
    if not launched:
        return None
    comm = world()
    return comm if comm.Get_size() > 1 else None


def rank_checkpoint(path, rank: int, size: int) -> Path | None:
    """Rank ``rank``'s own checkpoint file for the job's ``path`` (``path`` itself at one rank)."""
    if path is None:
        return None
    path = Path(os.fspath(path))
    if size == 1:
        return path
    return path.with_name(f"{path.stem}.rank{rank}-of-{size}{path.suffix}")


def _agree_on_checkpoint(comm, X, Y, plan, indices, path, resume: bool) -> None:
    """Every rank checks its checkpoint (writable; with ``resume``, of this sweep) before any
    training; a refusal on one rank is raised on every rank (none is left in the gather)."""
    from ..sweep_checkpoint import SweepCheckpoint  # noqa: PLC0415

    problem = None
    if path is not None:
        try:
            store = SweepCheckpoint(
                path, X, Y, plan, indices, plan.blocks(indices, get_xp(X) is numpy)
            )
            if resume:
                store.load()
        except CheckpointError as exc:
            problem = str(exc)
    problems = comm.allgather(problem)
    for rank, found in enumerate(problems):
        if found is not None:
            raise CheckpointError(found if rank == comm.Get_rank() else f"(rank {rank}) {found}")


def split_sweep(
    X,
    Y,
    plan: SweepPlan,
    comm=None,
    *,
    progress: bool | None = False,
    checkpoint=None,
    checkpoint_every: int = 1000,
    resume: bool = False,
) -> SweepResult | None:
    """Train ``plan``'s models split over the ranks of ``comm`` (``MPI.COMM_WORLD`` by
    default); call it on every rank. Returns the whole :class:`SweepResult` on rank 0 and
    None on the others.

    Parameters
    ----------
    X, Y
        The same data on every rank (NumPy, or CuPy on the rank's GPU).
    plan : SweepPlan
        From :func:`xpopt.sweep.check_sweep` with the same arguments on every rank.
    progress, checkpoint, checkpoint_every, resume
        As :func:`xpopt.sweep`; ``checkpoint`` names the job's file, see
        :func:`rank_checkpoint`.

    Raises
    ------
    CheckpointError
        On every rank, before training, when any rank's checkpoint cannot be used.
    """
    comm = world() if comm is None else comm
    rank, size = comm.Get_rank(), comm.Get_size()
    _check_data(X, Y, plan)
    indices = list(range(rank, len(plan.models), size))
    path = rank_checkpoint(checkpoint, rank, size)
    _agree_on_checkpoint(comm, X, Y, plan, indices, path, resume)
    parameters, costs, seconds = train_models(
        X,
        Y,
        plan,
        indices,
        progress=progress,
        checkpoint=path,
        checkpoint_every=checkpoint_every,
        resume=resume,
    )
    mine = result_of(X, Y, plan, indices, parameters, costs, seconds)
    sent = (
        indices,
        [numpy.array(to_host(p.flat)) for p in mine.parameters],
        mine.costs,
        mine.final_cost,
        mine.accuracy,
        seconds,
    )
    everyone = comm.gather(sent, root=0)
    if rank != 0:
        return None
    K = len(plan.models)
    layout = parameter_layout(plan.dims)
    xp = get_xp(X)
    parameters, costs, finals, accuracies = [None] * K, [None] * K, [None] * K, [None] * K
    for ks, flats, cs, fs, accs, _ in everyone:
        for j, k in enumerate(ks):
            parameters[k] = to_module(FlatDict(flats[j], layout), xp)
            costs[k], finals[k], accuracies[k] = cs[j], fs[j], accs[j]
    settings = [{name: s[name] for name in plan.axes} for s in plan.models]
    return SweepResult(
        axes=plan.axes,
        settings=settings,
        parameters=parameters,
        costs=costs,
        final_cost=finals,
        accuracy=accuracies,
        record_every=plan.record_every,
        seconds=max(item[-1] for item in everyone),
    )


def sweep(
    X,
    Y,
    layer_dims,
    optimizer="adam",
    *,
    comm=None,
    progress: bool | None = False,
    checkpoint=None,
    checkpoint_every: int = 1000,
    resume: bool = False,
    shuffle: str = "own",
    record_every: int = 100,
    block_size: int | None = 128,
    **axes,
) -> SweepResult | None:
    """:func:`xpopt.sweep` split over the ranks of an MPI job (call it on every rank): the
    result on rank 0, None on the others. The arguments are :func:`xpopt.sweep`'s."""
    plan = check_sweep(
        layer_dims,
        optimizer,
        shuffle=shuffle,
        record_every=record_every,
        block_size=block_size,
        **axes,
    )
    return split_sweep(
        X,
        Y,
        plan,
        comm,
        progress=progress,
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
        resume=resume,
    )
