"""The course's cost: the cross-entropy summed over a batch, the epoch's total, the clip bounds.

Everything runs on the arrays' own module (NumPy or CuPy) and keeps their dtype.
"""

from __future__ import annotations

import functools

import numpy

from .backend import get_xp

__all__ = ["compute_cost", "epoch_cost"]


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


def compute_cost(AL, Y, *, output: str = "sigmoid"):
    """The course's cross-entropy, SUMMED over the batch (the training loop divides by m).

    With ``output="softmax"``: the categorical cross-entropy ``-sum_i log(AL[y_i, i])`` of
    :func:`xpopt.softmax.softmax_cost` (class labels (1, m) or (m,), or one-hot (n_L, m),
    checked: one read back on the GPU). The rest of this page is the sigmoid's.

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
    output : {"sigmoid", "softmax"}
        The output layer that gave ``AL``.

    Returns
    -------
    ndarray of shape ()
        On the arrays' device; reading it (``float(cost)``) is the only synchronisation.
    """
    if output != "sigmoid":
        from .network import check_output  # noqa: PLC0415
        from .softmax import softmax_cost  # noqa: PLC0415

        check_output(output)
        return softmax_cost(AL, Y)
    xp = get_xp(AL, Y)
    if AL.shape != Y.shape:
        labels = (1, AL.shape[1]), (AL.shape[1],)
        hint = (
            " (class labels of a softmax output: pass output='softmax')"
            if AL.ndim == 2 and AL.shape[0] > 1 and Y.shape in labels
            else ""
        )
        raise ValueError(f"AL and Y must have the same shape, got {AL.shape} and {Y.shape}{hint}")
    logprobs = _logprobs(xp, AL, Y)
    total = numpy.add.reduce(logprobs, axis=None) if xp is numpy else xp.sum(logprobs)
    return xp.asarray(total)


def _logprobs(xp, AL, Y):
    """``-log(a) * Y - log(1 - a) * (1 - Y)`` elementwise, ``a`` clipped (see compute_cost)."""
    low, high = _clip_bounds(AL.dtype, xp is not numpy)
    a = xp.maximum(AL, low)
    xp.minimum(a, high, out=a)
    if Y.dtype != AL.dtype:  # promoted: the operations as written, no output buffers
        return xp.multiply(-xp.log(a), Y) + xp.multiply(-xp.log(1 - a), 1 - Y)
    # The same operations in the same order, written into two temporaries
    first = xp.log(a)
    xp.negative(first, out=first)
    xp.multiply(first, Y, out=first)  # -log(a) * Y
    xp.subtract(1, a, out=a)
    xp.log(a, out=a)
    xp.negative(a, out=a)
    xp.multiply(a, 1 - Y, out=a)  # -log(1 - a) * (1 - Y)
    return xp.add(first, a, out=first)


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
    tail = batch_sum(logprobs[full * mini_batch_size :], axis=0) if m % mini_batch_size else None
    if full == 0:
        return xp.asarray(tail)
    sums = batch_sum(logprobs[: full * mini_batch_size].reshape(full, mini_batch_size), axis=1)
    total = xp.cumsum(sums)[-1]  # a running sum, in batch order, as the loop adds them
    return xp.asarray(total if tail is None else total + tail)
