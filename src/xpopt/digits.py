"""Real data beyond the moons: scikit-learn's bundled 8x8 handwritten digits, split once.

``pip install 'xpopt[digits]'`` installs scikit-learn, which ships the data set (1797
images of the digits 0-9, 8x8 pixels of 0..16; no download).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy

from .backend import to_device

__all__ = ["load_digits", "stratified_split"]

_HINT = (
    "xpopt.load_digits needs scikit-learn, which ships the digits data set: "
    "pip install 'xpopt[digits]' (or pip install scikit-learn)"
)


def stratified_split(
    labels, test_size: object = 0.25, seed: int = 0
) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Train and test column indices with each class in the same proportion in both.

    The split, exactly (so it does not depend on any library's version):

    1. ``n_test = ceil(test_size * m)`` for a fraction, or ``test_size`` itself for an int.
    2. Class ``c`` (of ``n_c`` examples) gets ``floor(n_test * n_c / m)`` test places; the
       places left over go one each to the classes with the largest remainders
       ``n_test * n_c / m - floor(...)`` (ties: the smaller class label first).
    3. ``rng = numpy.random.RandomState(seed)``; for each class in increasing order, its
       indices (in data order) are permuted with ``rng.permutation`` and the first of them
       are its test examples.
    4. Both index lists are returned sorted (the data's own order).

    Parameters
    ----------
    labels : array_like of shape (m,)
        Integer class labels (host).
    test_size : float in (0, 1) or int in [1, m - 1]
    seed : int

    Returns
    -------
    train, test : ndarray of int64
    """
    y = numpy.asarray(labels).reshape(-1)
    m = y.size
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real):
        raise TypeError(f"test_size must be a fraction in (0, 1) or a count, got {test_size!r}")
    if isinstance(test_size, numbers.Integral):
        n_test = int(test_size)
    elif 0 < float(test_size) < 1:
        n_test = math.ceil(float(test_size) * m)
    else:
        raise ValueError(f"test_size must be a fraction in (0, 1) or a count, got {test_size!r}")
    if not 1 <= n_test <= m - 1:
        raise ValueError(
            f"test_size gives {n_test} test examples of {m}; both parts must hold at least one"
        )
    classes, counts = numpy.unique(y, return_counts=True)
    share = n_test * counts / m
    places = numpy.floor(share).astype(numpy.int64)
    left = n_test - int(places.sum())
    order = sorted(range(classes.size), key=lambda i: (-(share[i] - places[i]), i))
    for i in order[:left]:
        places[i] += 1
    rng = numpy.random.RandomState(seed)
    test = []
    for c, k in zip(classes, places, strict=True):
        members = numpy.flatnonzero(y == c)
        test.append(members[rng.permutation(members.size)[:k]])
    test_idx = numpy.sort(numpy.concatenate(test)).astype(numpy.int64)
    train_idx = numpy.setdiff1d(numpy.arange(m), test_idx).astype(numpy.int64)
    return train_idx, test_idx


def load_digits(
    test_size: float | int = 0.25, seed: int = 0, *, dtype=numpy.float64
) -> tuple[Any, Any, Any, Any]:
    """scikit-learn's 8x8 digits, scaled to [0, 1], examples as columns, split stratified.

    The 1797 images (about 180 of each digit) as columns of 64 pixels, each pixel divided
    by 16 (the data's maximum). The split is :func:`stratified_split` (fixed by ``seed``,
    documented there): with the defaults, 1347 training and 450 test examples.

    Parameters
    ----------
    test_size : float in (0, 1) or int
        The held-out share (or count).
    seed : int
        Seeds the split only (the data are fixed).
    dtype : float64 or float32
        Of X; the labels are int64.

    Returns
    -------
    X_train : ndarray of shape (64, m_train)
    Y_train : ndarray of shape (1, m_train), int64 labels 0..9
    X_test : ndarray of shape (64, m_test)
    Y_test : ndarray of shape (1, m_test)
        Born on the configured backend (:func:`xpopt.to_device`).

    Raises
    ------
    ImportError
        scikit-learn is not installed (the message says how to install it).
    """
    dtype = numpy.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"dtype must be a floating type, got {dtype}")
    try:
        # scikit-learn ships no type information (an optional extra, imported when asked for)
        from sklearn.datasets import (  # type: ignore[import-untyped]  # noqa: PLC0415
            load_digits as _sklearn_digits,
        )
    except ImportError as exc:
        raise ImportError(_HINT) from exc
    data = _sklearn_digits()
    images = numpy.asarray(data.data, dtype=numpy.float64) / 16.0
    labels = numpy.asarray(data.target, dtype=numpy.int64)
    train, test = stratified_split(labels, test_size, seed)
    X = numpy.ascontiguousarray(images.T, dtype=dtype)  # (64, 1797)
    parts = (
        numpy.ascontiguousarray(X[:, train]),
        labels[train].reshape(1, -1),
        numpy.ascontiguousarray(X[:, test]),
        labels[test].reshape(1, -1),
    )
    return tuple(to_device(parts))
