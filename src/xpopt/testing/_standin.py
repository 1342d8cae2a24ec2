"""The stand-in ``cupy.ndarray``: NumPy data held privately, CuPy's strictness, GPU costs.

Each stand-in module gets its own subclass of :class:`NdarrayBase` (``cp.ndarray``), so an
array of one ``cupy_standin()`` session is not an array of the next.
"""

from __future__ import annotations

import operator
import sys
from typing import TYPE_CHECKING, ClassVar

import numpy

from . import _ufuncs as U
from ._operators import Operators

if TYPE_CHECKING:
    from ._module import _State

_IMPLICIT = (
    "Implicit conversion to a NumPy array is not allowed. "
    "Please use `.get()` to construct a NumPy array explicitly."
)


class Flags:
    """``ndarray.flags``: CuPy arrays are always writeable and aligned."""

    def __init__(self, a: numpy.ndarray):
        self.c_contiguous = bool(a.flags.c_contiguous)
        self.f_contiguous = bool(a.flags.f_contiguous)
        self.owndata = a.base is None
        self.writeable = True
        self.aligned = True

    def __getitem__(self, key: str) -> bool:
        names = {
            "C_CONTIGUOUS": "c_contiguous",
            "F_CONTIGUOUS": "f_contiguous",
            "OWNDATA": "owndata",
            "WRITEABLE": "writeable",
            "ALIGNED": "aligned",
        }
        return getattr(self, names[key.upper()])

    def __repr__(self) -> str:
        return (
            f"  C_CONTIGUOUS : {self.c_contiguous}\n  F_CONTIGUOUS : {self.f_contiguous}\n"
            f"  OWNDATA : {self.owndata}"
        )


def _unpickle(a: numpy.ndarray):
    """Unpickling a device array: a host-to-device copy on the ``cupy`` then in use."""
    return sys.modules["cupy"].asarray(a)


def _index(cls, key):
    """The key with device index arrays unwrapped; host index arrays are a counted copy.

    A boolean mask makes an output whose size only the device knows: CuPy reads the count
    back (a device-to-host copy and a sync) before it can allocate it.
    """
    items = key if isinstance(key, tuple) else (key,)
    out = []
    for k in items:
        if isinstance(k, cls):
            k = k._a
            if k.dtype == bool:
                cls._state.counters.to_host(8)
        elif isinstance(k, (numpy.ndarray, list)):
            k = numpy.asarray(k)
            cls._state.counters.to_device(k.nbytes)  # CuPy copies host indices to the device
        out.append(k)
    return tuple(out)


class NdarrayBase(Operators):
    """A device array of the stand-in (``cupy.ndarray``); see :mod:`xpopt.testing`."""

    __slots__ = ("_a", "__weakref__")
    # unhashable, as CuPy's arrays: Operators defines __eq__, so Python set its __hash__ to None
    _state: ClassVar[_State]  # set on each module's subclass: counters and options

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        if memptr is not None or strides is not None:
            raise NotImplementedError("the stand-in does not take memptr or strides")
        self._a = numpy.empty(shape, dtype=dtype, order=order)
        self._state.counters.allocate(self._a.nbytes)

    @classmethod
    def _wrap(cls, a: numpy.ndarray):
        self = object.__new__(cls)
        self._a = a
        return self

    # ------------------------------------------------------------------ refusals
    def __array__(self, *args, **kwargs):
        raise TypeError(_IMPLICIT)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        module = self._state.module
        mine = getattr(module, ufunc.__name__, None)
        if not isinstance(mine, U.Ufunc):
            return NotImplemented
        if method == "__call__":
            return mine(*inputs, **kwargs)
        if method in ("reduce", "accumulate"):
            return getattr(mine, method)(*inputs, **kwargs)
        return NotImplemented

    def __array_function__(self, func, types, args, kwargs):
        # As CuPy: a NumPy function runs if the stand-in has one of that name; that one
        # refuses host arrays. Anything else is NumPy's TypeError ("no implementation").
        mine = getattr(self._state.module, func.__name__, None)
        if mine is None or mine is func or not callable(mine):
            return NotImplemented
        return mine(*args, **kwargs)

    # ------------------------------------------------------------------ attributes
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: Flags(self._a))
    T = property(lambda self: self._wrap(self._a.T))
    device = property(lambda self: self._state.module.cuda.Device(0))

    def __len__(self) -> int:
        if self._a.ndim == 0:
            raise TypeError("len() of unsized object")
        return self._a.shape[0]

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self._a.shape[0]))  # device sub-arrays, as CuPy

    # ------------------------------------------------------------------ views, copies
    def reshape(self, *shape, order="C"):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        r = self._a.reshape(shape, order=order)
        if not numpy.may_share_memory(r, self._a) and r.size:
            self._state.counters.launch("copy")  # not expressible as a view: a copy
            self._state.counters.allocate(r.nbytes)
        return self._wrap(r)

    def ravel(self, order="C"):
        return self.reshape(-1, order=order)

    def flatten(self):
        return self.copy().reshape(-1)

    def transpose(self, *axes):
        return self._wrap(self._a.transpose(*axes))

    def swapaxes(self, a, b):
        return self._wrap(self._a.swapaxes(a, b))

    def squeeze(self, axis=None):
        return self._wrap(self._a.squeeze(axis))

    def view(self, dtype=None):
        return self._wrap(self._a.view() if dtype is None else self._a.view(dtype))

    def copy(self, order="C"):
        self._state.counters.launch("copy")
        self._state.counters.allocate(self._a.nbytes)
        return self._wrap(self._a.copy(order=order))

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()

    def __reduce__(self):
        return _unpickle, (self.get(),)  # as CuPy: pickling reads the array back

    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        dtype = numpy.dtype(dtype)
        if not copy and dtype == self._a.dtype:
            return self
        with U.for_cast(self._a.dtype, dtype):
            r = self._a.astype(dtype, order=order, casting=casting or "unsafe")
        self._state.counters.launch("copy")
        self._state.counters.allocate(r.nbytes)
        return self._wrap(r)

    def fill(self, value):
        U.operand(type(self), value)  # a host array is refused, as CuPy does
        self._state.counters.launch("fill")
        self._a.fill(value)

    def __getitem__(self, key):
        key = _index(type(self), key)
        if not any(k is Ellipsis for k in key):
            key = key + (Ellipsis,)  # a 0-d view rather than a NumPy scalar, as CuPy
        r = self._a[key]
        if not numpy.may_share_memory(r, self._a):  # advanced indexing: a gather kernel
            self._state.counters.launch("take")
            self._state.counters.allocate(r.nbytes)
        return self._wrap(r)

    def __setitem__(self, key, value):
        cls = type(self)
        key = _index(cls, key)
        counters = self._state.counters
        if isinstance(value, cls):
            src, name = value._a, "copy"
        elif type(value) in U._PY_SCALARS or isinstance(value, numpy.generic):
            src, name = value, "fill"
        elif isinstance(value, (numpy.ndarray, list, tuple)):
            src = numpy.asarray(value)  # CuPy copies host data to the device first
            counters.to_device(src.nbytes)
            counters.allocate(src.nbytes)
            name = "copy"
        else:
            raise U.unsupported(value)
        with U.for_cast(getattr(src, "dtype", None), self._a.dtype):
            self._a[key] = src
        counters.launch(name)

    # ------------------------------------------------------------------ device -> host
    def get(self, stream=None, order="C", out=None, blocking=True):
        """A NumPy copy of the array (a counted device-to-host copy)."""
        self._state.counters.to_host(self._a.nbytes)
        if out is not None:
            if not isinstance(out, numpy.ndarray):
                raise TypeError("Only numpy.ndarray can be obtained from cupy.ndarray")
            out[...] = self._a
            return out
        return numpy.array(self._a, order=order, copy=True)

    def set(self, arr, stream=None):
        """Copy a NumPy array of the same shape into this array (host to device)."""
        if not isinstance(arr, numpy.ndarray):
            raise TypeError(f"Only numpy.ndarray can be set to cupy.ndarray, got {type(arr)}")
        if arr.shape != self._a.shape or arr.dtype != self._a.dtype:
            raise ValueError("Shape or dtype mismatch")
        self._state.counters.to_device(arr.nbytes)
        self._a[...] = arr

    def _read(self, nbytes=None):
        self._state.counters.to_host(self._a.nbytes if nbytes is None else nbytes)
        return self._a

    def item(self):
        if self._a.size != 1:
            raise ValueError("can only convert an array of size 1 to a Python scalar")
        return self._read().item()

    def tolist(self):
        return self._read().tolist()

    def __float__(self):
        return float(self._read())

    def __int__(self):
        return int(self._read())

    def __complex__(self):
        return complex(self._read())

    def __index__(self):
        if self._a.dtype.kind not in "iub":
            raise TypeError("only integer arrays with one element can be converted to an index")
        return operator.index(self._read())

    def __bool__(self):
        if self._a.size > 1:
            raise ValueError(
                "The truth value of an array with more than one element is "
                "ambiguous. Use a.any() or a.all()"
            )
        return bool(self._read())

    def __repr__(self):
        return repr(self._read())

    def __str__(self):
        return str(self._read())

    def __format__(self, spec):
        return format(self._read()[()] if self._a.ndim == 0 else self._read(), spec)

    # ------------------------------------------------------------------ reductions
    def sum(self, axis=None, dtype=None, out=None, keepdims=False):
        return U.call_reduction(type(self), "sum", numpy.sum, self, axis, dtype, out, keepdims)

    def mean(self, axis=None, dtype=None, out=None, keepdims=False):
        return U.call_reduction(type(self), "mean", numpy.mean, self, axis, dtype, out, keepdims)

    def max(self, axis=None, out=None, keepdims=False):
        return U.call_reduction(type(self), "max", numpy.max, self, axis, None, out, keepdims)

    def min(self, axis=None, out=None, keepdims=False):
        return U.call_reduction(type(self), "min", numpy.min, self, axis, None, out, keepdims)

    def all(self, axis=None, out=None, keepdims=False):
        return U.call_reduction(type(self), "all", numpy.all, self, axis, None, out, keepdims)

    def any(self, axis=None, out=None, keepdims=False):
        return U.call_reduction(type(self), "any", numpy.any, self, axis, None, out, keepdims)

    def cumsum(self, axis=None, dtype=None, out=None):
        return self._state.module.cumsum(self, axis=axis, dtype=dtype, out=out)

    def dot(self, b, out=None):
        return self._state.module.dot(self, b, out=out)

    def take(self, indices, axis=None, out=None):
        return self._state.module.take(self, indices, axis=axis, out=out)

    def clip(self, min=None, max=None, out=None):
        return self._state.module.clip(self, min, max, out=out)
