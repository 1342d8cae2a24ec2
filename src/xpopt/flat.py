"""One contiguous buffer with named views: how parameters, gradients and state are stored.

A :class:`FlatDict` is an ordinary ``dict`` (``W1, b1, ..., WL, bL`` or ``dW1, ...``) whose
values are views into ONE 1-D array, ``.flat``. Writing into a view (``p["W1"][...] = x``,
``p["W1"] -= lr * g``) writes into the buffer, so an optimizer that sees packed dicts updates
the whole model in one pass (on the GPU: one kernel launch).

Rebinding a key the course's way (``parameters["W1"] = parameters["W1"] - lr * dW1``) stays
correct: the dict holds the new array and is no longer *packed*, so optimizers fall back to
one update per array (one launch per array on the GPU) until :meth:`FlatDict.repack` copies
the arrays back into a buffer. A step bound earlier (:meth:`xpopt.Optimizer.bind`) sees the
rebinding at its next call: every change of which arrays a FlatDict holds (``d[k] = ...``,
``del``, ``update``, ``|=``, ``pop``, ``setdefault``, ``clear``, ``repack``) counts in
:data:`EDITS`, which a bound step compares in O(1).
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from typing import Any

import numpy

from .backend import get_xp

__all__ = ["EDITS", "FlatDict", "Layout"]

Layout = tuple  # tuple[tuple[str, tuple[int, ...]], ...]: (key, shape) in buffer order

# How many times a FlatDict's keys were rebound, added or removed (any FlatDict; also bumped
# when an optimizer state's dict is replaced). A bound update step that sees the same count
# as at its previous step knows, in O(1), that its FlatDicts still hold the same arrays.
EDITS = [0]


def _size(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


class FlatDict(dict):
    """A dict of named array views into one contiguous 1-D buffer.

    Parameters
    ----------
    flat : ndarray of shape (n,)
        The buffer, NumPy or CuPy; ``n`` is the total number of elements of the layout.
    layout : tuple of (str, tuple of int)
        The keys and the shapes of their views, in buffer order.
    """

    __slots__ = ("flat", "layout", "_views")

    def __init__(self, flat: Any, layout: Iterable[tuple[str, Sequence[int]]]):
        layout = tuple((str(k), tuple(int(d) for d in s)) for k, s in layout)
        total = sum(_size(s) for _, s in layout)
        if getattr(flat, "ndim", None) != 1 or flat.shape[0] != total:
            raise ValueError(
                f"flat buffer must have shape ({total},), got {getattr(flat, 'shape', None)}"
            )
        super().__init__()
        self.flat = flat
        self.layout = layout
        offset = 0
        for key, shape in layout:
            n = _size(shape)
            dict.__setitem__(self, key, flat[offset : offset + n].reshape(shape))
            offset += n
        self._views = tuple(dict.values(self))

    # ------------------------------------------------------------------ rebinding
    # Every way of changing which arrays the dict holds counts in EDITS, so that a bound
    # update can tell in O(1) that no FlatDict anywhere was rebound since its last step.
    def __setitem__(self, key, value):
        dict.__setitem__(self, key, value)
        EDITS[0] += 1

    def __delitem__(self, key):
        dict.__delitem__(self, key)
        EDITS[0] += 1

    # mypy wants an in-place operator overloaded as dict.__or__ is (by generic key and value
    # types): this one takes what dict.update takes, and returns self
    def __ior__(self, other):  # type: ignore[misc]
        dict.update(self, other)
        EDITS[0] += 1
        return self

    def update(self, *args, **kwargs):
        dict.update(self, *args, **kwargs)
        EDITS[0] += 1

    def setdefault(self, key, default=None):
        EDITS[0] += 1
        return dict.setdefault(self, key, default)

    def pop(self, *args):
        EDITS[0] += 1
        return dict.pop(self, *args)

    def popitem(self):
        EDITS[0] += 1
        return dict.popitem(self)

    def clear(self):
        dict.clear(self)
        EDITS[0] += 1

    # ------------------------------------------------------------------ constructors
    @classmethod
    def empty(cls, layout, xp=numpy, dtype=numpy.float64, fill: float | None = None) -> FlatDict:
        """A new FlatDict on ``xp`` (``numpy`` or ``cupy``), zero- or ``fill``-filled if asked."""
        n = sum(_size(s) for _, s in layout)
        flat = xp.empty(n, dtype=dtype) if fill is None else xp.full(n, fill, dtype=dtype)
        return cls(flat, layout)

    @classmethod
    def pack(cls, arrays: dict, keys: Sequence[str] | None = None) -> FlatDict:
        """Copy a dict of arrays (all NumPy or all CuPy, one dtype) into a new FlatDict."""
        keys = list(arrays) if keys is None else list(keys)
        values = [arrays[k] for k in keys]
        xp = get_xp(*values)
        dtypes = {v.dtype for v in values}
        if len(dtypes) > 1:
            raise TypeError(f"cannot pack arrays of different dtypes {sorted(map(str, dtypes))}")
        dtype = dtypes.pop() if dtypes else numpy.float64
        out = cls.empty([(k, v.shape) for k, v in zip(keys, values, strict=True)], xp, dtype)
        for k, v in zip(keys, values, strict=True):
            dict.__getitem__(out, k)[...] = v
        return out

    def zeros_like(self, prefix: str = "") -> FlatDict:
        """Zeros of the same layout, device and dtype; keys get ``prefix`` (``"d"``: grads)."""
        xp = get_xp(self.flat)
        layout = tuple((prefix + k, s) for k, s in self.layout)
        return FlatDict(xp.zeros_like(self.flat), layout)

    # ----------------------------------------------------------------------- queries
    @property
    def packed(self) -> bool:
        """True while every key still holds its view into ``flat`` (nothing was rebound)."""
        return dict.__len__(self) == len(self._views) and all(
            map(operator.is_, dict.values(self), self._views)
        )

    @property
    def dtype(self):
        return self.flat.dtype

    # ------------------------------------------------------------------------ copies
    def repack(self) -> FlatDict:
        """Copy rebound arrays back into ``flat`` and restore the views; returns self."""
        if self.packed:
            return self
        if set(dict.keys(self)) != {k for k, _ in self.layout}:
            raise KeyError("cannot repack: keys were added or removed since the dict was built")
        for (key, shape), view in zip(self.layout, self._views, strict=True):
            held = dict.__getitem__(self, key)
            if held is not view:
                if tuple(held.shape) != shape:
                    raise ValueError(f"cannot repack {key!r}: shape {tuple(held.shape)} != {shape}")
                get_xp(held, self.flat)  # raises if the new array is on the other device
                if held.dtype != self.flat.dtype:
                    raise TypeError(
                        f"cannot repack {key!r}: dtype {held.dtype} != {self.flat.dtype}"
                    )
                view[...] = held
                dict.__setitem__(self, key, view)
        EDITS[0] += 1
        return self

    def copy(self) -> FlatDict:
        """A packed deep copy (a new buffer)."""
        out = FlatDict(self.flat.copy(), self.layout)
        return out if self.packed else out.update_from(self)

    def update_from(self, other: dict) -> FlatDict:
        """Copy ``other``'s arrays into this dict's views (same keys and shapes); returns self."""
        for key, _ in self.layout:
            dict.__getitem__(self, key)[...] = other[key]
        return self

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()

    def __reduce__(self):
        return (_rebuild, (type(self), self.copy().flat, self.layout))

    def map_buffer(self, fn) -> FlatDict:
        """A FlatDict of the same layout over ``fn(flat)`` (used to move it between devices)."""
        src = self if self.packed else self.copy()
        moved = fn(src.flat)
        return self if moved is self.flat else FlatDict(moved, self.layout)


def _rebuild(cls, flat, layout):
    return cls(flat, layout)
