"""The update kernels compiled for the CPU: one pass over memory per step, no temporaries.

setup.py builds ``xpopt._hostkernels`` from :func:`xpopt.kernels.host_c_source` (the same
``operation`` text as the CUDA kernels) when a C compiler is there; its functions are called
through ctypes, which releases the GIL, so threads can share a large update. They round
exactly as the NumPy twins do (one rounding per operation, no contraction): the tests hold
the two paths to bit-for-bit equality. Where the extension is missing, or with
``XPOPT_HOST_KERNELS=0``, xpopt uses the NumPy twins.
"""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Callable

import numpy

from . import kernels

__all__ = ["address", "host_function", "unavailable_reason"]

_SCALAR_TYPES = {"float32": ctypes.c_float, "float64": ctypes.c_double}


@functools.lru_cache(maxsize=1)
def _library() -> tuple[ctypes.CDLL | None, str | None]:
    if os.environ.get("XPOPT_HOST_KERNELS", "1").strip() == "0":
        return None, "disabled by XPOPT_HOST_KERNELS=0"
    try:
        from . import _hostkernels  # noqa: PLC0415 (built by setup.py when a compiler exists)
    except ImportError as exc:
        return None, f"xpopt._hostkernels was not built ({exc}); reinstall with a C compiler"
    return ctypes.CDLL(_hostkernels.__file__), None


def unavailable_reason() -> str | None:
    """Why the compiled CPU kernels are not used, or None when they are."""
    return _library()[1]


@functools.cache
def host_function(spec: kernels.KernelSpec, dtype) -> Callable | None:
    """The compiled kernel for ``spec`` and ``dtype`` (native float32 or float64), or None.

    The kernel writes through raw pointers: its caller
    (:class:`~xpopt.optim.placement.HostRunner`, after :mod:`xpopt.validation`) passes only
    writeable, C-contiguous, native-endian arrays.
    Called as ``f(*args, n)`` with ``args`` in ``spec.params`` order: array arguments as
    data pointers (ints), scalars as Python floats (cast to ``T``, as the CUDA launch does).
    """
    library, _ = _library()
    dtype = numpy.dtype(dtype)
    name = dtype.name  # ">f8" is named float64 too: the byte order must be checked apart
    if library is None or name not in _SCALAR_TYPES or not dtype.isnative:
        return None
    function = getattr(library, kernels.host_function_name(spec, name))
    scalar = _SCALAR_TYPES[name]
    function.argtypes = [
        scalar if role == "scalar" else ctypes.c_void_p for role, _, _ in spec.params
    ] + [ctypes.c_ssize_t]
    function.restype = None
    return function


def address(array: numpy.ndarray) -> int:
    """The address of a C-contiguous NumPy array's first element, for a kernel's pointer.

    Through the buffer protocol for a writeable array (0.3 us; ``array.ctypes.data`` costs
    1 us, and a course-named update takes a new gradient array per call), else through
    ``ctypes``.
    """
    try:
        # an ndarray is a Buffer (NumPy's stubs declare it from Python 3.12 only); array.data
        # would satisfy mypy but costs a memoryview per call on this hot path
        return ctypes.addressof(ctypes.c_char.from_buffer(array))  # type: ignore[arg-type]
    except (TypeError, ValueError, BufferError):  # read-only, or empty
        return array.ctypes.data
