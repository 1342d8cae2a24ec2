"""Device operations of the stand-in: ufuncs and reductions run by NumPy, checked and counted
as CuPy would check them and a GPU would pay for them."""

from __future__ import annotations

import contextlib
import functools

import numpy

from ._hostbuild import ftz_mode

_PY_SCALARS = (bool, int, float, complex)
_NOT_F32 = frozenset("dgeFD")  # float64/16/longdouble/complex: FTZ would be wrong for them


def unsupported(x) -> TypeError:
    """CuPy's error for an argument it cannot take (a NumPy array, a list, ...)."""
    return TypeError(f"Unsupported type {type(x)}")


def operand(cls, x):
    """The NumPy value behind an argument: a stand-in array's data, or a scalar as is.

    Python scalars stay weak and NumPy scalars strong (NEP 50), as in CuPy 14; host arrays,
    lists and everything else are refused as CuPy refuses them.
    """
    if isinstance(x, cls):
        return x._a
    if type(x) in _PY_SCALARS or isinstance(x, numpy.generic):
        return x
    raise unsupported(x)


def out_operand(cls, out):
    if isinstance(out, tuple):
        if len(out) != 1:
            raise ValueError("The 'out' tuple must have exactly one entry per ufunc output")
        out = out[0]
    if isinstance(out, cls):
        return out
    if isinstance(out, numpy.ndarray) or type(out) in _PY_SCALARS or isinstance(out, numpy.generic):
        raise unsupported(out)
    raise TypeError("Output arguments type must be cupy.ndarray")


def _dtype_key(v):
    if type(v) in _PY_SCALARS:
        return type(v)
    return v.dtype


@functools.lru_cache(maxsize=1024)
def _loop_is_f32(ufunc, keys) -> bool:
    try:
        loop = ufunc.resolve_dtypes(keys)
    except Exception:  # let the call itself raise NumPy's error
        return False
    chars = {d.char for d in loop}
    return "f" in chars and not (chars & _NOT_F32)


@contextlib.contextmanager
def on_device(ftz: bool):
    """How device work runs: no floating-point warnings (a GPU raises none), and FTZ+DAZ
    for float32 work when ``ftz``."""
    with numpy.errstate(all="ignore"):
        if ftz:
            with ftz_mode():
                yield
        else:
            yield


def ftz_for(dtypes):
    """:func:`on_device`, flushing when the work is float32 only (never float64)."""
    chars = {numpy.dtype(d).char for d in dtypes if d is not None}
    return on_device("f" in chars and not (chars & _NOT_F32))


def for_cast(src_dtype, dst_dtype):
    """:func:`on_device` for a copy: a conversion into float32 is a ``cvt.ftz`` on the GPU;
    a same-dtype copy moves bits and flushes nothing."""
    if src_dtype is None or numpy.dtype(src_dtype) == numpy.dtype(dst_dtype):
        return on_device(False)
    return on_device(numpy.dtype(dst_dtype).char == "f")


def wrap_result(cls, r):
    """A new device array from a NumPy result (scalars become 0-d arrays, as in CuPy)."""
    a = r if type(r) is numpy.ndarray else numpy.asarray(r)
    cls._state.counters.allocate(a.nbytes)
    return cls._wrap(a)


def call_ufunc(cls, ufunc, args, out=None, dtype=None, casting="same_kind", name=None):
    """Run the NumPy ufunc on stand-in arrays: one counted launch, CuPy's argument rules."""
    if not (ufunc.nin <= len(args) <= ufunc.nargs):
        raise TypeError(
            f"Wrong number of arguments for {ufunc.__name__!r}. It must be either "
            f"{ufunc.nin} or {ufunc.nargs} (with outputs), but given {len(args)}."
        )
    if len(args) > ufunc.nin:
        if out is not None:
            raise ValueError("Cannot specify 'out' as both a positional and keyword argument")
        args, out = args[: ufunc.nin], args[ufunc.nin :]
    values = [operand(cls, x) for x in args]
    kwargs = {"casting": casting}
    if dtype is not None:
        kwargs["dtype"] = dtype
    out_array = None
    if out is not None:
        out_array = out_operand(cls, out)
        kwargs["out"] = out_array._a
    keys = tuple(_dtype_key(v) for v in values) + (
        (
            out_array._a.dtype
            if out_array is not None
            else (numpy.dtype(dtype) if dtype is not None else None)
        ),
    )
    if ufunc.nout != 1:
        keys = tuple(_dtype_key(v) for v in values) + (None,) * ufunc.nout
    with on_device(_loop_is_f32(ufunc, keys)):
        r = ufunc(*values, **kwargs)
    cls._state.counters.launch(name or ufunc.__name__)
    if out_array is not None:
        return out_array
    if isinstance(r, tuple):
        return tuple(wrap_result(cls, x) for x in r)
    return wrap_result(cls, r)


def call_reduction(cls, name, fn, a, axis=None, dtype=None, out=None, keepdims=False, **extra):
    """A reduction (sum, mean, max, ...) over a stand-in array: one counted launch."""
    if not isinstance(a, cls):
        raise unsupported(a)
    kwargs = dict(axis=axis, keepdims=keepdims, **extra)
    if dtype is not None:
        kwargs["dtype"] = dtype
    out_array = None
    if out is not None:
        out_array = out_operand(cls, out)
        kwargs["out"] = out_array._a
    with ftz_for([a.dtype, dtype, out_array.dtype if out_array is not None else None]):
        r = fn(a._a, **kwargs)
    cls._state.counters.launch(name)
    return out_array if out_array is not None else wrap_result(cls, r)


# The NumPy ufuncs that the stand-in module exposes under the same names.
UFUNC_NAMES = (
    "add",
    "subtract",
    "multiply",
    "divide",
    "true_divide",
    "floor_divide",
    "remainder",
    "power",
    "negative",
    "positive",
    "absolute",
    "abs",
    "sign",
    "sqrt",
    "square",
    "exp",
    "expm1",
    "log",
    "log1p",
    "log2",
    "log10",
    "tanh",
    "sinh",
    "cosh",
    "sin",
    "cos",
    "tan",
    "floor",
    "ceil",
    "trunc",
    "rint",
    "reciprocal",
    "maximum",
    "minimum",
    "fmax",
    "fmin",
    "isfinite",
    "isnan",
    "isinf",
    "signbit",
    "copysign",
    "greater",
    "greater_equal",
    "less",
    "less_equal",
    "equal",
    "not_equal",
    "logical_and",
    "logical_or",
    "logical_not",
    "logical_xor",
    "bitwise_and",
    "bitwise_or",
    "bitwise_xor",
    "invert",
    "arctan2",
    "hypot",
)


class Ufunc:
    """A stand-in ``cupy.ufunc``: the NumPy ufunc of that name, run on the device.

    The whole-array methods of a ufunc are supported for ``add``, ``multiply``,
    ``maximum`` and ``minimum`` (``reduce``) and ``add`` (``accumulate``), as in CuPy.
    """

    def __init__(self, cls, np_ufunc, name):
        self._cls, self._np, self.name = cls, np_ufunc, name
        self.__name__ = name
        self.nin, self.nout, self.nargs = np_ufunc.nin, np_ufunc.nout, np_ufunc.nargs

    def __call__(self, *args, out=None, dtype=None, casting="same_kind"):
        return call_ufunc(
            self._cls, self._np, args, out=out, dtype=dtype, casting=casting, name=self._np.__name__
        )

    def reduce(self, a, axis=0, dtype=None, out=None, keepdims=False):
        if self._np not in (numpy.add, numpy.multiply, numpy.maximum, numpy.minimum):
            raise NotImplementedError(f"{self.name}.reduce is not supported by the stand-in")
        return call_reduction(
            self._cls,
            self._np.__name__,
            self._np.reduce,
            a,
            axis=axis,
            dtype=dtype,
            out=out,
            keepdims=keepdims,
        )

    def accumulate(self, a, axis=0, dtype=None, out=None):
        if self._np is not numpy.add:
            raise NotImplementedError(f"{self.name}.accumulate is not supported by the stand-in")
        return call_reduction(
            self._cls,
            "cumsum",
            lambda x, keepdims, **k: numpy.add.accumulate(x, **k),
            a,
            axis=axis,
            dtype=dtype,
            out=out,
        )

    def __repr__(self) -> str:
        return f"<ufunc '{self.name}'>"
