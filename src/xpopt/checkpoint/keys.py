"""Arrays read and written BY KEY (``W1`` <-> ``dW1``) whatever the dicts are; the data
fingerprint."""

from __future__ import annotations

import hashlib

import numpy

from ..backend import get_xp, is_cupy_array, to_host
from ..flat import FlatDict


def _is_array(a) -> bool:
    return isinstance(a, numpy.ndarray) or is_cupy_array(a)


def _run_layout(parameters) -> tuple:
    """``((key, shape), ...)`` of the parameters: a FlatDict's layout (rebound or not), else
    the dict's keys and its arrays' shapes."""
    if not isinstance(parameters, dict) or not parameters:
        raise TypeError(
            f"parameters must be a non-empty dict of arrays, got {type(parameters).__name__}"
        )
    if isinstance(parameters, FlatDict):
        return tuple(parameters.layout)
    for k, a in parameters.items():
        if not _is_array(a):
            raise TypeError(
                f"parameters[{k!r}] must be a NumPy or CuPy array, got {type(a).__name__}"
            )
    return tuple((str(k), tuple(a.shape)) for k, a in parameters.items())


def _by_key(d, layout, prefix: str, what: str) -> tuple[list, list]:
    """The arrays of ``d`` for ``layout``'s keys (``prefix + key``), in layout order, and
    the problems found (missing or extra keys, non-arrays, wrong shapes)."""
    if not isinstance(d, dict):
        return [], [f"{what} must be a dict of arrays, got {type(d).__name__}"]
    want = [prefix + k for k, _ in layout]
    missing, extra = sorted(set(want) - set(d)), sorted(map(str, set(d) - set(want)))
    if missing or extra:
        return [], [
            f"{what} keys differ from the parameters' (missing {missing}, unexpected {extra})"
        ]
    arrays, problems = [], []
    for key, (_, shape) in zip(want, layout, strict=True):
        a = d[key]
        if not _is_array(a):
            problems.append(f"{what}[{key!r}] is a {type(a).__name__}, not an array")
        elif tuple(a.shape) != tuple(shape):
            problems.append(f"{what}[{key!r}] has shape {tuple(a.shape)}, expected {tuple(shape)}")
        arrays.append(a)
    return arrays, problems


def _packed_as(d, layout, prefix: str) -> bool:
    """True when ``d`` is a packed FlatDict whose buffer is ``layout`` in this order."""
    return (
        isinstance(d, FlatDict)
        and d.packed
        and tuple(d.layout) == tuple((prefix + k, tuple(s)) for k, s in layout)
    )


def _host_by_key(d, arrays, layout, prefix: str) -> numpy.ndarray:
    """One host vector of ``d``'s arrays in ``layout`` order (one device read)."""
    if _packed_as(d, layout, prefix):
        return numpy.asarray(to_host(d.flat))
    xp = get_xp(*arrays)
    return numpy.asarray(to_host(xp.concatenate([xp.ravel(a) for a in arrays])))


def data_fingerprint(X, Y) -> dict:
    """Shapes, dtypes and a SHA-256 of the host bytes of (X, Y), to refuse resuming a run on
    other data. Computed once per training call (on CuPy: one device-to-host read of each)."""
    h = hashlib.sha256()
    for a in (X, Y):
        host = numpy.ascontiguousarray(to_host(a))
        h.update(f"{host.dtype.str}{host.shape};".encode())
        # .data: the bytes as a memoryview (hashlib's Buffer; ndarray is one only from 3.12)
        h.update(host.reshape(-1).view(numpy.uint8).data if host.size else b"")
    return {
        "shapes": [list(X.shape), list(Y.shape)],
        "dtypes": [str(X.dtype), str(Y.dtype)],
        "sha256": h.hexdigest(),
    }
