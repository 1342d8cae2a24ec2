"""The moons data set and the mini-batch partitioner, as in the course.

Layout: examples are COLUMNS. ``X`` has shape (n_x, m) and ``Y`` shape (1, m).
"""

from __future__ import annotations

import math
import numbers
import threading
from collections.abc import Iterator
from typing import Any

import numpy

from .backend import get_xp, to_device, to_host

__all__ = [
    "MiniBatcher",
    "check_dataset",
    "iterate_minibatches",
    "load_moons",
    "random_mini_batches",
]


# The checks of arguments take them as objects (whatever a caller passed): mypy sees no
# subclass of int in numbers.Integral (nor of float in numbers.Real), while Python registers
# them, so an isinstance on the annotated parameter would read as always False to it.
def _is_integer(value: object) -> bool:
    """Any ``numbers.Integral`` (NumPy integers too) but not a bool."""
    return not isinstance(value, bool) and isinstance(value, numbers.Integral)


def _is_real(value: object) -> bool:
    """Any ``numbers.Real`` (NumPy floats and integers too)."""
    return isinstance(value, numbers.Real)


def load_moons(
    n_samples: int = 300, noise: float | None = 0.2, seed: int = 3, *, dtype=numpy.float64
) -> tuple[Any, Any]:
    """The course's ``load_dataset()``: two interleaving half circles, born on the backend.

    Bit for bit ``np.random.seed(seed); sklearn.datasets.make_moons(n_samples, noise=noise)``,
    transposed, computed here with a local ``RandomState`` (global state is untouched).

    Returns
    -------
    X : ndarray of shape (2, n_samples)
    Y : ndarray of shape (1, n_samples)
        Labels 0.0 (outer moon) and 1.0 (inner moon), of ``dtype``.
    """
    if not _is_integer(n_samples) or n_samples < 2:
        raise ValueError(f"n_samples must be an integer >= 2, got {n_samples!r}")
    if noise is not None and (not _is_real(noise) or not math.isfinite(noise) or noise < 0):
        raise ValueError(f"noise must be None or a finite number >= 0, got {noise!r}")
    dtype = numpy.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"dtype must be a floating type, got {dtype}")
    rng = numpy.random.RandomState(seed)
    n_out = int(n_samples) // 2
    n_in = int(n_samples) - n_out
    t_out = numpy.linspace(0, numpy.pi, n_out)
    t_in = numpy.linspace(0, numpy.pi, n_in)
    points = numpy.vstack(
        [
            numpy.append(numpy.cos(t_out), 1 - numpy.cos(t_in)),
            numpy.append(numpy.sin(t_out), 1 - numpy.sin(t_in) - 0.5),
        ]
    ).T
    labels = numpy.hstack([numpy.zeros(n_out), numpy.ones(n_in)])
    order = numpy.arange(n_samples)
    rng.shuffle(order)  # make_moons' shuffle draws first, then the noise
    points, labels = points[order], labels[order]
    if noise is not None:
        points += rng.normal(scale=noise, size=points.shape)
    X = numpy.ascontiguousarray(points.T, dtype=dtype)
    Y = labels.reshape(1, n_samples).astype(dtype)
    return to_device(X), to_device(Y)


def _check_shapes(X, Y) -> tuple[int, Any]:
    """Both arrays of one module, 2-D, the same number (>= 1) of columns; returns ``m`` and
    the arrays' module."""
    for name, a in (("X", X), ("Y", Y)):
        if a is None or not hasattr(a, "ndim"):
            raise TypeError(f"{name} must be an array, got {type(a).__name__}")
    xp = get_xp(X, Y)  # TypeError naming both when NumPy and CuPy are mixed, or for non-arrays
    for name, a in (("X", X), ("Y", Y)):
        if a.ndim != 2:
            raise ValueError(f"{name} must be 2-D with examples as columns, got shape {a.shape}")
    if X.shape[1] != Y.shape[1]:
        raise ValueError(
            f"X and Y have different numbers of examples (columns): X {X.shape[1]}, Y {Y.shape[1]}"
        )
    if X.shape[1] == 0:
        raise ValueError("X and Y have no examples (zero columns)")
    return X.shape[1], xp


def _check_batch_inputs(X, Y, mini_batch_size) -> int:
    return _checked_batches(X, Y, mini_batch_size)[0]


def _checked_batches(X, Y, mini_batch_size) -> tuple[int, Any]:
    m, xp = _check_shapes(X, Y)
    if (
        isinstance(mini_batch_size, bool)
        or not isinstance(mini_batch_size, numbers.Integral)
        or mini_batch_size < 1
    ):
        raise ValueError(f"mini_batch_size must be a positive integer, got {mini_batch_size!r}")
    return m, xp


def check_dataset(X, Y) -> int:
    """Refuse training data that would train to a wrong answer; returns ``m``.

    ``X`` (n_x, m) and ``Y`` (1, m): arrays of one module (NumPy or CuPy), ``X`` floating
    point, both in native byte order, all values finite, labels in {0, 1} (floating, integer
    or boolean). :func:`~xpopt.train` calls this once per call, before it touches an array;
    the partitioners (:func:`random_mini_batches`, :class:`MiniBatcher`) only check shapes:
    they shuffle whatever they are given.

    The values are checked with one pass on the data's device and ONE boolean read back
    (the details of a fault are computed only to name it).

    Raises
    ------
    TypeError
        Not arrays, NumPy mixed with CuPy, ``X`` not floating point, ``Y`` not numeric,
        or a non-native byte order.
    ValueError
        Shapes, a NaN or infinity, labels outside {0, 1}.
    """
    m, xp = _check_shapes(X, Y)
    if Y.shape[0] != 1:
        raise ValueError(f"Y must have shape (1, {m}) (one row of labels), got {Y.shape}")
    if X.dtype.kind != "f":
        raise TypeError(f"X must be floating point (float64 or float32), got {X.dtype}")
    if Y.dtype.kind not in "fiub":
        raise TypeError(f"Y must hold numeric labels 0 and 1, got dtype {Y.dtype}")
    for name, a in (("X", X), ("Y", Y)):
        if not a.dtype.isnative:
            raise TypeError(
                f"{name} has a non-native byte order ({a.dtype.str}); convert it "
                f"with {name}.astype({name}.dtype.newbyteorder('='))"
            )
    finite_X = xp.isfinite(X).all()
    labels_ok = ((Y == 0) | (Y == 1)).all()
    if bool(finite_X & labels_ok):  # the one read
        return m
    if not bool(finite_X):
        bad = int(xp.count_nonzero(~xp.isfinite(X)))
        raise ValueError(f"X is not finite: {bad} NaN or infinite value(s)")
    if Y.dtype.kind == "f" and not bool(xp.isfinite(Y).all()):
        raise ValueError("Y is not finite: labels must be 0 or 1, got NaN or infinity")
    values = to_host(xp.unique(Y))
    raise ValueError(
        f"labels must be in {{0, 1}} (binary cross-entropy), got values "
        f"{values[:10].tolist()}{' ...' if values.size > 10 else ''}"
    )


_local = threading.local()


def _thread_rng() -> numpy.random.RandomState:
    """This thread's RandomState for the course's shuffles, made once (making one costs
    80 us, re-seeding it 1 us); every use seeds it first, so nothing carries over."""
    rng = getattr(_local, "rng", None)
    if rng is None:
        rng = _local.rng = numpy.random.RandomState()
    return rng


def _permutation(m: int, seed, rng: numpy.random.RandomState | None = None) -> numpy.ndarray:
    """The course's shuffle: ``np.random.seed(seed); np.random.permutation(m)``, without
    touching the global stream. Re-seeding a kept ``rng`` gives the same stream as a new
    ``RandomState(seed)`` at a twentieth of the cost."""
    rng = rng if rng is not None else _thread_rng()
    rng.seed(seed)
    return rng.permutation(m)


def random_mini_batches(X, Y, mini_batch_size: int = 64, seed: int = 0) -> list[tuple[Any, Any]]:
    """The course's partitioner: shuffle the columns, cut into mini-batches.

    Parameters
    ----------
    X : ndarray of shape (n_x, m)
    Y : ndarray of shape (1, m)
        NumPy or CuPy, on the same device.
    mini_batch_size : int
        ``floor(m / mini_batch_size)`` full batches, then the rest as one smaller batch.
        A size larger than ``m`` gives one batch.
    seed : int
        Seeds the permutation, drawn on the host, so both backends see identical batches.

    Returns
    -------
    list of (ndarray of shape (n_x, b), ndarray of shape (1, b))
        Views into one shuffled copy of ``X`` and of ``Y`` (one gather each on the device).
    """
    return list(MiniBatcher(X, Y, mini_batch_size).epoch(seed))


class MiniBatcher:
    """Mini-batches for a training loop: one gather per epoch into reused buffers.

    Parameters
    ----------
    X : ndarray of shape (n_x, m)
    Y : ndarray of shape (1, m)
    mini_batch_size : int
    drop_last : bool
        Leave out the last, smaller batch when ``m % mini_batch_size != 0``.

    Notes
    -----
    The batches of one epoch are views into buffers that the next epoch overwrites:
    copy a batch to keep it.
    """

    def __init__(self, X, Y, mini_batch_size: int = 64, *, drop_last: bool = False):
        self.m, self._xp = _checked_batches(X, Y, mini_batch_size)
        self.X, self.Y = X, Y
        self.mini_batch_size = int(mini_batch_size)
        self.drop_last = bool(drop_last)
        self._buffers: tuple[Any, Any] | None = None

    def __len__(self) -> int:
        full = self.m // self.mini_batch_size
        return full if self.drop_last or self.m % self.mini_batch_size == 0 else full + 1

    def bounds(self) -> list[tuple[int, int]]:
        """``(lo, hi)``: the columns of each mini-batch of a shuffled epoch, in order."""
        size, m = self.mini_batch_size, self.m
        full = m // size
        out = [(k * size, (k + 1) * size) for k in range(full)]
        if m % size and not self.drop_last:
            out.append((full * size, m))
        return out

    def shuffled(self, seed) -> tuple[Any, Any]:
        """``X`` and ``Y`` with their columns permuted by the course's seeded permutation."""
        xp = self._xp
        if self._buffers is None:
            self._buffers = (
                xp.empty(self.X.shape, self.X.dtype),
                xp.empty(self.Y.shape, self.Y.dtype),
            )
        perm = _permutation(self.m, seed)
        sx, sy = self._buffers
        if xp is numpy:  # mode="clip" writes straight into out; "raise" would buffer it
            numpy.take(self.X, perm, axis=1, out=sx, mode="clip")
            numpy.take(self.Y, perm, axis=1, out=sy, mode="clip")
        else:
            perm = xp.asarray(perm)  # one host-to-device copy of m indices per epoch
            xp.take(self.X, perm, axis=1, out=sx)
            xp.take(self.Y, perm, axis=1, out=sy)
        return sx, sy

    @property
    def shuffled_Y(self):
        """The labels of the latest :meth:`shuffled` epoch, in its order (a reused buffer)."""
        return None if self._buffers is None else self._buffers[1]

    def epoch(self, seed) -> Iterator[tuple[Any, Any]]:
        """Yield ``(mini_batch_X, mini_batch_Y)`` views of one shuffled epoch."""
        sx, sy = self.shuffled(seed)
        for lo, hi in self.bounds():
            yield sx[:, lo:hi], sy[:, lo:hi]


def iterate_minibatches(
    X, Y, mini_batch_size: int = 64, seed: int = 0, *, drop_last: bool = False
) -> Iterator[tuple[Any, Any]]:
    """The batches of :func:`random_mini_batches`, yielded one by one (no list is built)."""
    return MiniBatcher(X, Y, mini_batch_size, drop_last=drop_last).epoch(seed)
