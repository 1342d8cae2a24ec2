"""The training loop: the general :func:`train` and the course's :func:`model` over it.

Training runs where its data is. With CuPy arrays nothing crosses between host and device
per step: the epoch's cost is accumulated in a 0-d device array, recorded costs go into a
device array, and values are read only to print them (every ``print_every`` epochs), to
show progress, to save a checkpoint, and once at the end.
"""

from __future__ import annotations
import copy
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy

from .backend import get_xp, to_host, to_module
from .data import MiniBatcher, check_dataset
from .flat import FlatDict
from .network import (Workspace, backward_propagation, compute_cost, epoch_cost,
                      forward_propagation, host_initial_parameters)
from .optim import GD, Adam, Momentum, Optimizer, OptimizerState, RMSprop
from .run import (SEED_MAX, _Progress, check_seed, check_settings,  # noqa: F401 (re-exported)
                  describe_schedule)

__all__ = ["TrainResult", "make_optimizer", "model", "train", "OPTIMIZERS"]

OPTIMIZERS = ("gd", "momentum", "rmsprop", "adam")


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    parameters : FlatDict
        The trained parameters, on the data's device.
    costs : list of float
        ``cost_avg`` of every ``record_every``-th epoch (epoch 0, 100, ...), as the course.
    learning_rates : list of float
        The learning rate in force during each epoch run.
    wall_time : float
        Seconds spent in the loop, device work included (synchronised at the end).
    state : OptimizerState
        The optimizer's state (``t``, moments) after the last step.
    epochs : int
        The number of epochs completed (``num_epochs``, or fewer with ``stop_after``).
    record_epochs : list of int
        The epochs whose ``cost_avg`` is in ``costs``.
    learning_rate : float
        The learning rate after the last epoch (the schedule applied): the rate a continued
        run starts its next epoch with. The caller's optimizer is left as it was.
    """

    parameters: FlatDict
    costs: list
    learning_rates: list
    wall_time: float
    state: OptimizerState
    epochs: int
    record_epochs: list = field(default_factory=list)
    learning_rate: float | None = None


def make_optimizer(name: str, learning_rate: float = 0.0007, *, beta: float = 0.9, beta1: float = 0.9,
                   beta2: float = 0.999, epsilon: float = 1e-8, fused: bool = True) -> Optimizer:
    """The optimizer object for a course name: ``"gd"``, ``"momentum"``, ``"rmsprop"``, ``"adam"``."""
    if name == "gd":
        return GD(learning_rate, fused=fused)
    if name == "momentum":
        return Momentum(learning_rate, beta, fused=fused)
    if name == "rmsprop":
        return RMSprop(learning_rate, beta2, epsilon, fused=fused)
    if name == "adam":
        return Adam(learning_rate, beta1, beta2, epsilon, fused=fused)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")


def _epoch_buffers(params: FlatDict, m: int, mini_batch_size: int):
    """Everything one epoch writes into, allocated once: one gradient buffer, a workspace
    per mini-batch (views of two, one per batch width), and, with one output unit, the
    epoch's outputs (each batch's workspace writes its output layer straight there, and
    :func:`~xpopt.network.epoch_cost` reads them once per epoch).

    Returns
    -------
    grads : FlatDict
    batch_workspaces : list of Workspace
        One per mini-batch, in order.
    epoch_AL : ndarray of shape (1, m) or None
    """
    width = min(mini_batch_size, m)
    full = Workspace(params, width)
    by_width = {width: full}
    if m % width:
        by_width[m % width] = Workspace(params, m % width, grads=full.grads)
    starts = range(0, m, width)
    batch_workspaces = [by_width[min(width, m - lo)] for lo in starts]
    epoch_AL = None
    if full.A[-1].shape[0] == 1:
        epoch_AL = get_xp(params.flat).empty((1, m), dtype=params.flat.dtype)
        batch_workspaces = [ws.with_output(epoch_AL[:, lo:lo + ws.m])
                            for ws, lo in zip(batch_workspaces, starts)]
    return full.grads, batch_workspaces, epoch_AL


def train(X, Y, parameters: dict | Sequence[int], optimizer: Optimizer, *,
          mini_batch_size: int = 64, num_epochs: int = 5000, seed: int = 10,
          decay: Callable[[float, int, float], float] | None = None, decay_rate: float = 1,
          print_cost: bool = False, print_every: int = 1000, record_every: int = 100,
          progress: bool | None = False, progress_label: str = "",
          checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 1000,
          resume: bool = False, stop_after: int | None = None) -> TrainResult:
    """Train a network with mini-batches, as the course's loop does, on the data's device.

    Each epoch ``i`` (from 0) shuffles with seed ``seed + i + 1``, and for each mini-batch:
    forward, add the batch's summed cost, backward, update. Then ``cost_avg = total / m``;
    with ``decay``, ``learning_rate = decay(learning_rate0, i, decay_rate)``.

    Parameters
    ----------
    X : ndarray of shape (n_x, m)
    Y : ndarray of shape (1, m)
        NumPy or CuPy; training runs there.
    parameters : dict or sequence of int
        Initial parameters (updated in place when a packed FlatDict on the data's device), or
        layer sizes ``[n_x, ..., n_L]`` for :func:`~xpopt.initialize_parameters`.
    optimizer : Optimizer
        Its ``learning_rate`` is ``learning_rate0``; a schedule changes the rate of a copy
        between epochs: the caller's optimizer is left as it was (the final rate is
        ``TrainResult.learning_rate``).
    mini_batch_size : int
        ``m`` for batch gradient descent, 1 for stochastic.
    num_epochs : int
    seed : int
        The course's ``seed = 10``.
    decay : callable, optional
        ``decay(learning_rate0, epoch_num, decay_rate) -> learning_rate``, e.g.
        :func:`~xpopt.update_lr` or :func:`~xpopt.schedule_lr_decay`.
    decay_rate : float
    print_cost : bool
        Print ``Cost after epoch {i}: {cost:f}`` (and the learning rate when decaying)
        every ``print_every`` epochs.
    record_every : int
        Record ``cost_avg`` every this many epochs.
    progress : bool or None
        A progress bar on stderr; None: only when stderr is a terminal.
    checkpoint : path, optional
        Save a checkpoint there every ``checkpoint_every`` epochs and at the end (atomic).
    resume : bool
        Continue from ``checkpoint`` if that file exists (its parameters, state, epoch).
    stop_after : int, optional
        Stop after this many epochs of this call (an interruption, for tests and schedulers).

    Returns
    -------
    TrainResult

    Raises
    ------
    TypeError, ValueError
        Before any epoch, with nothing changed: bad data (:func:`~xpopt.data.check_dataset`:
        NaN or inf, labels outside {0, 1}, shapes, dtypes), a count that is not an integer
        (``numbers.Integral``, bools refused), a seed that leaves NumPy's range
        [0, 2**32 - 1] in some epoch, parameters of another dtype than X.
    CheckpointError
        Before any epoch, with nothing changed: a checkpoint path that is a directory or
        not writable; with ``resume``, a checkpoint that is corrupt or of another run
        (optimizer, hyperparameters, seed, mini-batch size, schedule, ``record_every``,
        data, dtype, layout) or whose counters do not add up.
    """
    from . import checkpoint as ckpt  # noqa: PLC0415

    # Everything is checked before any array is touched (issue 11): the counts, the seed,
    # the checkpoint path, the optimizer, the data (once per call), the parameters.
    settings = check_settings(num_epochs=num_epochs, mini_batch_size=mini_batch_size, seed=seed,
                              print_every=print_every, record_every=record_every,
                              checkpoint_every=checkpoint_every, stop_after=stop_after,
                              checkpoint=checkpoint)
    num_epochs, mini_batch_size, seed = (settings["num_epochs"], settings["mini_batch_size"],
                                         settings["seed"])
    print_every, record_every = settings["print_every"], settings["record_every"]
    checkpoint_every, stop_after = settings["checkpoint_every"], settings["stop_after"]
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be an xpopt Optimizer (GD, Momentum, RMSprop, Adam), "
                        f"got {type(optimizer).__name__}; make_optimizer('adam', ...) builds one")
    check_dataset(X, Y)
    xp = get_xp(X, Y)
    # The schedule changes the learning rate of a copy: the caller's optimizer stays as it is.
    optimizer = copy.copy(optimizer)
    if isinstance(parameters, dict):
        params = parameters
        if not (isinstance(params, FlatDict) and params.packed):
            params = FlatDict.pack(params)
        get_xp(X, params.flat)
    else:
        # born where the data is, whatever backend is configured
        params = to_module(host_initial_parameters(parameters, dtype=X.dtype), xp)
    if params.flat.dtype != X.dtype:
        raise TypeError(f"X is {X.dtype} but the parameters are {params.flat.dtype}")

    schedule = describe_schedule(decay, decay_rate)
    batcher = MiniBatcher(X, Y, mini_batch_size)
    m = batcher.m
    learning_rate0 = optimizer.learning_rate
    state = optimizer.init(params)
    start = 0
    n_records = math.ceil(num_epochs / record_every)
    history = xp.zeros(n_records, dtype=X.dtype)
    learning_rates: list[float] = []
    # Cheap next to training, once per call: refuses resuming on other data.
    fingerprint = ckpt.data_fingerprint(X, Y) if checkpoint is not None else None
    saved = None
    if resume and checkpoint is not None and os.path.exists(checkpoint):
        saved = ckpt.load(checkpoint)
        saved.check_matches(params, state, optimizer=optimizer, seed=seed,
                            mini_batch_size=mini_batch_size, schedule=schedule,
                            record_every=record_every, data=fingerprint)
        saved.check_progress(num_epochs=num_epochs, learning_rate0=learning_rate0,
                             batches_per_epoch=len(batcher), path=checkpoint)

    show = progress if progress is not None else sys.stderr.isatty()
    bar = _Progress(num_epochs, progress_label) if show else None
    grads, batch_workspaces, epoch_AL = _epoch_buffers(params, m, batcher.mini_batch_size)
    step = optimizer.bind(params, grads, state)
    if saved is not None:  # the last check, then the first write into the run's arrays
        saved.restore_into(params, state, optimizer=optimizer, seed=seed,
                           mini_batch_size=mini_batch_size, schedule=schedule,
                           record_every=record_every, data=fingerprint)
        start = saved.epoch
        learning_rates = list(saved.learning_rates)
        done = saved.costs[:n_records]
        history[: len(done)] = xp.asarray(done, dtype=X.dtype)
        if learning_rates:
            optimizer.learning_rate = saved.learning_rate
    total = xp.zeros((), dtype=X.dtype)
    end = num_epochs if stop_after is None else min(num_epochs, start + stop_after)
    t0 = time.perf_counter()
    with numpy.errstate(over="ignore"):  # exp(-z) = inf in the sigmoid gives 0, correctly
        for i in range(start, end):
            learning_rates.append(optimizer.learning_rate)
            if epoch_AL is None:
                total[...] = 0
            for ws, (batch_X, batch_Y) in zip(batch_workspaces, batcher.epoch(seed + i + 1)):
                AL, caches = forward_propagation(batch_X, params, ws)
                if epoch_AL is None:
                    total += compute_cost(AL, batch_Y)
                backward_propagation(batch_X, batch_Y, caches)  # into grads
                step()
            if epoch_AL is not None:
                total = epoch_cost(epoch_AL, batcher.shuffled_Y, batcher.mini_batch_size)
            cost_avg = total / m
            if decay is not None:
                optimizer.learning_rate = decay(learning_rate0, i, decay_rate)
            if i % record_every == 0:
                history[i // record_every] = cost_avg
            if print_cost and i % print_every == 0:
                if bar is not None:
                    bar.clear()
                print(f"Cost after epoch {i}: {float(cost_avg):f}")
                if decay is not None:
                    print(f"learning rate after epoch {i}: {optimizer.learning_rate:f}")
            if bar is not None and (i % record_every == 0 or i == end - 1):
                bar.show(i + 1, float(cost_avg))
            if checkpoint is not None and ((i + 1) % checkpoint_every == 0 or i == end - 1):
                ckpt.save(checkpoint, parameters=params, state=state, epoch=i + 1, seed=seed,
                          learning_rate=optimizer.learning_rate, learning_rates=learning_rates,
                          costs=to_host(history[: i // record_every + 1]).tolist(),
                          optimizer=optimizer, mini_batch_size=mini_batch_size,
                          schedule=schedule, record_every=record_every, data=fingerprint)
    costs = to_host(history[: (end - 1) // record_every + 1] if end > 0 else history[:0]).tolist()
    wall = time.perf_counter() - t0
    if bar is not None:
        bar.close()
    return TrainResult(params, costs, learning_rates, wall, state, end,
                       list(range(0, end, record_every)), optimizer.learning_rate)


def model(X, Y, layers_dims, optimizer, learning_rate=0.0007, mini_batch_size=64, beta=0.9,
          beta1=0.9, beta2=0.999, epsilon=1e-8, num_epochs=5000, print_cost=True, decay=None,
          decay_rate=1):
    """The course's ``model()``: train ``layers_dims`` on (X, Y) and return the parameters.

    ``optimizer`` is ``"gd"``, ``"momentum"``, ``"rmsprop"`` or ``"adam"``; the seeds, the
    Adam step counter and the printed lines are the course's (see :func:`train`).

    Returns
    -------
    parameters : FlatDict
        ``W1, b1, ...`` on the device of X.
    """
    opt = make_optimizer(optimizer, learning_rate, beta=beta, beta1=beta1, beta2=beta2,
                         epsilon=epsilon)
    result = train(X, Y, layers_dims, opt, mini_batch_size=mini_batch_size, num_epochs=num_epochs,
                   decay=decay, decay_rate=decay_rate, print_cost=print_cost)
    return result.parameters
