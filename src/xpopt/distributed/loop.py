"""Data-parallel :func:`train`: the course's loop with each global mini-batch split over ranks.

Every rank holds the whole data set and a replica of the parameters. Each epoch every rank
draws the SAME permutation (``seed + i + 1``, as :func:`xpopt.train`), cuts the same global
mini-batches, and computes only its contiguous shard of each (:mod:`.shards`). Per step:

1. forward over the shard, backward with ``dz_L = (a_L - Y) / B`` (``B`` the GLOBAL batch
   width, :mod:`.gradient`): the rank's part of the batch's mean gradient, in the flat
   gradient buffer;
2. ONE all-reduce of that buffer (:mod:`.engine`): every rank has the batch's gradient;
3. every rank applies the same fused update (the optimizer's bound step), so the replicas
   stay identical; :mod:`.replicas` verifies it every ``check_every`` epochs.

The epoch's cost is summed over ranks only in the epochs where it is recorded, printed or
last. Rank 0 alone prints, shows progress and writes checkpoints; a checkpoint holds what
:func:`xpopt.train` saves, so a run resumes with the same or another number of ranks (or in
a single process with :func:`xpopt.train`).
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy

from .. import checkpoint as ckpt
from ..backend import get_xp, to_host
from ..network import (
    Workspace,
    compute_cost,
    epoch_cost,
    forward_propagation,
)
from ..optim import Optimizer
from ..settings import _Progress
from ..train import TrainResult, check_settings, describe_schedule
from ..train import prepare as prepare_training
from .engine import Engine, choose_engine
from .gradient import shard_backward
from .replicas import check_replicas, checksum
from .shards import ShardPlan

__all__ = ["ALL_RANKS", "DistributedResult", "train"]

# The attribute set (True) on an exception that every rank raises alike, so that a launcher
# can end each rank cleanly instead of aborting the job (see xpopt.distributed.cli).
ALL_RANKS = "all_ranks"


@dataclass
class DistributedResult(TrainResult):
    """What :func:`train` returns on every rank: :class:`xpopt.TrainResult` and how it ran.

    Attributes
    ----------
    rank, size : int
        This rank and the number of ranks.
    engine : str
        ``"mpi"`` or ``"nccl"``.
    steps : int
        Steps (global mini-batches) taken by this call.
    allreduce_seconds : float
        Host wall time this rank spent in the per-step all-reduce (on MPI: the collective
        itself, waiting for the slowest rank included; on NCCL: only the launch).
    """

    rank: int = 0
    size: int = 1
    engine: str = ""
    steps: int = 0
    allreduce_seconds: float = 0.0


_AGREED_ERRORS = {
    "TypeError": TypeError,
    "ValueError": ValueError,
    "CheckpointError": ckpt.CheckpointError,
}


def _together(engine: Engine, fn: Callable[[], object], *, only_root: bool = False):
    """Run ``fn`` (on every rank, or on rank 0 only) and raise the same error on EVERY rank
    when it fails on any: a refusal before training must not leave ranks waiting for a
    collective that will never come."""
    result, failure = None, None
    if engine.rank == 0 or not only_root:
        try:
            result = fn()
        except tuple(_AGREED_ERRORS.values()) as exc:
            failure = exc
    report = None if failure is None else (type(failure).__name__, str(failure))
    reports = engine.allgather(report)
    for rank, item in enumerate(reports):
        if item is not None:
            if failure is None:
                kind, message = item
                failure = _AGREED_ERRORS[kind](f"(rank {rank}) {message}")
            setattr(failure, ALL_RANKS, True)  # raised alike on every rank: none left waiting
            raise failure
    return result


def _agree(engine: Engine, run: dict) -> None:
    """Every rank must train the same run: ValueError on every rank naming what differs."""
    everyone = engine.allgather(run)
    differ = sorted({k for other in everyone for k in run if other.get(k) != everyone[0].get(k)})
    if differ:
        ranks = [r for r, other in enumerate(everyone) if other != everyone[0]]
        exc = ValueError(
            f"the ranks were given different runs: {', '.join(differ)} differ "
            f"between rank 0 and ranks {ranks} (same data, parameters and "
            f"arguments on every rank)"
        )
        setattr(exc, ALL_RANKS, True)
        raise exc


def _broadcast_checkpoint(
    engine: Engine,
    path,
    params,
    state,
    *,
    optimizer,
    seed,
    mini_batch_size,
    schedule,
    record_every,
    fingerprint,
    num_epochs,
    learning_rate0,
    batches,
) -> ckpt.Checkpoint | None:
    """Rank 0 reads and checks the checkpoint; every rank gets it (metadata pickled, arrays
    through the buffer interface). A refusal is raised on every rank."""

    def load():
        if not os.path.exists(path):
            return None
        saved = ckpt.load(path)
        saved.check_matches(
            params,
            state,
            optimizer=optimizer,
            seed=seed,
            mini_batch_size=mini_batch_size,
            schedule=schedule,
            record_every=record_every,
            data=fingerprint,
        )
        saved.check_progress(
            num_epochs=num_epochs,
            learning_rate0=learning_rate0,
            batches_per_epoch=batches,
            path=path,
        )
        return saved

    saved = _together(engine, load, only_root=True)
    if engine.size == 1:
        return saved
    header = None
    if saved is not None:
        shapes = {
            "parameters": saved.parameters.shape,
            **{k: v.shape for k, v in saved.slots.items()},
        }
        header = (saved.meta, shapes, saved.parameters.dtype.str)
    header = engine.bcast(header)
    if header is None:
        return None
    meta, shapes, dtype = header
    arrays = (
        {"parameters": saved.parameters, **saved.slots}
        if engine.rank == 0
        else {k: numpy.empty(s, dtype=numpy.dtype(dtype)) for k, s in shapes.items()}
    )
    for name in sorted(arrays):
        engine.bcast_array(arrays[name])
    return ckpt.Checkpoint(meta, arrays.pop("parameters"), arrays)


def train(
    X,
    Y,
    parameters: dict | Sequence[int],
    optimizer: Optimizer,
    *,
    mini_batch_size: int = 64,
    num_epochs: int = 5000,
    seed: int = 10,
    decay: Callable[[float, int, float], float] | None = None,
    decay_rate: float = 1,
    print_cost: bool = False,
    print_every: int = 1000,
    record_every: int = 100,
    progress: bool | None = False,
    progress_label: str = "",
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 1000,
    resume: bool = False,
    stop_after: int | None = None,
    engine: Engine | None = None,
    check_every: int | None = 100,
) -> DistributedResult:
    """:func:`xpopt.train`, data-parallel over the ranks of an MPI job (call it on every rank).

    The arguments and their meaning are :func:`xpopt.train`'s: the course's mini-batches
    (``mini_batch_size`` is the GLOBAL batch, split over the ranks), seeds, printed lines,
    recorded costs and checkpoints. At one rank the result is bit for bit
    :func:`xpopt.train`'s; at more, the same to rounding (the all-reduce and the matrix
    products add the examples' contributions in another order).

    Parameters
    ----------
    X : ndarray of shape (n_x, m)
    Y : ndarray of shape (1, m)
        The whole data set, the same on every rank, NumPy or CuPy (then on this rank's GPU:
        see :func:`~xpopt.distributed.engine.use_local_device`).
    parameters : dict or sequence of int
        Initial parameters (the same on every rank) or layer sizes ``[n_x, ..., 1]``.
    optimizer : Optimizer
    engine : Engine, optional
        How ranks talk; by default :func:`~xpopt.distributed.engine.choose_engine` over
        ``MPI.COMM_WORLD`` (MPI for NumPy data, NCCL for CuPy data).
    check_every : int or None
        Compare the replicas' checksums every this many epochs and after the last one;
        None: only after the last one.
    mini_batch_size, num_epochs, seed, decay, decay_rate, print_cost, print_every,
    record_every, progress, progress_label, checkpoint, checkpoint_every, resume, stop_after
        As in :func:`xpopt.train`; printing, progress and checkpoints happen on rank 0 only
        (the checkpoint path is rank 0's).

    Returns
    -------
    DistributedResult
        On every rank (the parameters are the same on all).

    Raises
    ------
    TypeError, ValueError, CheckpointError
        Before any epoch, on EVERY rank: what :func:`xpopt.train` refuses, and ranks given
        different data, parameters or arguments.
    ReplicaDivergenceError
        On every rank, when the replicas' checksums differ.
    """
    xp = get_xp(X, Y)
    engine = choose_engine(xp) if engine is None else engine
    rank, size = engine.rank, engine.size
    settings = _together(
        engine,
        lambda: check_settings(
            num_epochs=num_epochs,
            mini_batch_size=mini_batch_size,
            seed=seed,
            print_every=print_every,
            record_every=record_every,
            checkpoint_every=checkpoint_every,
            stop_after=stop_after,
        ),
    )
    if checkpoint is not None:
        _together(engine, lambda: ckpt.check_writable(checkpoint), only_root=True)
    num_epochs, mini_batch_size, seed = (
        settings["num_epochs"],
        settings["mini_batch_size"],
        settings["seed"],
    )
    print_every, record_every = settings["print_every"], settings["record_every"]
    checkpoint_every, stop_after = settings["checkpoint_every"], settings["stop_after"]
    if check_every is not None and (
        isinstance(check_every, bool) or not isinstance(check_every, int) or check_every < 1
    ):
        exc = ValueError(f"check_every must be None or an integer >= 1, got {check_every!r}")
        setattr(exc, ALL_RANKS, True)  # the same argument on every rank: the same refusal
        raise exc

    def prepare():
        prepared = prepare_training(X, Y, parameters, optimizer)  # what xpopt.train checks
        if tuple(prepared[0].layout[-1][1]) != (1, 1):
            raise ValueError(
                "the output layer must have one unit (binary labels, Y of shape (1, m))"
            )
        return prepared

    params, optimizer = _together(engine, prepare)  # the parameters packed, a copy of optimizer
    schedule = describe_schedule(decay, decay_rate)
    m = X.shape[1]
    fingerprint = ckpt.data_fingerprint(X, Y)  # once per call; also compared across ranks
    _agree(
        engine,
        {
            "data": fingerprint,
            "layout": params.layout,
            "dtype": str(X.dtype),
            "parameters": checksum(params.flat),
            "optimizer": repr(optimizer),
            "seed": seed,
            "mini_batch_size": mini_batch_size,
            "num_epochs": num_epochs,
            "stop_after": stop_after,
            "record_every": record_every,
            "schedule": schedule,
            "checkpoint_every": checkpoint_every,
            "check_every": check_every,
            "resume": bool(resume),
            "engine": engine.name,
        },
    )

    plan = ShardPlan.build(m, mini_batch_size, size, rank)
    learning_rate0 = optimizer.learning_rate
    state = optimizer.init(params)
    n_records = math.ceil(num_epochs / record_every)
    history = xp.zeros(n_records, dtype=X.dtype)
    learning_rates: list[float] = []
    saved = None
    if resume and checkpoint is not None:
        saved = _broadcast_checkpoint(
            engine,
            checkpoint,
            params,
            state,
            optimizer=optimizer,
            seed=seed,
            mini_batch_size=mini_batch_size,
            schedule=schedule,
            record_every=record_every,
            fingerprint=fingerprint,
            num_epochs=num_epochs,
            learning_rate0=learning_rate0,
            batches=len(plan.widths),
        )

    # This rank's epoch, gathered once per epoch: its shards of every batch, end to end.
    m_local = plan.m_local
    sx = xp.empty((X.shape[0], m_local), dtype=X.dtype)
    sy = xp.empty((Y.shape[0], m_local), dtype=Y.dtype)
    local_AL = xp.empty((1, m_local), dtype=X.dtype)
    grads = params.zeros_like(prefix="d")
    by_width: dict[int, Workspace] = {}
    workspaces: list[Workspace | None] = []
    for lo, hi in plan.shards:
        if hi == lo:
            workspaces.append(None)
            continue
        if hi - lo not in by_width:
            by_width[hi - lo] = Workspace(params, hi - lo, grads=grads)
        workspaces.append(by_width[hi - lo].with_output(local_AL[:, lo:hi]))
    batches = list(zip(plan.shards, plan.widths, workspaces, strict=True))
    cost_buffer = xp.zeros(1, dtype=X.dtype)
    step = optimizer.bind(params, grads, state)
    start = 0
    if saved is not None:
        saved.restore_into(
            params,
            state,
            optimizer=optimizer,
            seed=seed,
            mini_batch_size=mini_batch_size,
            schedule=schedule,
            record_every=record_every,
            data=fingerprint,
        )
        start = saved.epoch
        learning_rates = list(saved.learning_rates)
        done = saved.costs[:n_records]
        history[: len(done)] = xp.asarray(done, dtype=X.dtype)
        if learning_rates:
            optimizer.learning_rate = saved.learning_rate

    show = rank == 0 and (progress if progress is not None else sys.stderr.isatty())
    bar = _Progress(num_epochs, progress_label) if show else None
    rng = numpy.random.RandomState()
    positions = None if size == 1 else plan.positions
    gradient_flat = grads.flat
    allreduce = engine.allreduce
    clock = time.perf_counter
    reduce_time, steps = 0.0, 0
    end = num_epochs if stop_after is None else min(num_epochs, start + stop_after)
    t0 = clock()
    with numpy.errstate(over="ignore"):  # exp(-z) = inf in the sigmoid gives 0, correctly
        for i in range(start, end):
            learning_rates.append(optimizer.learning_rate)
            rng.seed(seed + i + 1)  # the course's shuffle, the same on every rank
            order = rng.permutation(m)
            mine = order if positions is None else order[positions]
            if xp is numpy:
                numpy.take(X, mine, axis=1, out=sx, mode="clip")
                numpy.take(Y, mine, axis=1, out=sy, mode="clip")
            else:
                mine = xp.asarray(mine)  # one host-to-device copy of indices per epoch
                xp.take(X, mine, axis=1, out=sx)
                xp.take(Y, mine, axis=1, out=sy)
            for (lo, hi), width, ws in batches:
                if ws is None:  # an empty shard (a batch narrower than the job)
                    gradient_flat.fill(0)
                else:
                    _, caches = forward_propagation(sx[:, lo:hi], params, ws)
                    shard_backward(sy[:, lo:hi], caches, width)
                r0 = clock()
                allreduce(gradient_flat)
                reduce_time += clock() - r0
                step()
            steps += len(batches)
            last = i == end - 1
            cost_avg: Any = None
            if i % record_every == 0 or (print_cost and i % print_every == 0) or last:
                if size == 1:
                    total = epoch_cost(local_AL, sy, mini_batch_size)  # xpopt.train's sum
                else:
                    cost_buffer[...] = compute_cost(local_AL, sy)
                    allreduce(cost_buffer)
                    total = cost_buffer[0]
                cost_avg = total / m
            if decay is not None:
                optimizer.learning_rate = decay(learning_rate0, i, decay_rate)
            if i % record_every == 0:
                history[i // record_every] = cost_avg
            if rank == 0:
                if print_cost and i % print_every == 0:
                    if bar is not None:
                        bar.clear()
                    print(f"Cost after epoch {i}: {float(cost_avg):f}")
                    if decay is not None:
                        print(f"learning rate after epoch {i}: {optimizer.learning_rate:f}")
                if bar is not None and (i % record_every == 0 or last):
                    bar.show(i + 1, float(cost_avg))
                if checkpoint is not None and ((i + 1) % checkpoint_every == 0 or last):
                    ckpt.save(
                        checkpoint,
                        parameters=params,
                        state=state,
                        epoch=i + 1,
                        seed=seed,
                        learning_rate=optimizer.learning_rate,
                        learning_rates=learning_rates,
                        costs=to_host(history[: i // record_every + 1]).tolist(),
                        optimizer=optimizer,
                        mini_batch_size=mini_batch_size,
                        schedule=schedule,
                        record_every=record_every,
                        data=fingerprint,
                    )
            if (check_every is not None and (i + 1) % check_every == 0) or last:
                check_replicas(engine, i + 1, params, state)
    costs = to_host(history[: (end - 1) // record_every + 1] if end > 0 else history[:0]).tolist()
    wall = clock() - t0
    if bar is not None:
        bar.close()
    return DistributedResult(
        params,
        costs,
        learning_rates,
        wall,
        state,
        end,
        list(range(0, end, record_every)),
        optimizer.learning_rate,
        rank=rank,
        size=size,
        engine=engine.name,
        steps=steps,
        allreduce_seconds=reduce_time,
    )
