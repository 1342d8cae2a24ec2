"""Which module an array belongs to, and moving arrays between host and device.

Part of :mod:`xpopt.backend`'s public face (``get_xp``, ``to_device``, ...); CuPy itself is
never imported here: a CuPy array can only exist once ``cupy`` is in ``sys.modules``.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy

from .backend import Choice, _backend_module, _check_name, _resolve, get_backend, requested


def is_cupy_array(x: Any) -> bool:
    """True for an array of the ``cupy`` module in use, decided without importing CuPy.

    No CuPy array can exist before ``cupy`` was imported, so an absent module means False.
    The module in ``sys.modules`` decides: the real CuPy, or the stand-in of
    :mod:`xpopt.testing` while it is active.
    """
    cupy = sys.modules.get("cupy")
    kind = getattr(cupy, "ndarray", None)
    return kind is not None and isinstance(x, kind)


def get_xp(*arrays: Any):
    """The array module (``numpy`` or ``cupy``) of the arrays given.

    Python scalars and ``None`` are ignored. With no arrays, the configured backend's module.

    Raises
    ------
    TypeError
        If NumPy and CuPy arrays are mixed, or an argument is not an array.
    """
    found_numpy = found_cupy = False
    for a in arrays:
        kind = type(a)
        if kind is numpy.ndarray:  # the common case first: this runs several times a step
            found_numpy = True
        elif a is None or kind in (bool, int, float, complex):
            continue
        elif isinstance(a, (numpy.ndarray, numpy.generic)):
            found_numpy = True
        elif is_cupy_array(a):
            found_cupy = True
        else:
            raise TypeError(f"expected NumPy or CuPy arrays, got {kind.__module__}.{kind.__name__}")
    if found_numpy and found_cupy:
        kinds = ", ".join(
            f"{i}: {'cupy' if is_cupy_array(a) else 'numpy'}"
            for i, a in enumerate(arrays)
            if a is not None and type(a) not in (bool, int, float, complex)
        )
        raise TypeError(
            f"NumPy and CuPy arrays are mixed (arguments {kinds}): numpy.ndarray and "
            "cupy.ndarray cannot be combined. Put them on one device first: "
            "xpopt.to_device(x) moves to the GPU, xpopt.to_host(x) to the CPU."
        )
    if found_cupy:
        return sys.modules["cupy"]
    if found_numpy:
        return numpy
    return _backend_module(get_backend())


def _map_arrays(x: Any, fn, what: str):
    if x is None or isinstance(x, (bool, int, float, complex, str)):
        return x
    if hasattr(x, "map_buffer"):  # a FlatDict: move its one buffer, rebuild the views
        return x.map_buffer(fn)
    if isinstance(x, dict):
        return type(x)((k, _map_arrays(v, fn, what)) for k, v in x.items())
    if isinstance(x, (list, tuple)):
        moved = [_map_arrays(v, fn, what) for v in x]
        return type(x)(moved) if not hasattr(x, "_fields") else type(x)(*moved)
    if isinstance(x, (numpy.ndarray, numpy.generic)) or is_cupy_array(x):
        return fn(x)
    raise TypeError(
        f"{what}: cannot move a {type(x).__name__}; expected arrays, dicts, lists, tuples"
    )


def to_host(x: Any) -> Any:
    """NumPy copies of CuPy arrays (also inside dicts, lists, tuples); NumPy arrays as they are."""

    def one(a):
        return a.get() if is_cupy_array(a) else a

    return _map_arrays(x, one, "to_host")


def to_device(x: Any, backend: str | None = None) -> Any:
    """Arrays moved onto the backend's device (default: the configured backend).

    ``"cuda"`` gives CuPy arrays, ``"cpu"`` NumPy arrays; an array already there is
    returned as it is, without a copy. Works inside dicts, lists and tuples.
    """
    name = (
        _resolve(Choice(_check_name(backend, "to_device"), requested().strict))
        if backend
        else get_backend()
    )
    if name == "cpu":
        return to_host(x)
    cupy = _backend_module("cuda")
    return _map_arrays(x, lambda a: a if is_cupy_array(a) else cupy.asarray(a), "to_device")


def to_module(x: Any, xp) -> Any:
    """Arrays moved onto the device of the array module ``xp`` (``numpy`` or ``cupy``).

    Library code uses this to put what it makes next to the data it was given, whatever
    backend is configured: ``to_module(p, get_xp(X))``. Arrays already there are returned
    as they are.
    """
    if xp is numpy:
        return to_host(x)
    return _map_arrays(x, lambda a: a if is_cupy_array(a) else xp.asarray(a), "to_module")
