"""The notebook's experiment: the same network trained with each optimizer, side by side.

The course trains its ``[2, 5, 2, 1]`` network on the moons with ``model()`` once per
optimizer (gd, momentum, adam; RMSprop is added here from the week's lectures), then with
learning-rate decay. :func:`run_comparison` does that with the course's seeds and defaults
and times each run; :func:`format_table` lays the results out for a terminal or markdown.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy

from .backend import synchronize, use_backend
from .data import load_moons
from .network import accuracy, compute_cost, forward_propagation
from .optim import schedule_lr_decay, update_lr
from .train import OPTIMIZERS, TrainResult, make_optimizer, train

__all__ = [
    "DECAYS",
    "LAYERS_DIMS",
    "NOTEBOOK_DECAY_RATES",
    "ComparisonRow",
    "final_cost",
    "format_table",
    "resolve_decay",
    "run_comparison",
    "train_timed",
]

LAYERS_DIMS = (2, 5, 2, 1)  # the course's network for the moons
DECAYS = {"update_lr": update_lr, "schedule_lr_decay": schedule_lr_decay}
#: What the notebook's decay section trains with ``schedule_lr_decay``, in its order, and
#: each optimizer's ``learning_rate0`` there (its ``update_lr`` cell trains gd at 0.1).
#: RMSprop is not in it (at 0.1 it learns nothing: its cost stays at ln 2).
NOTEBOOK_DECAY_RATES = {"gd": 0.1, "momentum": 0.1, "adam": 0.01}


class ComparisonRow(NamedTuple):
    """One optimizer's run.

    Attributes
    ----------
    optimizer : str
        ``"gd"``, ``"momentum"``, ``"rmsprop"`` or ``"adam"``.
    final_cost : float
        The mean cost of the trained parameters over the whole training set.
    accuracy : float
        Training accuracy of the trained parameters, in [0, 1].
    seconds : float
        Wall time of :func:`~xpopt.train`, device work included.
    result : TrainResult
        Everything the run returned (parameters, recorded costs, learning rates, state).
    heldout_accuracy : float or None
        Accuracy on the validation set, when the run had one.
    """

    optimizer: str
    final_cost: float
    accuracy: float
    seconds: float
    result: TrainResult
    heldout_accuracy: float | None = None


def resolve_decay(decay: str | Callable | None, time_interval: int = 1000) -> Callable | None:
    """The decay function that :func:`~xpopt.train` calls as ``decay(lr0, epoch, decay_rate)``.

    Parameters
    ----------
    decay : {None, "none", "update_lr", "schedule_lr_decay"} or callable
        A callable is returned as it is.
    time_interval : int
        Epochs per step of ``schedule_lr_decay`` (the course's default, 1000).

    Returns
    -------
    callable or None
    """
    if decay is None or decay == "none":
        return None
    if callable(decay):
        return decay
    if decay not in DECAYS:
        raise ValueError(f"decay must be None, a callable or one of {tuple(DECAYS)}, got {decay!r}")
    if decay == "schedule_lr_decay" and time_interval != 1000:
        # train() passes three arguments, as the course's model() does; bind the fourth.
        return functools.partial(schedule_lr_decay, time_interval=time_interval)
    return DECAYS[decay]


def final_cost(X, Y, parameters: dict, output: str = "sigmoid") -> float:
    """The course's cost of ``parameters`` over all of (X, Y), divided by ``m`` (with
    ``output="softmax"``, the categorical cross-entropy).

    Unlike the per-epoch ``cost_avg`` (summed over mini-batches while the parameters
    change), this is the cost of the trained network itself.
    """
    AL, _ = forward_propagation(X, parameters, output=output)
    return float(compute_cost(AL, Y, output=output)) / X.shape[1]


def train_timed(
    X,
    Y,
    optimizer: str,
    *,
    layers_dims: Sequence[int] = LAYERS_DIMS,
    learning_rate: float = 0.0007,
    beta: float = 0.9,
    beta1: float = 0.9,
    beta2: float = 0.999,
    epsilon: float = 1e-8,
    **train_kwargs: Any,
) -> ComparisonRow:
    """Train one optimizer as the course's ``model()`` does, and time it.

    Parameters
    ----------
    X : ndarray of shape (n_x, m)
    Y : ndarray of shape (1, m)
        NumPy or CuPy; training runs there.
    optimizer : str
        A name that :func:`~xpopt.make_optimizer` knows.
    layers_dims : sequence of int
        Initialised with the course's He draws (seed 3).
    learning_rate, beta, beta1, beta2, epsilon : float
        The optimizer's hyperparameters.
    **train_kwargs
        Passed to :func:`~xpopt.train` (``num_epochs``, ``mini_batch_size``, ``decay``,
        ``print_cost``, ``progress``, ``checkpoint``, ``output``, ``validation``, ...).

    Returns
    -------
    ComparisonRow
    """
    opt = make_optimizer(
        optimizer, learning_rate, beta=beta, beta1=beta1, beta2=beta2, epsilon=epsilon
    )
    start = time.perf_counter()
    result = train(X, Y, list(layers_dims), opt, **train_kwargs)
    synchronize()  # queued GPU work belongs to this run's time
    seconds = time.perf_counter() - start
    output, validation = train_kwargs.get("output", "sigmoid"), train_kwargs.get("validation")
    heldout = None
    if validation is not None:
        X_val, Y_val = validation
        heldout = accuracy(X_val, Y_val, result.parameters, output=output)
    cost = (
        final_cost(X, Y, result.parameters)
        if output == "sigmoid"
        else final_cost(X, Y, result.parameters, output)
    )
    return ComparisonRow(
        optimizer, cost, accuracy(X, Y, result.parameters, output=output), seconds, result, heldout
    )


def _check_optimizers(optimizers: Sequence[str]) -> list[str]:
    names = [optimizers] if isinstance(optimizers, str) else list(optimizers)
    if not names:
        raise ValueError("no optimizer to compare")
    unknown = [n for n in names if n not in OPTIMIZERS]
    if unknown:
        raise ValueError(f"unknown optimizer(s) {unknown}; choose from {OPTIMIZERS}")
    return names


def run_comparison(
    optimizers: Sequence[str] = OPTIMIZERS,
    *,
    num_epochs: int = 5000,
    learning_rate: float | Mapping[str, float] = 0.0007,
    mini_batch_size: int | None = 64,
    beta: float = 0.9,
    beta1: float = 0.9,
    beta2: float = 0.999,
    epsilon: float = 1e-8,
    decay: str | Callable | None = None,
    decay_rate: float = 1.0,
    time_interval: int = 1000,
    dtype=numpy.float64,
    seed: int = 10,
    backend: str | None = None,
    strict: bool | None = None,
    data: tuple[Any, Any] | None = None,
    print_cost: bool = False,
    progress: bool | None = None,
    layers_dims: Sequence[int] = LAYERS_DIMS,
    output: str = "sigmoid",
    validation=None,
    record_every: int = 100,
) -> list[ComparisonRow]:
    """Train the course's network on the moons once per optimizer, as the notebook does.

    Every run starts from the same He initialisation and sees the same mini-batches (the
    course's seeds), so the results equal ``model(X, Y, [2, 5, 2, 1], name, ...)``.

    Parameters
    ----------
    optimizers : sequence of str
        Names among ``"gd"``, ``"momentum"``, ``"rmsprop"``, ``"adam"``, run in this order.
    num_epochs : int
    learning_rate : float or mapping of str to float
        ``learning_rate0``, for every optimizer or per name. The notebook's decay section
        uses :data:`NOTEBOOK_DECAY_RATES` (gd and momentum 0.1, adam 0.01).
    mini_batch_size : int or None
        None for batch gradient descent (all ``m`` examples), 1 for stochastic.
    beta, beta1, beta2, epsilon : float
        Momentum's ``beta``; Adam's ``beta1, beta2, epsilon`` (RMSprop uses ``beta2, epsilon``).
    decay : {None, "update_lr", "schedule_lr_decay"} or callable
    decay_rate : float
    time_interval : int
        For ``schedule_lr_decay``.
    dtype : float64 or float32
        Of the data (and so of everything trained).
    seed : int
        The course's mini-batch seed (10; epoch ``i`` shuffles with ``seed + i + 1``).
    backend : {None, "cpu", "cuda", "auto"}
        Where the data is born for this call; None: the configured backend.
    strict : bool, optional
        With ``backend="cuda"``: raise :class:`~xpopt.BackendUnavailableError` instead of
        falling back to the CPU.
    data : (X, Y), optional
        Train on these instead of ``load_moons(dtype=dtype)`` on the backend.
    print_cost : bool
        Print the course's ``Cost after epoch`` lines, under a line naming the optimizer.
    progress : bool or None
        A progress bar per run on stderr; None: only when stderr is a terminal.
    layers_dims : sequence of int
        The network (the course's ``[2, 5, 2, 1]``; ``[64, 64, 10]`` for the digits).
    output : {"sigmoid", "softmax"}
    validation : (X_val, Y_val), optional
        Held-out examples: their accuracy goes into each row's ``heldout_accuracy``.
    record_every : int
        Record the cost (and the validation figures) every this many epochs.

    Returns
    -------
    list of ComparisonRow
        One per optimizer, in the order asked.
    """
    names = _check_optimizers(optimizers)
    if isinstance(learning_rate, Mapping):
        missing = [n for n in names if n not in learning_rate]
        if missing:
            raise ValueError(f"learning_rate has no rate for {missing}")
        rates = {n: learning_rate[n] for n in names}
    else:
        rates = dict.fromkeys(names, learning_rate)
    decay_fn = resolve_decay(decay, time_interval)
    where = use_backend(backend, strict=strict) if backend is not None else contextlib.nullcontext()
    with where:
        X, Y = data if data is not None else load_moons(dtype=dtype)
        batch = X.shape[1] if mini_batch_size is None else mini_batch_size
        rows = []
        for name in names:
            if print_cost:
                print(f"{name}:")
            rows.append(
                train_timed(
                    X,
                    Y,
                    name,
                    layers_dims=layers_dims,
                    learning_rate=rates[name],
                    beta=beta,
                    beta1=beta1,
                    beta2=beta2,
                    epsilon=epsilon,
                    num_epochs=num_epochs,
                    mini_batch_size=batch,
                    seed=seed,
                    decay=decay_fn,
                    decay_rate=decay_rate,
                    print_cost=print_cost,
                    progress=progress,
                    progress_label=f"{name:<9}",
                    output=output,
                    validation=validation,
                    record_every=record_every,
                )
            )
    return rows


HEADERS = ("optimizer", "final cost", "train accuracy", "time (s)")
HELDOUT = "held-out accuracy"


def _cells(row: ComparisonRow, heldout: bool = False) -> tuple[str, ...]:
    cost = f"{row.final_cost:.6f}" if math.isfinite(row.final_cost) else str(row.final_cost)
    if heldout:
        held = "" if row.heldout_accuracy is None else f"{row.heldout_accuracy:.4f}"
        return row.optimizer, cost, f"{row.accuracy:.4f}", held, f"{row.seconds:.2f}"
    return row.optimizer, cost, f"{row.accuracy:.4f}", f"{row.seconds:.2f}"


def format_table(rows: Sequence[ComparisonRow], *, markdown: bool = False) -> str:
    """The rows as an aligned table: optimizer | final cost | train accuracy | time (s)
    (and a held-out accuracy column before the time when a row has one).

    Parameters
    ----------
    rows : sequence of ComparisonRow
    markdown : bool
        A pipe table (numbers right-aligned) that renders in markdown; otherwise plain
        columns under a dashed rule.

    Returns
    -------
    str
        Lines joined by newlines, without a trailing newline.
    """
    heldout = any(r.heldout_accuracy is not None for r in rows)
    headers = (*HEADERS[:3], HELDOUT, HEADERS[3]) if heldout else HEADERS
    body = [_cells(r, heldout) for r in rows]
    widths = [
        max(len(h), *(len(c[i]) for c in body)) if body else len(h) for i, h in enumerate(headers)
    ]

    def line(cells, fill=" ") -> list[str]:
        # The name column reads left to right; numbers line up on the right.
        return [
            c.ljust(w, fill) if i == 0 else c.rjust(w, fill)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]

    if markdown:
        rule = ["-" * widths[0]] + ["-" * (w - 1) + ":" for w in widths[1:]]
        lines = [line(headers), rule] + [line(c) for c in body]
        return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)
    rule = ["-" * w for w in widths]
    lines = [line(headers), rule] + [line(c) for c in body]
    return "\n".join("  ".join(cells).rstrip() for cells in lines)
