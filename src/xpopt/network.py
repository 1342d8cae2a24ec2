"""The multi-layer perceptron of the course: LINEAR -> RELU (L-1 times) -> LINEAR -> SIGMOID.

Parameters ``W1, b1, ..., WL, bL`` are a :class:`~xpopt.flat.FlatDict` (views into one
buffer); gradients ``dW1, db1, ...`` too, and :func:`backward_propagation` can write into a
reused one. Everything runs on the arrays' own module (NumPy or CuPy) and keeps their dtype.
"""

from __future__ import annotations

import copy
import functools
import numbers
import re
from typing import Any, NamedTuple, Sequence

import numpy

from .backend import get_xp, to_device, to_host
from .flat import FlatDict

__all__ = [
    "Caches", "Workspace", "accuracy", "backward_propagation", "compute_cost", "epoch_cost",
    "forward_propagation",
    "gradient_check", "initialize_parameters", "predict",
]


def _check_layer_dims(layer_dims) -> list[int]:
    dims = list(layer_dims) if not isinstance(layer_dims, (str, bytes)) else []
    if len(dims) < 2 or any(isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 1
                            for d in dims):
        raise ValueError(f"layer_dims must list at least two positive integers "
                         f"[n_x, n_1, ..., n_L], got {layer_dims!r}")
    return [int(d) for d in dims]


def parameter_layout(layer_dims: Sequence[int]) -> tuple:
    """``(("W1", (n_1, n_0)), ("b1", (n_1, 1)), ...)``: the keys and shapes, in buffer order."""
    dims = _check_layer_dims(layer_dims)
    layout = []
    for l in range(1, len(dims)):
        layout += [(f"W{l}", (dims[l], dims[l - 1])), (f"b{l}", (dims[l], 1))]
    return tuple(layout)


def initialize_parameters(layer_dims: Sequence[int], seed: int = 3, *,
                          dtype=numpy.float64) -> FlatDict:
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


def host_initial_parameters(layer_dims: Sequence[int], seed: int = 3, *,
                            dtype=numpy.float64) -> FlatDict:
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


_LAYER_KEY = re.compile(r"[Wb]([1-9][0-9]*)")


@functools.lru_cache(maxsize=32)
def _layer_keys(L: int) -> frozenset:
    return frozenset(f"{p}{l}" for l in range(1, L + 1) for p in ("W", "b"))


def _num_layers(parameters: dict) -> int:
    """L, for parameters holding exactly ``W1, b1, ..., WL, bL``; KeyError naming what is
    missing or unexpected otherwise (a missing ``bL`` must not make a smaller network)."""
    n = len(parameters)
    L = n // 2
    if n and not n % 2 and parameters.keys() == _layer_keys(L):
        return L
    keys = set(parameters)
    numbers = [int(m.group(1)) for k in keys
               if isinstance(k, str) and (m := _LAYER_KEY.fullmatch(k))]
    expected = _layer_keys(max(numbers, default=1))
    missing, extra = sorted(expected - keys), sorted(map(str, keys - expected))
    raise KeyError(f"parameters must hold exactly W1, b1, ..., WL, bL: missing {missing}, "
                   f"unexpected {extra}")


def _check_shapes(Ws, bs, n_x: int | None = None) -> None:
    """``W_l`` of shape (n_l, n_{l-1}) and ``b_l`` of shape (n_l, 1), chained from ``n_x``:
    ValueError naming the key (a (1, 1) or (n,) bias would broadcast silently)."""
    previous = n_x
    for l, (W, b) in enumerate(zip(Ws, bs), start=1):
        if len(W.shape) != 2 or (previous is not None and W.shape[1] != previous):
            want = f"(n_{l}, {previous})" if previous is not None else "2-D"
            raise ValueError(f"W{l} has shape {tuple(W.shape)}, expected {want}"
                             + (" (X has that many rows)" if l == 1 else ""))
        if tuple(b.shape) != (W.shape[0], 1):
            raise ValueError(f"b{l} has shape {tuple(b.shape)}, expected ({W.shape[0]}, 1)")
        previous = W.shape[0]


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


class Workspace:
    """Reusable buffers for the passes of one network at one batch width.

    A training loop that keeps one per batch width runs :func:`forward_propagation` and
    :func:`backward_propagation` without allocating: activations, ReLU slopes, the backward
    temporaries and the gradients all live here. Each pass overwrites them, so a result
    (``AL``, caches, grads) is valid until the next pass with the same workspace.
    A forward pass with a workspace leaves NumPy's error state alone (entering
    ``numpy.errstate`` costs more than a small layer): wrap the loop in
    ``numpy.errstate(over="ignore")`` to silence the overflow of ``exp(-z)`` for very
    negative ``z`` (where the sigmoid is 0, correctly).

    Parameters
    ----------
    parameters : FlatDict
        Packed parameters ``W1, b1, ...`` (views are taken once, here).
    m : int
        The batch width (number of columns of ``X``).
    grads : FlatDict, optional
        The gradient buffer to write into; a new one when None. Workspaces of different
        widths may share one.
    """

    def __init__(self, parameters: FlatDict, m: int, grads: FlatDict | None = None):
        if not (isinstance(parameters, FlatDict) and parameters.packed):
            raise TypeError("a Workspace needs packed FlatDict parameters")
        L = _num_layers(parameters)
        xp = get_xp(parameters.flat)
        dtype = parameters.flat.dtype
        self.parameters = parameters
        self.xp = xp
        self.m = int(m)
        self.W = [parameters[f"W{l}"] for l in range(1, L + 1)]
        self.b = [parameters[f"b{l}"] for l in range(1, L + 1)]
        _check_shapes(self.W, self.b)
        self.A = [xp.empty((W.shape[0], m), dtype) for W in self.W]
        self.dZ = [xp.empty((W.shape[0], m), dtype) for W in self.W]
        self.relu_slopes = [xp.empty((W.shape[0], m), dtype) for W in self.W[:-1]]
        self.grads = grads if grads is not None else _new_grads(parameters, xp, dtype)
        self.gW = [self.grads[f"dW{l}"] for l in range(1, L + 1)]
        self.gb = [self.grads[f"db{l}"] for l in range(1, L + 1)]

    def with_output(self, out) -> "Workspace":
        """This workspace, but with the output layer written into ``out`` (shape (n_L, m),
        C-contiguous): a loop can collect an epoch's outputs without copying them."""
        if tuple(out.shape) != tuple(self.A[-1].shape) or not out.flags.c_contiguous:
            raise ValueError(f"out must be C-contiguous of shape {self.A[-1].shape}")
        other = copy.copy(self)
        other.A = [*self.A[:-1], out]
        return other


def _new_grads(parameters: dict, xp, dtype) -> FlatDict:
    if isinstance(parameters, FlatDict):
        layout = tuple(("d" + k, shape) for k, shape in parameters.layout)
    else:
        L = _num_layers(parameters)
        layout = tuple((f"d{k}", tuple(parameters[k].shape)) for l in range(1, L + 1)
                       for k in (f"W{l}", f"b{l}"))
    return FlatDict.empty(layout, xp, dtype)


def forward_propagation(X, parameters: dict, workspace: Workspace | None = None) -> tuple[Any, Caches]:
    """LINEAR -> RELU for layers 1..L-1, LINEAR -> SIGMOID for layer L.

    Parameters
    ----------
    X : ndarray of shape (n_x, m)
    parameters : dict
        ``W_l`` of shape (n_l, n_{l-1}), ``b_l`` of shape (n_l, 1); same module and dtype as X.
    workspace : Workspace, optional
        Buffers to compute into (built for these parameters and this ``m``), for loops.

    Returns
    -------
    AL : ndarray of shape (n_L, m)
        ``sigmoid(W_L A_{L-1} + b_L)``.
    caches : Caches
    """
    if workspace is None:
        xp = get_xp(X, parameters["W1"])
        L = _num_layers(parameters)
        if X.dtype != parameters["W1"].dtype:
            raise TypeError(f"X is {X.dtype} but the parameters are {parameters['W1'].dtype}; "
                            "convert one of them (no silent promotion)")
        Ws = [parameters[f"W{l}"] for l in range(1, L + 1)]
        bs = [parameters[f"b{l}"] for l in range(1, L + 1)]
        _check_shapes(Ws, bs, X.shape[0])
        outs = [None] * L
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


@functools.lru_cache(maxsize=8)
def _clip_bounds(dtype, on_device: bool = False) -> tuple[float, float]:
    """The least positive value and the largest value below 1 of ``dtype`` where it is
    computed: on the host the least subnormal; on the GPU, in float32, the least NORMAL
    value, since CuPy compiles every kernel with ``-ftz=true`` and a subnormal bound would
    be flushed to 0 there (``-log(0)`` is inf, and ``inf * 0`` NaN)."""
    dtype = numpy.dtype(dtype)
    if on_device and dtype == numpy.float32:
        smallest = numpy.finfo(dtype).tiny
    else:
        smallest = numpy.nextafter(dtype.type(0), dtype.type(1))
    return float(smallest), float(1 - numpy.finfo(dtype).epsneg)


def compute_cost(AL, Y):
    """The course's cross-entropy, SUMMED over the batch (the training loop divides by m).

    ``sum(-log(a) * Y - log(1 - a) * (1 - Y))``, with ``a`` clipped into
    ``[s, 1 - eps/2]`` of its dtype (``s`` the least positive subnormal, ``1 - eps/2`` the
    largest value below 1), so that a saturated sigmoid (``a`` exactly 0 or 1, reached
    early in float32) costs a large finite amount (at most about 745 per example in
    float64, 104 in float32) instead of inf or NaN. Every other value, which includes
    every value of the course's finite runs, is left as it is, so the course's costs are
    unchanged bit for bit.

    Parameters
    ----------
    AL : ndarray of shape (1, m)
        Probabilities from :func:`forward_propagation`.
    Y : ndarray of shape (1, m)
        Labels 0 or 1.

    Returns
    -------
    ndarray of shape ()
        On the arrays' device; reading it (``float(cost)``) is the only synchronisation.
    """
    xp = get_xp(AL, Y)
    if AL.shape != Y.shape:
        raise ValueError(f"AL and Y must have the same shape, got {AL.shape} and {Y.shape}")
    logprobs = _logprobs(xp, AL, Y)
    total = numpy.add.reduce(logprobs, axis=None) if xp is numpy else xp.sum(logprobs)
    return xp.asarray(total)


def _logprobs(xp, AL, Y):
    """``-log(a) * Y - log(1 - a) * (1 - Y)`` elementwise, ``a`` clipped (see compute_cost)."""
    low, high = _clip_bounds(AL.dtype, xp is not numpy)
    a = xp.minimum(xp.maximum(AL, low), high)
    return xp.multiply(-xp.log(a), Y) + xp.multiply(-xp.log(1 - a), 1 - Y)


def epoch_cost(AL, Y, mini_batch_size: int):
    """The course's epoch total at once: the sum, batch after batch, of each mini-batch's
    :func:`compute_cost`, from the whole epoch's outputs.

    Bit for bit what a loop of ``total += compute_cost(AL_k, Y_k)`` gives on NumPy (each
    batch summed as ``compute_cost`` sums it, the batch sums added in order), with a
    dozen array operations per epoch instead of per step.

    Parameters
    ----------
    AL : ndarray of shape (1, m)
        The epoch's outputs, batch after batch (``AL_k`` in columns ``k*b:(k+1)*b``).
    Y : ndarray of shape (1, m)
        The labels in the same (shuffled) order.
    mini_batch_size : int
        ``b``; the last batch holds the ``m % b`` remaining columns.

    Returns
    -------
    ndarray of shape ()
    """
    xp = get_xp(AL, Y)
    if AL.shape != Y.shape or AL.shape[0] != 1:
        raise ValueError(f"AL and Y must both have shape (1, m), got {AL.shape} and {Y.shape}")
    logprobs = _logprobs(xp, AL, Y)[0]
    m = logprobs.shape[0]
    full = m // mini_batch_size
    batch_sum = numpy.add.reduce if xp is numpy else xp.sum
    tail = batch_sum(logprobs[full * mini_batch_size:], axis=0) if m % mini_batch_size else None
    if full == 0:
        return xp.asarray(tail)
    sums = batch_sum(logprobs[: full * mini_batch_size].reshape(full, mini_batch_size), axis=1)
    total = xp.cumsum(sums)[-1]  # a running sum, in batch order, as the loop adds them
    return xp.asarray(total if tail is None else total + tail)


def backward_propagation(X, Y, caches: Caches, grads: FlatDict | None = None) -> FlatDict:
    """Gradients of the MEAN cost over the batch with respect to every parameter.

    ``dz_L = (a_L - Y) / m``; ``dW_l = dz_l a_{l-1}^T``; ``db_l = sum(dz_l, axis=1)``;
    ``dz_{l-1} = (W_l^T dz_l) * (a_{l-1} > 0)``.

    Parameters
    ----------
    X : ndarray of shape (n_x, m)
    Y : ndarray of shape (1, m)
    caches : Caches
        From :func:`forward_propagation` on this ``X`` (with its workspace, if it had one:
        then the temporaries and the gradients live there too).
    grads : FlatDict, optional
        A gradient buffer to write into (``dW1, db1, ...``), reused between steps; a new one
        when None (and no workspace).

    Returns
    -------
    grads : FlatDict
        ``dW_l`` of shape (n_l, n_{l-1}), ``db_l`` of shape (n_l, 1).
    """
    activations, parameters, ws = caches
    L = len(activations) - 1
    AL = activations[-1]
    xp = get_xp(X, Y, AL) if ws is None else ws.xp
    if Y.shape != AL.shape:
        raise ValueError(f"Y must have shape {AL.shape}, got {Y.shape}")
    if ws is not None:
        grads, gW, gb, dZs, slopes = ws.grads, ws.gW, ws.gb, ws.dZ, ws.relu_slopes
        Ws = ws.W
    else:
        if grads is None or not (isinstance(grads, FlatDict) and grads.packed):
            grads = _new_grads(parameters, xp, AL.dtype)
        gW = [grads[f"dW{l}"] for l in range(1, L + 1)]
        gb = [grads[f"db{l}"] for l in range(1, L + 1)]
        Ws = [parameters[f"W{l}"] for l in range(1, L + 1)]
        dZs, slopes = [None] * L, [None] * L
    # numpy.add.reduce is numpy.sum without its Python wrapper: the same reduction
    row_sum = numpy.add.reduce if xp is numpy else xp.sum
    m = float(X.shape[1])  # the same division as by the int; a float scalar dispatches faster
    dZ = xp.subtract(AL, Y, out=dZs[L - 1])
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
    return grads


def predict(X, parameters: dict):
    """Labels: 1 where the network's output is strictly above 0.5, else 0.

    Returns
    -------
    ndarray of shape (1, m), dtype int64
    """
    AL, _ = forward_propagation(X, parameters)
    return (AL > 0.5).astype(numpy.int64)


def accuracy(X, Y, parameters: dict) -> float:
    """The fraction of examples where :func:`predict` equals ``Y`` (read to the host).

    ``Y`` must have the predictions' shape (n_L, m): ValueError otherwise (a (m,), (m, 1)
    or (1, 1) ``Y`` would broadcast into a meaningless fraction).
    """
    p = predict(X, parameters)
    xp = get_xp(p, Y)
    if tuple(Y.shape) != tuple(p.shape):
        raise ValueError(f"Y must have the shape of the predictions {tuple(p.shape)}, "
                         f"got {tuple(Y.shape)}")
    return float(xp.mean(p == Y))


def gradient_check(parameters: dict, X, Y, epsilon: float = 1e-7) -> float:
    """Relative difference between backward's gradients and centred differences.

    ``||grad - approx|| / (||grad|| + ||approx||)`` with
    ``approx_i = (J(theta + eps e_i) - J(theta - eps e_i)) / (2 eps)`` and ``J`` the mean
    cost. ``grad`` comes from :func:`backward_propagation` in the parameters' dtype; the
    differences are taken in float64 on the host (in float32 they would be rounding noise),
    so the result measures the backward pass's error in its own precision: below about 1e-7
    for float64 and 1e-6 for float32 in the tests.

    Check away from ReLU kinks: where some ``z`` is exactly 0 (fresh zero biases behind
    units that are zero for an example), the centred difference sees half the slope there
    while backward takes the ReLU's derivative at 0 as 0, and the check reports a
    difference that is not a bug.

    Parameters
    ----------
    parameters : dict
    X : ndarray of shape (n_x, m)
    Y : ndarray of shape (1, m)
    epsilon : float

    Returns
    -------
    float
    """
    if not (isinstance(epsilon, numbers.Real) and epsilon > 0):
        raise ValueError(f"epsilon must be a number > 0, got {epsilon!r}")
    AL, caches = forward_propagation(X, parameters)
    grads = to_host(backward_propagation(X, Y, caches))

    host = FlatDict.pack({k: to_host(v).astype(numpy.float64) for k, v in parameters.items()})
    # gradients paired with the parameters BY KEY: the parameters may come in any key order
    grad = numpy.concatenate([numpy.asarray(grads["d" + k], dtype=numpy.float64).reshape(-1)
                              for k, _ in host.layout])
    X64 = to_host(X).astype(numpy.float64)
    Y64 = to_host(Y).astype(numpy.float64)
    m = X64.shape[1]

    def J() -> float:
        return float(compute_cost(forward_propagation(X64, host)[0], Y64)) / m

    approx = numpy.empty_like(host.flat)
    for i in range(host.flat.size):
        keep = host.flat[i]
        host.flat[i] = keep + epsilon
        plus = J()
        host.flat[i] = keep - epsilon
        minus = J()
        host.flat[i] = keep
        approx[i] = (plus - minus) / (2 * epsilon)
    numerator = numpy.linalg.norm(grad - approx)
    denominator = numpy.linalg.norm(grad) + numpy.linalg.norm(approx)
    return float(numerator / denominator) if denominator > 0 else 0.0
