"""The training loop: the general :func:`train` and the course's :func:`model` over it.

:func:`train` reads top to bottom in named steps: check the settings and prepare the
parameters and optimizer (:func:`prepare`), find a checkpoint to resume from
(:class:`~xpopt.run.Run`), take the network's passes (:class:`~xpopt.passes.TrainingPasses`)
and the optimizer's bound step, then per epoch: shuffle (data), the passes and updates
(network -> optim), and record, report and checkpoint (:class:`~xpopt.run.Run`).

Training runs where its data is. With CuPy arrays nothing crosses between host and device
per step: the epoch's cost is accumulated in a 0-d device array, recorded costs go into a
device array, and values are read only to print them (every ``print_every`` epochs), to
show progress, to save a checkpoint, and once at the end.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable, Sequence

import numpy

from .backend import get_xp, to_module
from .data import MiniBatcher, check_dataset
from .flat import FlatDict
from .heldout import HeldOut
from .network import check_output, host_initial_parameters
from .optim import GD, Adam, Momentum, Optimizer, RMSprop
from .passes import TrainingPasses
from .run import Run, TrainResult
from .settings import SEED_MAX, _Progress, check_seed, check_settings, describe_schedule  # noqa: F401 (re-exported)
from .softmax import check_dataset as check_softmax_dataset
from .softmax import one_hot

__all__ = ["OPTIMIZERS", "TrainResult", "make_optimizer", "model", "prepare", "train"]

OPTIMIZERS = ("gd", "momentum", "rmsprop", "adam")


def make_optimizer(
    name: str,
    learning_rate: float = 0.0007,
    *,
    beta: float = 0.9,
    beta1: float = 0.9,
    beta2: float = 0.999,
    epsilon: float = 1e-8,
    fused: bool = True,
) -> Optimizer:
    """The optimizer object for a course name: ``"gd"``, ``"momentum"``, ``"rmsprop"``,
    ``"adam"``."""
    if name == "gd":
        return GD(learning_rate, fused=fused)
    if name == "momentum":
        return Momentum(learning_rate, beta, fused=fused)
    if name == "rmsprop":
        return RMSprop(learning_rate, beta2, epsilon, fused=fused)
    if name == "adam":
        return Adam(learning_rate, beta1, beta2, epsilon, fused=fused)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")


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
    progress: bool | None = None,
    progress_label: str = "",
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 1000,
    resume: bool = False,
    stop_after: int | None = None,
    output: str = "sigmoid",
    validation=None,
) -> TrainResult:
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
        A tqdm progress bar on stderr (ETA, rate, the cost), drawn at recorded epochs only;
        None (the default): only when stderr is a terminal; False: never.
    checkpoint : path, optional
        Save a checkpoint there every ``checkpoint_every`` epochs and at the end (atomic).
    resume : bool
        Continue from ``checkpoint`` if that file exists (its parameters, state, epoch).
    stop_after : int, optional
        Stop after this many epochs of this call (an interruption, for tests and schedulers).
    output : {"sigmoid", "softmax"}
        The output layer: the course's sigmoid with labels 0 / 1 (1, m), or a softmax over
        the ``n_L >= 2`` output units with the categorical cross-entropy, whose labels are
        class labels (1, m) or (m,) or one-hot (n_L, m) (see :mod:`xpopt.softmax`).
    validation : (X_val, Y_val), optional
        Held-out examples: at each recorded epoch their mean cost and accuracy go into
        ``TrainResult.validation_costs`` / ``validation_accuracies`` (computed on the
        device, read once at the end; counted in ``wall_time``).

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
    settings = check_settings(
        num_epochs=num_epochs,
        mini_batch_size=mini_batch_size,
        seed=seed,
        print_every=print_every,
        record_every=record_every,
        checkpoint_every=checkpoint_every,
        stop_after=stop_after,
        checkpoint=checkpoint,
    )
    params, optimizer = prepare(X, Y, parameters, optimizer, output=output)
    classes = _output_units(params)
    heldout = None if validation is None else HeldOut(validation, X, output, classes)
    if output == "softmax":  # one-hot once, on the device: the steps read nothing back
        Y = one_hot(Y, classes, X.dtype, checked=True)
    batcher = MiniBatcher(X, Y, settings["mini_batch_size"])
    run = Run(
        params,
        optimizer,
        settings,
        decay=decay,
        decay_rate=decay_rate,
        checkpoint=checkpoint,
        data=(X, Y),
        print_cost=print_cost,
        progress=progress,
        progress_label=progress_label,
    )
    saved = run.saved_checkpoint(len(batcher)) if resume else None
    passes = TrainingPasses(params, batcher.bounds(), output=output)
    step = run.optimizer.bind(params, passes.grads, run.state)
    if saved is not None:  # every check passed: the first write into the run's arrays
        run.restore(saved)
    seed, m = settings["seed"], batcher.m
    t0 = time.perf_counter()
    with numpy.errstate(over="ignore"):  # exp(-z) = inf in the sigmoid gives 0, correctly
        for i in range(run.start, run.end):
            run.begin_epoch()
            total = passes.epoch(*batcher.shuffled(seed + i + 1), step)
            run.end_epoch(i, total / m)
            if heldout is not None and i % settings["record_every"] == 0:
                heldout.record(i, params)
    if heldout is None:
        return run.result(t0)
    epochs, costs, accuracies = heldout.results()
    result = run.result(t0)
    result.validation_epochs, result.validation_costs = epochs, costs
    result.validation_accuracies = accuracies
    return result


def _output_units(parameters) -> int:
    """n_L: the rows of the last weight matrix, or the last of the layer sizes."""
    if isinstance(parameters, dict):
        L = sum(1 for k in parameters if isinstance(k, str) and k.startswith("W"))
        W = parameters.get(f"W{L}")
        return 0 if W is None or getattr(W, "ndim", 0) != 2 else int(W.shape[0])
    try:
        return int(list(parameters)[-1])
    except (TypeError, ValueError, IndexError):
        return 0  # the layer sizes are refused, with their own message, when used


def prepare(X, Y, parameters, optimizer, *, output: str = "sigmoid") -> tuple[FlatDict, Optimizer]:
    """Check what :func:`train` is given, before any array is touched; returns packed
    parameters on the data's device and a copy of the optimizer (a schedule changes the
    copy's learning rate: the caller's optimizer stays as it is). ``output="softmax"``
    checks the labels as class labels or one-hot labels of the network's output units."""
    if not isinstance(optimizer, Optimizer):
        raise TypeError(
            f"optimizer must be an xpopt Optimizer (GD, Momentum, RMSprop, Adam), "
            f"got {type(optimizer).__name__}; make_optimizer('adam', ...) builds one"
        )
    check_output(output)
    if output == "softmax":
        check_softmax_dataset(X, Y, _output_units(parameters))
    else:
        check_dataset(X, Y)
    if isinstance(parameters, dict):
        params = parameters
        if not (isinstance(params, FlatDict) and params.packed):
            params = FlatDict.pack(params)
        get_xp(X, params.flat)
    else:  # born where the data is, whatever backend is configured
        params = to_module(host_initial_parameters(parameters, dtype=X.dtype), get_xp(X))
    if params.flat.dtype != X.dtype:
        raise TypeError(f"X is {X.dtype} but the parameters are {params.flat.dtype}")
    return params, copy.copy(optimizer)


def model(
    X,
    Y,
    layers_dims,
    optimizer,
    learning_rate=0.0007,
    mini_batch_size=64,
    beta=0.9,
    beta1=0.9,
    beta2=0.999,
    epsilon=1e-8,
    num_epochs=5000,
    print_cost=True,
    decay=None,
    decay_rate=1,
    *,
    output="sigmoid",
):
    """The course's ``model()``: train ``layers_dims`` on (X, Y) and return the parameters.

    ``optimizer`` is ``"gd"``, ``"momentum"``, ``"rmsprop"`` or ``"adam"``; the seeds, the
    Adam step counter and the printed lines are the course's (see :func:`train`).

    Returns
    -------
    parameters : FlatDict
        ``W1, b1, ...`` on the device of X.
    """
    opt = make_optimizer(
        optimizer, learning_rate, beta=beta, beta1=beta1, beta2=beta2, epsilon=epsilon
    )
    result = train(
        X,
        Y,
        layers_dims,
        opt,
        mini_batch_size=mini_batch_size,
        num_epochs=num_epochs,
        decay=decay,
        decay_rate=decay_rate,
        print_cost=print_cost,
        output=output,
    )
    return result.parameters
