"""The module-level functions of the stand-in (``cp.zeros``, ``cp.asarray``, ``cp.dot``, ...).

``install(ns, cls)`` puts them into a stand-in module whose array class is ``cls``; each
checks its arguments as CuPy does and counts what the GPU would do.
"""

from __future__ import annotations

import numpy

from . import _ufuncs as U


def install(ns: dict, cls) -> None:
    """Define every function in the namespace ``ns`` of a stand-in module."""
    counters = cls._state.counters

    def new(a, launch=None):
        counters.allocate(a.nbytes)
        if launch:
            counters.launch(launch)
        return cls._wrap(a)

    def array_in(x, what="argument"):
        if not isinstance(x, cls):
            raise U.unsupported(x)
        return x._a

    def from_host(obj, dtype=None, order="K", ndmin=0):
        a = numpy.array(obj, dtype=dtype, order=order, ndmin=ndmin, copy=True)
        counters.to_device(a.nbytes)
        return new(a)

    # ----------------------------------------------------------------- creation
    def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0):
        if isinstance(obj, cls):
            if (
                not copy
                and (dtype is None or numpy.dtype(dtype) == obj.dtype)
                and obj.ndim >= ndmin
            ):
                return obj
            with U.for_cast(obj.dtype, dtype or obj.dtype):
                a = numpy.array(obj._a, dtype=dtype, order=order, ndmin=ndmin, copy=True)
            return new(a, "copy")
        if isinstance(obj, (list, tuple)) and any(isinstance(x, cls) for x in obj):
            raise NotImplementedError(
                "the stand-in does not build arrays from lists of device arrays"
            )
        return from_host(obj, dtype, order, ndmin)

    def asarray(a, dtype=None, order=None):
        if isinstance(a, cls):
            if dtype is None or numpy.dtype(dtype) == a.dtype:
                return a  # already there: no copy, as CuPy
            return a.astype(dtype)
        return from_host(a, dtype, order or "K")

    def asnumpy(a, stream=None, order="C", out=None, blocking=True):
        if isinstance(a, cls):
            return a.get(order=order, out=out)
        return numpy.asarray(a, order=order)

    def empty(shape, dtype=float, order="C"):
        return new(numpy.empty(shape, dtype, order))

    def zeros(shape, dtype=float, order="C"):
        return new(numpy.zeros(shape, dtype, order), "memset")

    def ones(shape, dtype=float, order="C"):
        return new(numpy.ones(shape, dtype, order), "fill")

    def full(shape, fill_value, dtype=None, order="C"):
        U.operand(cls, fill_value)
        if isinstance(fill_value, cls):
            fill_value = fill_value._a
        return new(numpy.full(shape, fill_value, dtype, order), "fill")

    def _like(fn, a, dtype, shape, *extra):
        a = array_in(a)
        return fn(a.shape if shape is None else shape, *extra, dtype=dtype or a.dtype)

    ns["empty_like"] = lambda a, dtype=None, order="K", subok=None, shape=None: _like(
        empty, a, dtype, shape
    )
    ns["zeros_like"] = lambda a, dtype=None, order="K", subok=None, shape=None: _like(
        zeros, a, dtype, shape
    )
    ns["ones_like"] = lambda a, dtype=None, order="K", subok=None, shape=None: _like(
        ones, a, dtype, shape
    )
    ns["full_like"] = lambda a, fill_value, dtype=None, order="K", subok=None, shape=None: _like(
        full, a, dtype, shape, fill_value
    )

    def arange(start, stop=None, step=1, dtype=None):
        return new(
            numpy.arange(start, stop, step, dtype=dtype)
            if stop is not None
            else numpy.arange(start, step=step, dtype=dtype),
            "arange",
        )

    def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0):
        r = numpy.linspace(start, stop, num, endpoint, retstep, dtype, axis)
        return (new(r[0], "linspace"), r[1]) if retstep else new(r, "linspace")

    # ------------------------------------------------------------ manipulation
    def concatenate(arrays, axis=0, out=None, dtype=None, casting="same_kind"):
        parts = [array_in(x) for x in arrays]
        if out is not None:
            numpy.concatenate(parts, axis=axis, out=U.out_operand(cls, out)._a, casting=casting)
            counters.launch("concatenate")
            return out
        return new(numpy.concatenate(parts, axis=axis, dtype=dtype, casting=casting), "concatenate")

    def stack(arrays, axis=0, out=None, dtype=None, casting="same_kind"):
        return concatenate([expand_dims(x, axis) for x in arrays], axis, out, dtype, casting)

    def expand_dims(a, axis):
        return cls._wrap(numpy.expand_dims(array_in(a), axis))

    def reshape(a, newshape, order="C"):
        array_in(a)
        return a.reshape(newshape, order=order)

    def ravel(a, order="C"):
        array_in(a)
        return a.ravel(order)

    def transpose(a, axes=None):
        return cls._wrap(numpy.transpose(array_in(a), axes))

    def broadcast_to(array, shape):
        return cls._wrap(numpy.broadcast_to(array_in(array), shape))  # a read-only view

    def squeeze(a, axis=None):
        return cls._wrap(numpy.squeeze(array_in(a), axis))

    def ascontiguousarray(a, dtype=None):
        a_ = array_in(a)
        if a_.flags.c_contiguous and (dtype is None or numpy.dtype(dtype) == a_.dtype):
            return a
        return array(a, dtype=dtype, order="C")

    def vstack(tup):
        return concatenate([x if x.ndim >= 2 else x.reshape(1, -1) for x in tup], axis=0)

    def hstack(tup):
        return concatenate(list(tup), axis=0 if all(x.ndim == 1 for x in tup) else 1)

    def unique(ar, return_index=False, return_inverse=False, return_counts=False, axis=None):
        r = numpy.unique(array_in(ar), return_index, return_inverse, return_counts, axis)
        counters.launch("unique")  # a sort and a scan on the GPU: one counted step here
        counters.to_host(8)  # its size is known on the device only: CuPy reads it back
        return tuple(new(numpy.asarray(x)) for x in r) if isinstance(r, tuple) else new(r)

    def count_nonzero(a, axis=None):
        return U.call_reduction(
            cls, "count_nonzero", lambda x, keepdims, **k: numpy.count_nonzero(x, **k), a, axis=axis
        )

    def _arg(name, fn):
        return lambda a, axis=None, out=None, keepdims=False: U.call_reduction(
            cls, name, fn, a, axis, None, out, keepdims
        )

    argmax, argmin = _arg("argmax", numpy.argmax), _arg("argmin", numpy.argmin)

    def shares_memory(a, b, max_work=None):
        return bool(numpy.shares_memory(array_in(a), array_in(b)))

    def may_share_memory(a, b, max_work=None):
        return bool(numpy.may_share_memory(array_in(a), array_in(b)))

    def sort(a, axis=-1):
        return new(numpy.sort(array_in(a), axis=axis), "sort")

    def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
        with U.on_device(False):
            r = numpy.isclose(U.operand(cls, a), U.operand(cls, b), rtol, atol, equal_nan)
        return new(numpy.asarray(r), "isclose")

    def take(a, indices, axis=None, out=None):
        a_ = array_in(a)
        if isinstance(indices, cls):
            idx = indices._a
        elif type(indices) in (int, bool) or isinstance(indices, numpy.integer):
            idx = indices
        else:  # CuPy copies host indices (a list, a NumPy array) to the device first
            idx = numpy.asarray(indices, dtype=numpy.int64)
            counters.to_device(idx.nbytes)
            counters.allocate(idx.nbytes)
        if out is not None:
            out = U.out_operand(cls, out)
            numpy.take(a_, idx, axis=axis, out=out._a)
            counters.launch("take")
            return out
        return new(numpy.asarray(numpy.take(a_, idx, axis=axis)), "take")

    def where(condition, x=None, y=None):
        if x is None and y is None:
            raise NotImplementedError("the stand-in's where needs x and y")
        vals = [U.operand(cls, v) for v in (condition, x, y)]
        return new(numpy.asarray(numpy.where(*vals)), "where")

    def copyto(dst, src, casting="same_kind", where=None):
        dst = U.out_operand(cls, dst)
        value = U.operand(cls, src)
        kw = {} if where is None else {"where": U.operand(cls, where)}
        with U.for_cast(getattr(value, "dtype", None), dst.dtype):
            numpy.copyto(dst._a, value, casting=casting, **kw)
        counters.launch("copy")

    # ------------------------------------------------------------ linear algebra
    def _product(name, fn, a, b, out):
        # cuBLAS: no flush-to-zero (only CuPy's own kernels are compiled with -ftz=true)
        a_, b_ = array_in(a), array_in(b)
        if out is None:
            return new(numpy.asarray(fn(a_, b_)), name)
        out = U.out_operand(cls, out)
        try:
            fn(a_, b_, out=out._a)
        except ValueError:  # CuPy computes into a temporary when `out` is strided
            out._a[...] = fn(a_, b_)
        counters.launch(name)
        return out

    ns["dot"] = lambda a, b, out=None: _product("dot", numpy.dot, a, b, out)
    ns["matmul"] = lambda a, b, out=None: _product("matmul", numpy.matmul, a, b, out)

    # -------------------------------------------------------------- reductions
    def _reduction(name, fn, with_dtype=True):
        if with_dtype:
            return lambda a, axis=None, dtype=None, out=None, keepdims=False: U.call_reduction(
                cls, name, fn, a, axis, dtype, out, keepdims
            )
        return lambda a, axis=None, out=None, keepdims=False: U.call_reduction(
            cls, name, fn, a, axis, None, out, keepdims
        )

    for name, fn, with_dtype in (
        ("sum", numpy.sum, True),
        ("mean", numpy.mean, True),
        ("prod", numpy.prod, True),
        ("max", numpy.max, False),
        ("min", numpy.min, False),
        ("amax", numpy.max, False),
        ("amin", numpy.min, False),
        ("all", numpy.all, False),
        ("any", numpy.any, False),
    ):
        ns[name] = _reduction(name, fn, with_dtype)

    def cumsum(a, axis=None, dtype=None, out=None):
        return U.call_reduction(
            cls,
            "cumsum",
            lambda x, keepdims, **k: numpy.cumsum(x, **k),
            a,
            axis=axis,
            dtype=dtype,
            out=out,
        )

    def clip(a, a_min=None, a_max=None, out=None):
        x = U.operand(cls, a)
        lo, hi = (U.operand(cls, v) if v is not None else None for v in (a_min, a_max))
        kw = {} if out is None else {"out": U.out_operand(cls, out)._a}
        with U.ftz_for([x.dtype]):
            r = numpy.clip(x, lo, hi, **kw)
        counters.launch("clip")
        return out if out is not None else new(numpy.asarray(r))

    def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
        with U.on_device(False):
            r = numpy.allclose(U.operand(cls, a), U.operand(cls, b), rtol, atol, equal_nan)
        counters.launch("isclose")
        return new(numpy.asarray(r), "all")  # a device bool, as CuPy returns

    def array_equal(a1, a2, equal_nan=False):
        x, y = U.operand(cls, a1), U.operand(cls, a2)
        counters.launch("equal")
        return new(numpy.asarray(numpy.array_equal(x, y, equal_nan=equal_nan)), "all")

    def get_array_module(*args):
        return cls._state.module if any(isinstance(x, cls) for x in args) else numpy

    def result_type(*args):
        return numpy.result_type(*[x.dtype if isinstance(x, cls) else x for x in args])

    public = (
        "array",
        "asarray",
        "asnumpy",
        "empty",
        "zeros",
        "ones",
        "full",
        "arange",
        "linspace",
        "concatenate",
        "stack",
        "expand_dims",
        "reshape",
        "ravel",
        "transpose",
        "take",
        "where",
        "copyto",
        "cumsum",
        "clip",
        "allclose",
        "array_equal",
        "get_array_module",
        "result_type",
        "broadcast_to",
        "squeeze",
        "ascontiguousarray",
        "vstack",
        "hstack",
        "unique",
        "count_nonzero",
        "argmax",
        "argmin",
        "sort",
        "isclose",
        "shares_memory",
        "may_share_memory",
    )
    scope = locals()
    ns.update({k: scope[k] for k in public})
    for name in U.UFUNC_NAMES:
        ns[name] = U.Ufunc(cls, getattr(numpy, name), name)
