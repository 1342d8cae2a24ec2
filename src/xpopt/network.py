"""The course's network: He initialisation, the forward and the backward pass.

LINEAR -> RELU (L-1 times) -> LINEAR -> SIGMOID. Parameters ``W1, b1, ..., WL, bL`` are a
:class:`~xpopt.flat.FlatDict` (views into one buffer); gradients ``dW1, db1, ...`` too, and
:func:`backward_propagation` can write into a reused one. Everything runs on the arrays' own
module (NumPy or CuPy) and keeps their dtype. The cost lives in :mod:`xpopt.cost`, predictions
and the gradient check in :mod:`xpopt.evaluate`, a training loop's buffers in
:mod:`xpopt.passes`; all are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy

from .backend import get_xp, to_device
from .cost import _clip_bounds, _logprobs, compute_cost, epoch_cost  # noqa: F401 (re-exported)
from .flat import FlatDict
from .layout import (  # noqa: F401 (re-exported)
    _check_layer_dims,
    _check_shapes,
    _new_grads,
    _num_layers,
    parameter_layout,
    plan_for,
)

__all__ = [
    "Caches",
    "OUTPUTS",
    "Workspace",
    "check_output",
    "accuracy",
    "backward_propagation",
    "compute_cost",
    "epoch_cost",
    "forward_propagation",
    "gradient_check",
    "initialize_parameters",
    "predict",
]


def initialize_parameters(
    layer_dims: Sequence[int], seed: int = 3, *, dtype=numpy.float64
) -> FlatDict:
    """He initialisation, with the course's draws, born on the configured backend.

    ``np.random.seed(seed)`` once (here a local ``RandomState``), then for l = 1..L:
    ``W_l = randn(n_l, n_{l-1}) * sqrt(2 / n_{l-1})`` and ``b_l = zeros((n_l, 1))``.

    Parameters
    ----------
    layer_dims : sequence of int
        ``[n_x, n_1, ..., n_L]``; the course's network is ``[2, 5, 2, 1]``.
    seed : int
    dtype : float32 or float64
        Drawn in float64 (as the course), then cast.

    Returns
    -------
    FlatDict
        ``W_l`` of shape (n_l, n_{l-1}) and ``b_l`` of shape (n_l, 1), views into one buffer.
    """
    return to_device(host_initial_parameters(layer_dims, seed, dtype=dtype))


def host_initial_parameters(
    layer_dims: Sequence[int], seed: int = 3, *, dtype=numpy.float64
) -> FlatDict:
    """:func:`initialize_parameters` on the host (NumPy), whatever backend is configured."""
    dtype = numpy.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"dtype must be a floating type, got {dtype}")
    dims = _check_layer_dims(layer_dims)
    rng = numpy.random.RandomState(seed)
    params64 = FlatDict.empty(parameter_layout(dims), numpy, numpy.float64)
    for l in range(1, len(dims)):
        params64[f"W{l}"][...] = rng.randn(dims[l], dims[l - 1]) * numpy.sqrt(2 / dims[l - 1])
        params64[f"b{l}"][...] = 0.0
    return FlatDict(params64.flat.astype(dtype, copy=False), params64.layout)


class Caches(NamedTuple):
    """What the forward pass keeps for the backward pass.

    Attributes
    ----------
    activations : tuple of ndarray
        ``(X, A1, ..., AL)``; ``A_l`` has shape (n_l, m).
    parameters : dict
        The parameters the pass used (the backward pass reads ``W_l``).
    workspace : Workspace or None
        The buffers the pass wrote into, if any.
    """

    activations: tuple
    parameters: dict
    workspace: Any = None


OUTPUTS = ("sigmoid", "softmax")


def check_output(output) -> str:
    """``output`` if it names an output layer (``"sigmoid"`` or ``"softmax"``), else ValueError."""
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    return output


def forward_propagation(
    X, parameters: dict, workspace: Workspace | None = None, *, output: str = "sigmoid"
) -> tuple[Any, Caches]:
    """LINEAR -> RELU for layers 1..L-1, LINEAR -> SIGMOID (or SOFTMAX) for layer L.

    Parameters
    ----------
    X : ndarray of shape (n_x, m)
    parameters : dict
        ``W_l`` of shape (n_l, n_{l-1}), ``b_l`` of shape (n_l, 1); same module and dtype as X.
    workspace : Workspace, optional
        Buffers to compute into (built for these parameters and this ``m``), for loops.
    output : {"sigmoid", "softmax"}
        The last layer's activation: the course's sigmoid (one probability per output
        unit), or a softmax over the ``n_L >= 2`` output units (class probabilities, each
        column summing to 1; numerically stable, see :func:`xpopt.softmax.softmax`).

    Returns
    -------
    AL : ndarray of shape (n_L, m)
        ``sigmoid(W_L A_{L-1} + b_L)`` or ``softmax(W_L A_{L-1} + b_L)``.
    caches : Caches
    """
    if output != "sigmoid":
        check_output(output)
    Ws: Sequence[Any]  # a plan's tuples or a workspace's lists
    bs: Sequence[Any]
    outs: Sequence[Any]
    if workspace is None:
        plan = plan_for(parameters)
        Ws, bs = plan.Ws, plan.bs
        xp = get_xp(X, Ws[0])
        if X.dtype != Ws[0].dtype:
            raise TypeError(
                f"X is {X.dtype} but the parameters are {Ws[0].dtype}; "
                "convert one of them (no silent promotion)"
            )
        if X.ndim != 2 or X.shape[0] != Ws[0].shape[1]:
            _check_shapes(Ws, bs, X.shape[0])
        L = len(Ws)
        outs = (None,) * L
    else:
        if workspace.parameters is not parameters or X.shape[1] != workspace.m:
            raise ValueError("this workspace was built for other parameters or another batch width")
        # a foreign X (other module or dtype) fails in the first dot with the library's error
        xp, Ws, bs, outs = workspace.xp, workspace.W, workspace.b, workspace.A
        L = len(Ws)
    A = X
    activations = [X]
    for l in range(L):
        Z = xp.dot(Ws[l], A, out=outs[l])
        xp.add(Z, bs[l], out=Z)
        # float scalars (0.0, 1.0: the same values as the course's 0 and 1) dispatch faster
        if l < L - 1:
            xp.maximum(Z, 0.0, out=Z)  # relu(z) = maximum(0, z)
        elif output == "softmax":
            if Z.shape[0] < 2:
                raise ValueError(
                    "a softmax output needs at least 2 output units; for one "
                    "output unit use output='sigmoid'"
                )
            softmax(Z, out=Z)
        else:  # sigmoid(z) = 1 / (1 + exp(-z)), in place
            xp.negative(Z, out=Z)
            if xp is numpy and workspace is None:
                with numpy.errstate(over="ignore"):  # exp(-z) = inf gives sigmoid(z) = 0
                    numpy.exp(Z, out=Z)
            else:  # a loop with a workspace sets the errstate once, around all its steps
                xp.exp(Z, out=Z)
            xp.add(Z, 1.0, out=Z)
            xp.divide(1.0, Z, out=Z)
        A = Z
        activations.append(A)
    return A, Caches(tuple(activations), parameters, workspace)


def backward_propagation(
    X, Y, caches: Caches, grads: FlatDict | None = None, *, output: str = "sigmoid"
) -> FlatDict:
    """Gradients of the MEAN cost over the batch with respect to every parameter.

    ``dz_L = (a_L - Y) / m`` (with ``output="softmax"``, ``Y`` one-hot);
    ``dW_l = dz_l a_{l-1}^T``; ``db_l = sum(dz_l, axis=1)``;
    ``dz_{l-1} = (W_l^T dz_l) * (a_{l-1} > 0)``.

    Parameters
    ----------
    X : ndarray of shape (n_x, m)
    Y : ndarray of shape (n_L, m)
        Labels 0 / 1 for the sigmoid. For the softmax: class labels of shape (1, m) or
        (m,), or one-hot labels (n_L, m), checked (one read back on the GPU; see
        :func:`xpopt.softmax.check_labels`).
    caches : Caches
        From :func:`forward_propagation` on this ``X`` (with its workspace, if it had one:
        then the temporaries and the gradients live there too).
    grads : FlatDict, optional
        A gradient buffer to write into (``dW1, db1, ...``), reused between steps; a new one
        when None (and no workspace).
    output : {"sigmoid", "softmax"}
        The output layer the forward pass used.

    Returns
    -------
    grads : FlatDict
        ``dW_l`` of shape (n_l, n_{l-1}), ``db_l`` of shape (n_l, 1).
    """
    activations, parameters, ws = caches
    L = len(activations) - 1
    AL = activations[-1]
    if output != "sigmoid":
        check_output(output)
        check_labels(Y, AL.shape[0], AL.shape[1])  # before any write
        Y = one_hot(Y, AL.shape[0], AL.dtype, checked=True)
    xp = get_xp(X, Y, AL) if ws is None else ws.xp
    if Y.shape != AL.shape:
        hint = (
            " (class labels: pass output='softmax')"
            if Y.shape[0] == 1 and AL.shape[0] > 1 and Y.shape[1:] == AL.shape[1:]
            else ""
        )
        raise ValueError(f"Y must have shape {AL.shape}, got {Y.shape}{hint}")
    if ws is not None:
        grads, gW, gb, dZs, slopes = ws.grads, ws.gW, ws.gb, ws.dZ, ws.relu_slopes
        Ws = ws.W
    else:
        plan = plan_for(parameters)
        Ws = plan.Ws
        if grads is None or not (isinstance(grads, FlatDict) and grads.packed):
            grads, views = plan.new_grads(xp, AL.dtype)
            gW, gb = [views[i] for i in plan.gW_at], [views[i] for i in plan.gb_at]
        else:
            gW = [grads[f"dW{l}"] for l in range(1, L + 1)]
            gb = [grads[f"db{l}"] for l in range(1, L + 1)]
        dZs = slopes = (None,) * L
    _backward_loop(xp, activations, Y, Ws, gW, gb, dZs, slopes, float(X.shape[1]))
    return grads


def _backward_loop(xp, activations, Y, Ws, gW, gb, dZs, slopes, m: float) -> None:
    """The backward pass's operations, into ``gW`` and ``gb``: ``dz_L = (a_L - Y) / m``, then
    layer by layer down. ``dZs`` and ``slopes`` are buffers to write the temporaries into
    (None: new arrays); ``m`` is the batch width as a float (the same division as by the int;
    a float scalar dispatches faster), or a global batch's width for a shard of it."""
    L = len(activations) - 1
    # numpy.add.reduce is numpy.sum without its Python wrapper: the same reduction
    row_sum = numpy.add.reduce if xp is numpy else xp.sum
    dZ = xp.subtract(activations[-1], Y, out=dZs[L - 1])
    xp.divide(dZ, m, out=dZ)
    for l in range(L - 1, -1, -1):
        A_prev = activations[l]
        xp.dot(dZ, A_prev.T, out=gW[l])
        row_sum(dZ, axis=1, keepdims=True, out=gb[l])
        if l > 0:
            dA = xp.dot(Ws[l].T, dZ, out=dZs[l - 1])
            # relu'(z) read from a = relu(z) >= 0: sign(a) is the course's (a > 0) as 1.0 or
            # 0.0, so the multiply stays float by float (a bool operand costs a cast loop)
            relu_slope = xp.sign(A_prev, out=slopes[l - 1])
            dZ = xp.multiply(dA, relu_slope, out=dA)


# Re-exported from the modules split off this one (they import from here, hence at the end).
from .evaluate import accuracy, gradient_check, predict  # noqa: E402,F401
from .passes import Workspace  # noqa: E402,F401
from .softmax import check_labels, one_hot, softmax  # noqa: E402
