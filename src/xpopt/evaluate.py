"""What a trained network is judged by: predictions, accuracy, and the gradient check.

The passes are looked up on :mod:`xpopt.network` at each call (a test may replace one there).
"""

from __future__ import annotations

import numbers

import numpy

from . import network
from .backend import get_xp, to_host
from .cost import compute_cost
from .flat import FlatDict
from .softmax import class_labels, predict_classes

__all__ = ["accuracy", "gradient_check", "predict"]


def predict(X, parameters: dict, *, output: str = "sigmoid", probabilities: bool = False):
    """Labels: 1 where the network's output is strictly above 0.5, else 0; for a softmax
    output, the most probable class of each example.

    Parameters
    ----------
    X : ndarray of shape (n_x, m)
    parameters : dict
    output : {"sigmoid", "softmax"}
    probabilities : bool
        Return the network's output ``AL`` (n_L, m) instead: the sigmoid's probabilities,
        or the softmax's class probabilities (each column summing to 1).

    Returns
    -------
    ndarray of shape (1, m), dtype int64
        0 / 1 (sigmoid: ``(n_L, m)`` with several output units), or class indices 0..n_L-1
        (softmax).
    """
    AL, _ = network.forward_propagation(X, parameters, output=output)
    if probabilities:
        return AL
    if output == "softmax":
        return predict_classes(AL)
    return (AL > 0.5).astype(numpy.int64)


def accuracy(X, Y, parameters: dict, *, output: str = "sigmoid") -> float:
    """The fraction of examples classified right (read to the host).

    One output unit: where :func:`predict` equals ``Y`` (labels (1, m) 0 / 1; ValueError for
    another shape: a (m,), (m, 1) or (1, 1) ``Y`` would broadcast into a meaningless
    fraction). Several output units (softmax or sigmoid): the most probable class (argmax of
    the outputs) against the true class, from class labels (1, m) or (m,) or one-hot labels
    (n_L, m), checked (:func:`xpopt.softmax.check_labels`) -- one figure per example, never
    one per output unit.
    """
    AL, _ = network.forward_propagation(X, parameters, output=output)
    if AL.shape[0] > 1:
        truth = class_labels(Y, AL.shape[0])
        if truth.shape[1] != AL.shape[1]:
            raise ValueError(f"Y has {truth.shape[1]} examples, X has {AL.shape[1]}")
        xp = get_xp(AL, truth)
        return float(xp.mean(predict_classes(AL) == truth))
    p = (AL > 0.5).astype(numpy.int64)
    xp = get_xp(p, Y)
    if tuple(Y.shape) != tuple(p.shape):
        raise ValueError(
            f"Y must have the shape of the predictions {tuple(p.shape)}, got {tuple(Y.shape)}"
        )
    return float(xp.mean(p == Y))


def gradient_check(
    parameters: dict, X, Y, epsilon: float = 1e-7, *, output: str = "sigmoid"
) -> float:
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
        Or, for a softmax output, class labels or one-hot labels.
    epsilon : float
    output : {"sigmoid", "softmax"}

    Returns
    -------
    float
    """
    value: object = epsilon  # checked as whatever was passed (mypy: float is no numbers.Real)
    if not (isinstance(value, numbers.Real) and float(value) > 0):
        raise ValueError(f"epsilon must be a number > 0, got {epsilon!r}")
    AL, caches = network.forward_propagation(X, parameters, output=output)
    grads = to_host(network.backward_propagation(X, Y, caches, output=output))

    host = FlatDict.pack({k: to_host(v).astype(numpy.float64) for k, v in parameters.items()})
    # gradients paired with the parameters BY KEY: the parameters may come in any key order
    grad = numpy.concatenate(
        [numpy.asarray(grads["d" + k], dtype=numpy.float64).reshape(-1) for k, _ in host.layout]
    )
    X64 = to_host(X).astype(numpy.float64)
    Y64 = to_host(Y) if output == "softmax" else to_host(Y).astype(numpy.float64)
    m = X64.shape[1]

    def J() -> float:
        AL = network.forward_propagation(X64, host, output=output)[0]
        return float(compute_cost(AL, Y64, output=output)) / m

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
