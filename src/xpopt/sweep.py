"""Sweeps: a whole grid of models trained at once, stacked in one set of buffers.

``xpopt.sweep(X, Y, [2, 5, 2, 1], "adam", learning_rate=[1e-4, 3e-4, 1e-3], seed=range(8))``
trains the 24 models of the grid together (:mod:`xpopt.stacked`): every argument given as a
list, tuple or range is an axis, the grid is the cartesian product of the axes, and model
``k`` ends bit for bit where :func:`xpopt.train` would end it alone (float64 on the CPU)::

    train(X, Y, initialize_parameters(layer_dims, seed=init_seed_k),
          make_optimizer(optimizer_k, learning_rate_k, beta=beta_k, beta1=beta1_k,
                         beta2=beta2_k, epsilon=epsilon_k),
          seed=seed_k, mini_batch_size=mini_batch_size_k, num_epochs=num_epochs_k,
          decay=decay_k, decay_rate=decay_rate_k, record_every=record_every)

Models that share an optimizer, a batch size and a number of epochs train as one group, in
blocks of at most ``block_size`` models (a block's working set stays in the CPU's cache).
A block of one model is trained by ``train`` itself: a sweep of one costs what ``train`` does.

Exactness. On NumPy every model is bit for bit ``train``'s (float64 and float32; the tests
hold float32 to a tolerance only because float32 library routines could differ by an ulp on
other machines): ``matmul`` on a stack calls the same BLAS routine with the same arguments
per model as ``dot`` does, elementwise operations round each element alone, row sums and
the epoch's cost reduce each model's row as ``train`` reduces its one row, and the update
is the rule's twin with each model's scalars. On CuPy the update kernel has the rule's
text and scalars, but cuBLAS's batched products and CuPy's reductions over stacks may
order their sums otherwise than the per-model calls of ``train``: close, not proven equal.
"""

from __future__ import annotations

import itertools
import math
import numbers
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy

from .backend import get_xp, synchronize, to_module
from .data import _check_batch_inputs
from .experiment import final_cost as _final_cost
from .experiment import resolve_decay
from .network import accuracy as _accuracy
from .network import host_initial_parameters, parameter_layout
from .settings import _Progress, check_seed
from .stacked import StackedTrainer
from .sweep_kernels import stacked_update
from .sweep_result import SweepResult
from .train import OPTIMIZERS, make_optimizer, train

__all__ = ["AXES", "SweepPlan", "SweepResult", "check_sweep", "grid", "sweep", "train_models"]

# The grid's axes in product order (the last varies fastest) and their defaults: the course's.
AXES = {
    "optimizer": "adam",
    "learning_rate": 0.0007,
    "beta": 0.9,
    "beta1": 0.9,
    "beta2": 0.999,
    "epsilon": 1e-8,
    "seed": 10,
    "init_seed": 3,
    "num_epochs": 5000,
    "mini_batch_size": 64,
    "decay": None,
    "decay_rate": 1,
}
SHUFFLES = ("own", "shared")


def _is_axis(value) -> bool:
    return isinstance(value, (list, tuple, range)) or (
        isinstance(value, numpy.ndarray) and value.ndim == 1
    )


def grid(**values) -> tuple[dict[str, list], list[dict[str, Any]]]:
    """The axes (name -> list of values) and every model's full settings, in product order.

    Parameters
    ----------
    **values
        One value, or a list, tuple, range or 1-D NumPy array of values (an axis), per name
        of :data:`AXES`; defaults for the names not given.

    Returns
    -------
    axes : dict of str to list
        The names given as lists, in :data:`AXES` order.
    models : list of dict
        Every combination, the last axis varying fastest.
    """
    unknown = sorted(set(values) - set(AXES))
    if unknown:
        raise TypeError(f"unknown sweep argument(s) {unknown}; the axes are {list(AXES)}")
    full = {name: values.get(name, default) for name, default in AXES.items()}
    axes = {}
    for name, value in full.items():
        if _is_axis(value):
            if len(value) == 0:
                raise ValueError(f"{name} is an empty axis: give at least one value")
            axes[name] = value.tolist() if isinstance(value, numpy.ndarray) else list(value)
    names = list(full)
    choices = [axes[n] if n in axes else [full[n]] for n in names]
    return axes, [dict(zip(names, combo, strict=True)) for combo in itertools.product(*choices)]


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _prepare(models: list[dict]) -> list[dict]:
    """Validate every model's settings and build its optimizer (before any training)."""
    for s in models:
        if s["optimizer"] not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {s['optimizer']!r}")
        s["_opt"] = make_optimizer(
            s["optimizer"],
            s["learning_rate"],
            beta=s["beta"],
            beta1=s["beta1"],
            beta2=s["beta2"],
            epsilon=s["epsilon"],
        )
        for name, low in (("seed", 0), ("init_seed", 0), ("num_epochs", 0), ("mini_batch_size", 1)):
            s[name] = _check_int(name, s[name], low)
        check_seed(s["seed"], s["num_epochs"])  # every epoch's shuffle seed in NumPy's range
        s["_decay"] = resolve_decay(s["decay"])
        rate = s["decay_rate"]
        if (
            isinstance(rate, bool)
            or not isinstance(rate, numbers.Real)
            or not math.isfinite(rate)
            or rate < 0
        ):
            raise ValueError(f"decay_rate must be a finite number >= 0, got {rate!r}")
    return models


def _progress(label: str, epochs: int, show: bool | None, done: int = 0):
    """An ``on_record`` callback drawing the block's progress bar (``train``'s, with the
    block's best recorded cost), or None; it has ``finish(trainer)`` for the end."""
    if not (show if show is not None else sys.stderr.isatty()):
        return None
    return _BlockBar(_Progress(epochs, label, initial=done), epochs)


class _BlockBar:
    """:func:`_progress`'s callback: ``bar(epoch, trainer)`` after a recorded epoch."""

    def __init__(self, bar: _Progress, epochs: int):
        self.bar, self.epochs = bar, epochs

    @staticmethod
    def best(epoch: int, trainer) -> float:
        return float(trainer.xp.min(trainer.history[epoch // trainer.record_every]))

    def __call__(self, epoch: int, trainer) -> None:
        self.bar.show(epoch + 1, self.best(epoch, trainer))

    def finish(self, trainer) -> None:
        if self.epochs > 0:
            self.bar.show(self.epochs, self.best(self.epochs - 1, trainer))
        self.bar.close()


def _train_alone(X, Y, dims, s: dict, record_every: int, progress):
    """One model with :func:`~xpopt.train` (a block of one: stacking would only add work)."""
    init = to_module(host_initial_parameters(dims, s["init_seed"], dtype=X.dtype), get_xp(X))
    result = train(
        X,
        Y,
        init,
        s["_opt"],
        seed=s["seed"],
        mini_batch_size=s["mini_batch_size"],
        num_epochs=s["num_epochs"],
        decay=s["_decay"],
        decay_rate=s["decay_rate"],
        record_every=record_every,
        progress=progress,
        progress_label=f"{s['optimizer']} x1: ",
    )
    return result.parameters, result.costs


@dataclass
class SweepPlan:
    """A checked grid: what :func:`train_models` trains.

    Attributes
    ----------
    axes : dict of str to list
    models : list of dict
        Every model's full settings (with its optimizer ``_opt`` and schedule ``_decay``).
    dims : list of int
    shuffle : str
    record_every : int
    block_size : int or None
    """

    axes: dict
    models: list
    dims: list
    shuffle: str
    record_every: int
    block_size: int | None

    def blocks(self, indices: Sequence[int], on_cpu: bool) -> list[tuple[tuple, list[int]]]:
        """The stacked blocks of the models ``indices``: ``((optimizer, batch, epochs),
        members)``, grouped by optimizer, batch size and epochs, cut into ``block_size``."""
        groups: dict[tuple, list[int]] = {}
        for k in indices:
            s = self.models[k]
            groups.setdefault((s["optimizer"], s["mini_batch_size"], s["num_epochs"]), []).append(k)
        out: list[tuple[tuple, list[int]]] = []
        for key, members in groups.items():
            size = self.block_size if (on_cpu and self.block_size) else len(members)
            out.extend((key, members[lo : lo + size]) for lo in range(0, len(members), size))
        return out


def check_sweep(
    layer_dims: Sequence[int],
    optimizer="adam",
    *,
    shuffle: str = "own",
    record_every: int = 100,
    block_size: int | None = 128,
    **values,
) -> SweepPlan:
    """Every check of :func:`sweep` that needs no data (the command line calls it before it
    loads any): the axes, each model's settings and optimizer, seeds, counts, ``layer_dims``.

    Raises
    ------
    ValueError, TypeError
        As :func:`sweep` does.
    """
    if shuffle not in SHUFFLES:
        raise ValueError(f"shuffle must be one of {SHUFFLES}, got {shuffle!r}")
    record_every = _check_int("record_every", record_every, 1)
    if block_size is not None:
        block_size = _check_int("block_size", block_size, 1)
    axes, models = grid(optimizer=optimizer, **values)
    parameter_layout(layer_dims)  # validates layer_dims
    _prepare(models)
    dims = [int(d) for d in layer_dims]
    if dims[-1] != 1:
        raise ValueError(
            f"a sweep trains networks with one output unit on labels of shape "
            f"(1, m); got layer_dims[-1]={dims[-1]}"
        )
    if shuffle == "shared" and len({s["seed"] for s in models}) > 1:
        raise ValueError(
            "shuffle='shared' draws one permutation per epoch from one seed, "
            "but seed is an axis; give one seed or use shuffle='own'"
        )
    return SweepPlan(axes, models, dims, shuffle, record_every, block_size)


def _check_data(X, Y, plan: SweepPlan) -> None:
    for s in plan.models:
        _check_batch_inputs(X, Y, s["mini_batch_size"])
    dims = plan.dims
    if Y.shape[0] != 1:
        raise ValueError(
            f"a sweep trains networks with one output unit on labels of shape "
            f"(1, m); got layer_dims[-1]={dims[-1]} and Y of shape {Y.shape}"
        )
    if X.shape[0] != dims[0]:
        raise ValueError(f"X has {X.shape[0]} features (rows) but layer_dims[0] is {dims[0]}")
    if X.dtype != Y.dtype or X.dtype.kind != "f":
        raise TypeError(f"X and Y must share one floating dtype, got {X.dtype} and {Y.dtype}")


def train_models(
    X,
    Y,
    plan: SweepPlan,
    indices: Sequence[int] | None = None,
    *,
    progress: bool | None = False,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 1000,
    resume: bool = False,
):
    """Train the models ``indices`` of a checked plan (all by default), block after block.

    Returns
    -------
    parameters : list of FlatDict
    costs : list of list of float
        Both in the order of ``indices``.
    seconds : float
        Wall time of the training, device work included.
    """
    from . import sweep_checkpoint  # noqa: PLC0415

    indices = list(range(len(plan.models))) if indices is None else [int(k) for k in indices]
    on_cpu = get_xp(X, Y) is numpy
    blocks = plan.blocks(indices, on_cpu)
    store = None
    if checkpoint is not None:
        checkpoint_every = _check_int("checkpoint_every", checkpoint_every, 1)
        store = sweep_checkpoint.SweepCheckpoint(checkpoint, X, Y, plan, indices, blocks)
        if resume:
            store.load()
    found: dict[int, tuple] = {}
    start = time.perf_counter()
    for b, ((_, batch, epochs), block) in enumerate(blocks):
        ms = [plan.models[k] for k in block]
        if store is not None and b < store.done:  # trained before the interruption
            for k, (params, costs) in store.finished(b).items():
                found[k] = (to_module(params, get_xp(X)), costs)
            continue
        if len(block) == 1 and store is None:  # nothing to stack: train itself, at its cost
            found[block[0]] = _train_alone(X, Y, plan.dims, ms[0], plan.record_every, progress)
            continue
        trainer = StackedTrainer(
            X,
            Y,
            plan.dims,
            [s["_opt"] for s in ms],
            [s["seed"] for s in ms],
            [s["init_seed"] for s in ms],
            [(s["_decay"], s["decay_rate"]) for s in ms],
            batch,
            shared=plan.shuffle == "shared",
        )
        if store is not None:
            store.restore_current(b, trainer)
        bar = _progress(
            f"{ms[0]['optimizer']} x{len(block)}, best", epochs, progress, trainer.epoch
        )
        update = None if on_cpu else stacked_update(trainer)
        while True:
            piece = None if store is None else checkpoint_every - trainer.epoch % checkpoint_every
            history = trainer.run(
                epochs, plan.record_every, on_record=bar, update=update, stop_after=piece
            )
            if trainer.epoch >= epochs:
                break
            assert store is not None  # without one, run() went to the end
            store.save_current(b, trainer)
        if bar is not None:
            bar.finish(trainer)
        for j, k in enumerate(block):
            found[k] = (trainer.parameters(j), history[:, j].tolist())
        if store is not None:
            store.save_finished(b, trainer, history)
    synchronize()
    seconds = time.perf_counter() - start
    return [found[k][0] for k in indices], [found[k][1] for k in indices], seconds


def sweep(
    X,
    Y,
    layer_dims: Sequence[int],
    optimizer: str | Sequence[str] = "adam",
    *,
    learning_rate=0.0007,
    beta=0.9,
    beta1=0.9,
    beta2=0.999,
    epsilon=1e-8,
    seed=10,
    init_seed=3,
    num_epochs=5000,
    mini_batch_size=64,
    decay=None,
    decay_rate=1,
    shuffle: str = "own",
    record_every: int = 100,
    block_size: int | None = 128,
    progress: bool | None = False,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 1000,
    resume: bool = False,
) -> SweepResult:
    """Train every model of a grid at once; model ``k`` equals :func:`~xpopt.train`'s run.

    Parameters
    ----------
    X : ndarray of shape (n_x, m)
    Y : ndarray of shape (1, m)
        NumPy or CuPy; the sweep runs there.
    layer_dims : sequence of int
        ``[n_x, ..., 1]`` (one output unit, as the course's network).
    optimizer : str or list of str
        ``"gd"``, ``"momentum"``, ``"rmsprop"``, ``"adam"``; several run as one group each.
    learning_rate, beta, beta1, beta2, epsilon : float or list of float
        As :func:`~xpopt.make_optimizer` takes them.
    seed : int or list/range of int
        ``train``'s shuffle seed (epoch ``i`` shuffles with ``seed + i + 1``).
    init_seed : int or list/range of int
        :func:`~xpopt.initialize_parameters`' seed.
    num_epochs, mini_batch_size : int or list of int
    decay : None, callable, "update_lr", "schedule_lr_decay", or a list of these
        ``decay(learning_rate0, epoch, decay_rate)``, called as ``train`` calls it.
    decay_rate : float or list of float
    shuffle : {"own", "shared"}
        ``"own"``: each model its seed's permutation (one permutation is shared anyway when
        all seeds are equal). ``"shared"``: one permutation for all, which needs one seed.
    record_every : int
        Record ``cost_avg`` every this many epochs, as ``train``.
    block_size : int or None
        At most this many models per stacked block on the CPU (None: a group at once).
    progress : bool or None
        A progress line per block on stderr, redrawn at each recorded epoch (the only
        reads of the device); None: only when stderr is a terminal.
    checkpoint : path, optional
        Save the whole sweep there (one ``.npz``, written atomically): the finished blocks'
        parameters and costs, and the running block's buffers (parameters, optimizer
        state, step count, learning rates, recorded costs, epoch) every
        ``checkpoint_every`` epochs. A block of one is then stacked too (``train``'s own
        checkpoint is a file per run).
    checkpoint_every : int
    resume : bool
        Continue from ``checkpoint`` when that file exists: the sweep ends bit for bit
        where the uninterrupted one ends.

    Returns
    -------
    SweepResult
        ``settings[k]``, ``parameters[k]``, ``costs[k]``, ``final_cost[k]``, ``accuracy[k]``.

    Raises
    ------
    ValueError, TypeError
        For an empty axis, an unknown optimizer or shuffle, a bad value, or data that does
        not fit ``layer_dims``: all checked before any training.
    CheckpointError
        Before any training: a checkpoint path where nothing can be written; with
        ``resume``, a checkpoint that is unreadable or of another sweep (grid, network,
        data, dtype, record interval, blocks).
    """
    plan = check_sweep(
        layer_dims,
        optimizer,
        shuffle=shuffle,
        record_every=record_every,
        block_size=block_size,
        learning_rate=learning_rate,
        beta=beta,
        beta1=beta1,
        beta2=beta2,
        epsilon=epsilon,
        seed=seed,
        init_seed=init_seed,
        num_epochs=num_epochs,
        mini_batch_size=mini_batch_size,
        decay=decay,
        decay_rate=decay_rate,
    )
    _check_data(X, Y, plan)
    parameters, costs, seconds = train_models(
        X,
        Y,
        plan,
        progress=progress,
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
        resume=resume,
    )
    return result_of(X, Y, plan, range(len(plan.models)), parameters, costs, seconds)


def result_of(X, Y, plan: SweepPlan, indices, parameters, costs, seconds) -> SweepResult:
    """The :class:`SweepResult` of the models ``indices`` (their final cost and accuracy
    computed on the whole data set)."""
    indices = list(indices)
    settings = [{name: plan.models[k][name] for name in plan.axes} for k in indices]
    finals = [_final_cost(X, Y, p) for p in parameters]
    accuracies = [_accuracy(X, Y, p) for p in parameters]
    return SweepResult(
        axes=plan.axes,
        settings=settings,
        parameters=list(parameters),
        costs=list(costs),
        final_cost=finals,
        accuracy=accuracies,
        record_every=plan.record_every,
        seconds=seconds,
    )
