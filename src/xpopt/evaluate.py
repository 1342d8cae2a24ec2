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

__all__ = ["accuracy", "gradient_check", "predict"]


def predict(X, parameters: dict):
    """Labels: 1 where the network's output is strictly above 0.5, else 0.

    Returns
    -------
    ndarray of shape (1, m), dtype int64
    """
    AL, _ = network.forward_propagation(X, parameters)
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
    AL, caches = network.forward_propagation(X, parameters)
    grads = to_host(network.backward_propagation(X, Y, caches))

    host = FlatDict.pack({k: to_host(v).astype(numpy.float64) for k, v in parameters.items()})
    # gradients paired with the parameters BY KEY: the parameters may come in any key order
    grad = numpy.concatenate([numpy.asarray(grads["d" + k], dtype=numpy.float64).reshape(-1)
                              for k, _ in host.layout])
    X64 = to_host(X).astype(numpy.float64)
    Y64 = to_host(Y).astype(numpy.float64)
    m = X64.shape[1]

    def J() -> float:
        return float(compute_cost(network.forward_propagation(X64, host)[0], Y64)) / m

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
