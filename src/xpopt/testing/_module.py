"""The stand-in ``cupy`` module, its ``cuda`` submodule, and :func:`cupy_standin`."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
import types
from collections.abc import Iterator

import numpy

from ._counters import Counters, counting
from ._functions import install
from ._kernel import ElementwiseKernel
from ._standin import NdarrayBase

VERSION = "14.2.0+xpopt.standin"
DEVICE_NAME = b"xpopt CuPy stand-in (host)"


class _State:
    """What one stand-in module's arrays and kernels share."""

    def __init__(self, strict_scalars: bool, module: types.ModuleType):
        self.counters = Counters()
        self.kernels_built: list = []
        self.strict_scalars = bool(strict_scalars)
        self.module = module


def _cuda_module(state: _State) -> types.ModuleType:
    cuda = types.ModuleType("cupy.cuda", "Stand-in of cupy.cuda: one device, counted syncs.")
    runtime = types.ModuleType("cupy.cuda.runtime", "Stand-in of cupy.cuda.runtime.")

    class Stream:
        """The one stream: ``synchronize()`` is counted, nothing else happens."""

        null = None

        def synchronize(self) -> None:
            state.counters.sync()

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    class Device:
        """``cupy.cuda.Device``: device 0 only (the stand-in has one device)."""

        def __init__(self, device=None):
            device = 0 if device is None else int(device)
            if device != 0:
                raise ValueError(f"the xpopt CuPy stand-in has one device (0), not {device}")
            self.id = 0

        compute_capability = "90"

        def synchronize(self) -> None:
            state.counters.sync()

        def use(self) -> None:
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def __repr__(self) -> str:
            return "<CUDA Device 0 (xpopt stand-in)>"

    class Event:
        """``cupy.cuda.Event``: ``record()`` notes the host clock (the stand-in's work is
        done when a call returns); ``synchronize()`` is a counted sync. Times measured with
        it are host times of the stand-in, never GPU figures."""

        def __init__(self, *args, **kwargs):
            self.time = None

        def record(self, stream=None) -> None:
            self.time = time.perf_counter()

        def synchronize(self) -> None:
            state.counters.sync()

    def get_elapsed_time(start: Event, end: Event) -> float:
        if start.time is None or end.time is None:
            raise RuntimeError("both events must be recorded before get_elapsed_time")
        return (end.time - start.time) * 1e3  # milliseconds, as CuPy

    def getDeviceProperties(device: int) -> dict:
        Device(device)
        return {
            "name": DEVICE_NAME,
            "totalGlobalMem": 80 * 2**30,
            "major": 9,
            "minor": 0,
            "multiProcessorCount": 132,
            "warpSize": 32,
        }

    # the modules' attributes go in through their namespaces (vars): a ModuleType declares none
    vars(runtime).update(
        getDeviceCount=lambda: 1,
        getDevice=lambda: 0,
        getDeviceProperties=getDeviceProperties,
        runtimeGetVersion=lambda: 12090,
        driverGetVersion=lambda: 12090,
        deviceSynchronize=state.counters.sync,
        is_hip=False,
    )
    stream = Stream()
    vars(cuda).update(
        runtime=runtime,
        Device=Device,
        Stream=Stream,
        Event=Event,
        get_elapsed_time=get_elapsed_time,
        get_current_stream=lambda device=None: stream,
        is_available=lambda: True,
    )
    return cuda


class _MemoryPool:
    """``cupy.get_default_memory_pool()``: the stand-in has no pool (NumPy allocates), so
    freeing is a no-op and the pool's byte counts are refused rather than invented; read
    ``counters.allocated_bytes`` instead."""

    def free_all_blocks(self) -> None:
        pass

    def used_bytes(self) -> int:
        raise NotImplementedError(
            "the CuPy stand-in has no memory pool; "
            "counters.allocated_bytes counts what was allocated"
        )

    total_bytes = used_bytes


def build_module(strict_scalars: bool = False) -> types.ModuleType:
    """A fresh stand-in ``cupy`` module (not installed anywhere; see :func:`cupy_standin`)."""
    from . import __doc__ as doc  # noqa: PLC0415

    cp = types.ModuleType("cupy", doc)
    state = _State(strict_scalars, cp)
    cls = type(
        "ndarray",
        (NdarrayBase,),
        {"__slots__": (), "_state": state, "__module__": "cupy", "__qualname__": "ndarray"},
    )
    kernel = type(
        "ElementwiseKernel",
        (ElementwiseKernel,),
        {"_state": state, "__module__": "cupy", "__qualname__": "ElementwiseKernel"},
    )
    ns = vars(cp)
    ns.update(
        __version__=VERSION,
        __xpopt_standin__=True,
        ndarray=cls,
        ElementwiseKernel=kernel,
        counters=state.counters,
        kernels_built=state.kernels_built,
        counting=lambda: counting(state.counters),
        is_available=lambda: True,
    )
    install(ns, cls)
    numpy_names = (
        "float16 float32 float64 int8 int16 int32 int64 uint8 uint16 uint32 uint64 bool_ "
        "complex64 complex128 dtype newaxis inf nan pi e can_cast finfo iinfo"
    )
    for name in numpy_names.split():
        setattr(cp, name, getattr(numpy, name))
    pool = _MemoryPool()
    ns.update(cuda=_cuda_module(state), get_default_memory_pool=lambda: pool)
    return cp


def is_standin(module) -> bool:
    """True for a module built by :func:`cupy_standin` (False for the real CuPy)."""
    return getattr(module, "__xpopt_standin__", False) is True


def _is_cupy_name(name: str) -> bool:
    return name in ("cupy", "cupyx") or name.startswith(("cupy.", "cupyx."))


_active_lock = threading.Lock()
_active = None


@contextlib.contextmanager
def cupy_standin(*, strict_scalars: bool = False) -> Iterator[types.ModuleType]:
    """Install a fresh CuPy stand-in as ``sys.modules["cupy"]`` for the ``with`` block.

    Everything named ``cupy``, ``cupy.*``, ``cupyx`` or ``cupyx.*`` in ``sys.modules`` is
    put aside and restored exactly on exit; xpopt's cached CuPy probe, its configured
    backend and its cache of built kernels are reset on entry and restored on exit, so
    nothing of the stand-in outlives the block.

    Parameters
    ----------
    strict_scalars : bool
        Also refuse NumPy scalars whose dtype differs from the kernel parameter's type
        (``TypeError: Type is mismatched.``). CuPy itself casts them; this is a lint
        for host code that should compute its scalars in the kernel's dtype.

    Yields
    ------
    module
        The stand-in ``cupy`` (``cp.counters``, ``cp.counting()``, ``cp.kernels_built``).

    Raises
    ------
    RuntimeError
        If a stand-in is already active (it cannot be nested or entered twice).
    """
    global _active
    from .. import backend, kernels  # noqa: PLC0415 (xpopt.testing is imported by tests only)

    with _active_lock:
        if _active is not None:
            raise RuntimeError(
                "xpopt.testing.cupy_standin() is already active: the CuPy "
                "stand-in cannot be nested or entered twice"
            )
        cp = build_module(strict_scalars)
        _active = cp
    saved = {k: v for k, v in sys.modules.items() if _is_cupy_name(k)}
    saved_kernels = dict(kernels._cache)
    saved_choice = backend._process_choice
    try:
        for k in saved:
            del sys.modules[k]
        sys.modules.update({"cupy": cp, "cupy.cuda": cp.cuda, "cupy.cuda.runtime": cp.cuda.runtime})
        kernels._cache.clear()  # kernels built for another cupy must not be reused
        backend._reset_probe()
        yield cp
    finally:
        for k in [k for k in sys.modules if _is_cupy_name(k)]:
            del sys.modules[k]
        sys.modules.update(saved)
        kernels._cache.clear()
        kernels._cache.update(saved_kernels)
        backend._process_choice = saved_choice
        backend._reset_probe()
        with _active_lock:
            _active = None
