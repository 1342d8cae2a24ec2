"""The stand-in ``cupy.ElementwiseKernel``: CuPy 14's argument and type rules, and the
``operation`` text compiled as C++ and run for real on the host.

Rules learnt from CuPy's ``cupy/_core/_kernel.pyx`` (``ParameterInfo``, ``_get_param_info``,
``_decide_params_type_core``, ``_broadcast``, ``_get_out_args_with_params`` and
``ElementwiseKernel.__call__``) and ``cupy/_core/_scalar.pyx`` (``CScalar``):

- a one-letter type is a placeholder; it is deduced from ARRAY arguments only (outputs
  first, then inputs); a second array of another dtype: ``TypeError: Type is mismatched.``;
- scalars (Python or NumPy) never take part in the deduction: each is converted to its
  parameter's type at the launch (so a NumPy float64 scalar passed for a float32 ``T`` is
  cast, as CuPy casts it); a placeholder that only scalars use cannot be deduced and raises
  ``KeyError`` naming it, as CuPy does;
- a NumPy array anywhere: ``TypeError: Unsupported type <class 'numpy.ndarray'>``;
- outputs, when given, are device arrays of exactly the broadcast shape.
"""

from __future__ import annotations

import ctypes
import re
from typing import TYPE_CHECKING, ClassVar

import numpy

from . import _ufuncs as U
from ._hostbuild import build, is_x86_64
from ._hostsource import c_type, host_source

if TYPE_CHECKING:
    from ._module import _State

_NAME = re.compile(r"^[A-Za-z_][A-Za-z_0-9]*$")


class ParamInfo:
    """One parsed parameter: ``name``, ``dtype`` (None for a placeholder), ``ctype``
    (the placeholder letter or the C type), ``raw``, ``is_const``."""

    def __init__(self, text: str, is_const: bool):
        words = text.split()
        if len(words) < 2:
            raise Exception(f"Syntax error: {text}")  # CuPy raises a bare Exception too
        t, self.name = words[-2:]
        self.raw, self.is_const, self.dtype = False, is_const, None
        if len(t) == 1:
            self.ctype = t
        else:
            self.dtype = numpy.dtype(t)
            self.ctype = c_type(self.dtype)
        for word in words[:-2]:
            if word == "raw":
                self.raw = True
            elif word == "_non_const":
                self.is_const = False
            else:
                raise Exception(f'Unknown keyword "{word}"')

    def __repr__(self) -> str:
        return (
            f"ParamInfo(name={self.name!r}, dtype={self.dtype!r}, ctype={self.ctype!r}, "
            f"raw={self.raw}, is_const={self.is_const})"
        )


def parse_params(text: str, is_const: bool) -> tuple:
    return () if not text else tuple(ParamInfo(s, is_const) for s in text.strip().split(","))


class UndeducedTypeError(KeyError):
    """A type placeholder used only by scalars (CuPy raises ``KeyError`` with its letter)."""

    def __str__(self) -> str:
        return (
            f"{self.args[0]!r}: the type placeholder {self.args[0]} is used only by scalar "
            "arguments and cannot be deduced (CuPy deduces placeholders from arrays only)"
        )


def decide_types(in_params, out_params, in_dtypes, out_dtypes):
    """CuPy's deduction: ``(in_types, out_types, {placeholder: dtype})``."""
    found: dict = {}

    def take(p, a):
        if p.dtype is not None:
            if numpy.dtype(a) != p.dtype:
                raise TypeError(f"Type is mismatched. {p.name} {numpy.dtype(a)} {p.dtype}")
        elif p.ctype in found:
            if numpy.dtype(found[p.ctype]) != numpy.dtype(a):
                raise TypeError(
                    f"Type is mismatched. {p.name} {numpy.dtype(a)} "
                    f"{numpy.dtype(found[p.ctype])} {p.ctype}"
                )
        else:
            found[p.ctype] = numpy.dtype(a)

    # no outputs passed (out_dtypes empty): they are allocated after the deduction
    for p, a in zip(out_params, out_dtypes, strict=False):
        if a is None:
            raise TypeError("Output arguments must be cupy.ndarray")
        take(p, a)
    for p, a in zip(in_params, in_dtypes, strict=True):
        if a is not None:
            take(p, a)

    def resolve(p):
        if p.dtype is not None:
            return p.dtype
        if p.ctype not in found:
            raise UndeducedTypeError(p.ctype)
        return found[p.ctype]

    return (
        tuple(resolve(p) for p in in_params),
        tuple(resolve(p) for p in out_params),
        dict(sorted(found.items())),
    )


class ElementwiseKernel:
    """A stand-in ``cupy.ElementwiseKernel`` (same constructor; see the module docstring).

    Attributes
    ----------
    in_params, out_params, operation, name, preamble : str
        As given (raw text).
    options : tuple
        As given: NVRTC options, recorded, never passed to the host compiler.
    no_return, return_tuple, reduce_dims : bool
    params_in, params_out : tuple of ParamInfo
        The parsed parameter lists.
    """

    _state: ClassVar[_State]  # set on each module's subclass

    def __init__(
        self,
        in_params,
        out_params,
        operation,
        name="kernel",
        reduce_dims=True,
        preamble="",
        no_return=False,
        return_tuple=False,
        loop_prep="",
        after_loop="",
        options=(),
        **kwargs,
    ):
        if not _NAME.match(name):
            raise ValueError(f'Invalid kernel name: "{name}"')
        self.in_params, self.out_params, self.operation = in_params, out_params, operation
        self.name, self.__name__, self.preamble = name, name, preamble
        self.reduce_dims, self.no_return, self.return_tuple = reduce_dims, no_return, return_tuple
        self.loop_prep, self.after_loop, self.options = loop_prep, after_loop, tuple(options)
        self.kwargs = kwargs
        self.params_in = parse_params(in_params, True)
        self.params_out = parse_params(out_params, False)
        self.nin, self.nout = len(self.params_in), len(self.params_out)
        self.nargs = self.nin + self.nout
        if "i" in [p.name for p in self.params_in + self.params_out]:
            raise ValueError("Can not use 'i' as a parameter name")
        if loop_prep or after_loop:
            raise NotImplementedError("the stand-in does not run loop_prep / after_loop")
        self._libs: dict = {}
        self._state.kernels_built.append(self)

    def __repr__(self) -> str:
        return (
            f"<stand-in ElementwiseKernel {self.name!r}: ({self.in_params}) -> "
            f"({self.out_params}), options={self.options}>"
        )

    def __call__(self, *args, size=-1, stream=None, block_size=128, **kwargs):
        if kwargs:
            raise TypeError(f"Wrong arguments {kwargs}")
        if block_size <= 0:
            raise ValueError("block_size must be greater than zero")
        if len(args) not in (self.nin, self.nargs):
            raise TypeError(
                f"Wrong number of arguments for {self.name!r}. It must be either "
                f"{self.nin} or {self.nargs} (with outputs), but given {len(args)}."
            )
        state = self._state
        cls = state.module.ndarray
        for a in args:  # CuPy wraps every non-array into a scalar, refusing the rest
            if not isinstance(a, cls) and not (
                type(a) in U._PY_SCALARS or isinstance(a, numpy.generic)
            ):
                raise U.unsupported(a)
        params = self.params_in + self.params_out
        in_args, out_args = list(args[: self.nin]), list(args[self.nin :])
        # args may stop at the inputs (outputs not passed): zip stops there too
        nonraw = [
            a._a.shape
            for a, p in zip(args, params, strict=False)
            if isinstance(a, cls) and not p.raw
        ]
        if size != -1:
            if nonraw:
                raise ValueError(
                    "Specified 'size' can be used only if all of the ndarray are 'raw'."
                )
            shape = (int(size),)
        elif not nonraw:
            raise ValueError("Loop size is undecided.")
        else:
            shape = numpy.broadcast_shapes(*nonraw)
        in_types, out_types, type_map = decide_types(
            self.params_in,
            self.params_out,
            [a.dtype if isinstance(a, cls) else None for a in in_args],
            [a.dtype if isinstance(a, cls) else None for a in out_args],
        )
        if out_args:
            for a, p in zip(out_args, self.params_out, strict=True):
                if not p.raw and a._a.shape != shape:
                    raise ValueError("Out shape is mismatched")
        else:
            if any(p.raw for p in self.params_out) and size == -1:
                raise ValueError("Output array size is Undecided")
            out_args = [cls._wrap(numpy.empty(shape, t)) for t in out_types]
            for a in out_args:
                state.counters.allocate(a.nbytes)
        ret = (
            None
            if self.no_return
            else (out_args[0] if self.nout == 1 and not self.return_tuple else tuple(out_args))
        )
        n = 1
        for d in shape:
            n *= d
        if n == 0:
            return ret  # CuPy returns before launching anything
        self._launch(cls, params, in_args + out_args, in_types + out_types, type_map, shape, n)
        return ret

    def _launch(self, cls, params, args, types, type_map, shape, n):
        state = self._state
        kinds = tuple("array" if isinstance(a, cls) else "scalar" for a in args)
        floats = {numpy.dtype(t).char for t in types if numpy.dtype(t).kind == "f"}
        if "e" in floats:
            raise NotImplementedError("the stand-in's host kernels do not support float16")
        ftz = "f" in floats
        if ftz and "d" in floats:
            raise NotImplementedError(
                "a kernel mixing float32 and float64: on x86 flush-to-zero cannot be applied "
                "to the float32 operations only, as a GPU does"
            )
        if ftz and not is_x86_64():
            raise NotImplementedError(
                "flush-to-zero emulation needs x86-64: float32 kernels "
                "cannot run with GPU semantics on this machine"
            )
        key = (kinds, tuple((k, v.str) for k, v in type_map.items()))
        fn = self._libs.get(key)
        if fn is None:
            source = host_source(params, kinds, type_map, self.operation, self.preamble)
            fn = build(source, self.name).xpopt_standin_kernel
            fn.restype = None
            fn.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t, ctypes.c_int, ctypes.c_void_p]
            self._libs[key] = fn
        keep, writeback = [], []
        ptrs = (ctypes.c_void_p * len(args))()
        sizes = (ctypes.c_ssize_t * len(args))()
        for k, (a, p, t) in enumerate(zip(args, params, types, strict=True)):
            if isinstance(a, cls):
                view = a._a if p.raw or a._a.shape == shape else numpy.broadcast_to(a._a, shape)
                buf = numpy.ascontiguousarray(view)
                if buf is not a._a and not numpy.may_share_memory(buf, a._a) and not p.is_const:
                    writeback.append((a._a, buf))  # a strided output: copy the results back
            else:
                value = a
                if state.strict_scalars and isinstance(a, numpy.generic) and a.dtype != t:
                    raise TypeError(
                        f"Type is mismatched. {p.name} {a.dtype} {numpy.dtype(t)} "
                        "(xpopt stand-in, strict_scalars=True: CuPy itself casts "
                        "NumPy scalars to the parameter's type)"
                    )
                buf = numpy.array(value, dtype=t)  # CuPy's CScalar.apply_dtype
            keep.append(buf)
            ptrs[k], sizes[k] = buf.ctypes.data, buf.size
        fn(ptrs, n, int(ftz), sizes)
        for target, buf in writeback:
            target[...] = buf
        state.counters.launch(self.name)
