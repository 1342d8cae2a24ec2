"""Where arrays live: the NumPy / CuPy backend shim.

This is the only module of xpopt that imports CuPy, and it does so lazily: ``import xpopt``
loads NumPy only, and CUDA is first touched when a GPU is asked for (``set_backend("cuda")``,
``use_backend("auto")``, ``XPOPT_BACKEND=cuda`` at the first array creation, ...).

Library code never asks the configured backend what to compute on: it infers the array
module from its input arrays with :func:`get_xp`. The configured backend only decides where
NEW arrays are born (data sets, initial weights) and what :func:`to_device` moves to.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import platform
import sys
import threading
import warnings
from typing import Any, Iterator

import numpy

__all__ = [
    "BackendFallbackWarning",
    "BackendUnavailableError",
    "device_info",
    "get_backend",
    "get_xp",
    "is_cupy_array",
    "set_backend",
    "synchronize",
    "to_device",
    "to_host",
    "to_module",
    "use_backend",
]

BACKENDS = ("cpu", "cuda", "auto")
_INSTALL_HINT = (
    "To use the GPU, install the CuPy build that matches your CUDA driver "
    "(pip install 'xpopt[cuda12]' or 'xpopt[cuda13]') on a machine whose `nvidia-smi` "
    "lists a device. Set XPOPT_BACKEND=cpu to run on the CPU without this message."
)


class BackendUnavailableError(RuntimeError):
    """The CUDA backend was asked for in strict mode and cannot be used."""


class BackendFallbackWarning(RuntimeWarning):
    """The CUDA backend was asked for, cannot be used, and xpopt runs on the CPU instead."""


# --------------------------------------------------------------------------- CuPy probe
_probe_lock = threading.Lock()
_probe_result: tuple[Any, str | None] | None = None  # (cupy module or None, why not)


def _probe_cuda() -> tuple[Any, str | None]:
    """Import CuPy and look for a device, once; remember the module or why it failed."""
    global _probe_result
    if _probe_result is not None:
        return _probe_result
    with _probe_lock:
        if _probe_result is None:
            _probe_result = _probe_cuda_uncached()
    return _probe_result


def _probe_cuda_uncached() -> tuple[Any, str | None]:
    try:
        import cupy  # noqa: PLC0415  (the one CuPy import of the project)
    except Exception as exc:  # ImportError, or a broken install raising anything else
        return None, f"CuPy is not importable ({type(exc).__name__}: {exc})."
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError: no driver, driver too old, ...
        return None, (
            f"CuPy {cupy.__version__} is installed but CUDA cannot be used "
            f"({type(exc).__name__}: {exc})."
        )
    if count < 1:
        return None, f"CuPy {cupy.__version__} is installed but sees zero CUDA devices."
    return cupy, None


def _reset_probe() -> None:
    """Forget the probe's answer, so that the next use imports ``cupy`` again.

    :mod:`xpopt.testing` calls this when it puts its CuPy stand-in into (and takes it out
    of) ``sys.modules``; nothing else should need it.
    """
    global _probe_result, _warned
    with _probe_lock:
        _probe_result = None
    with _warned_lock:
        _warned = False


def cuda_unavailable_reason() -> str | None:
    """Why the CUDA backend cannot be used here, or None when it can.

    Calling this imports CuPy (if installed) and initialises the CUDA driver.
    """
    return _probe_cuda()[1]


# ------------------------------------------------------------------ configured backend
_default: dict[str, Any] = {"name": None, "strict": None}  # process-wide, set_backend
_context: contextvars.ContextVar[tuple[str, bool | None] | None] = contextvars.ContextVar(
    "xpopt_backend", default=None
)
_warned_lock = threading.Lock()
_warned = False


def _env_strict() -> bool:
    return os.environ.get("XPOPT_STRICT", "").strip().lower() in ("1", "true", "yes", "on")


def _check_name(name: str, origin: str) -> str:
    if not isinstance(name, str) or name.strip().lower() not in BACKENDS:
        raise ValueError(f"{origin}: backend must be one of {BACKENDS}, got {name!r}")
    return name.strip().lower()


def _requested() -> tuple[str, bool]:
    """The backend asked for (before fallback) and whether strict mode is on."""
    ctx = _context.get()
    if ctx is not None:
        name, strict = ctx
    else:
        name, strict = _default["name"], _default["strict"]
    if name is None:
        name = _check_name(os.environ.get("XPOPT_BACKEND", "cpu") or "cpu", "XPOPT_BACKEND")
    if strict is None:
        strict = _default["strict"] if _default["strict"] is not None else _env_strict()
    return name, bool(strict)


def _resolve(name: str, strict: bool, stacklevel: int = 3) -> str:
    global _warned
    if name == "cpu":
        return "cpu"
    cupy, why = _probe_cuda()
    if cupy is not None:
        return "cuda"
    if name == "auto":
        return "cpu"
    message = f"The 'cuda' backend was asked for but cannot be used: {why} {_INSTALL_HINT}"
    if strict:
        raise BackendUnavailableError(message)
    with _warned_lock:
        first, _warned = not _warned, True
    if first:
        # stacklevel: point at the user's call (set_backend, use_backend, ...), not at xpopt
        warnings.warn(message + " Falling back to the CPU.", BackendFallbackWarning,
                      stacklevel=stacklevel)
    return "cpu"


def set_backend(name: str, *, strict: bool | None = None) -> str:
    """Choose the process-wide backend where new arrays are born.

    Parameters
    ----------
    name : {"cpu", "cuda", "auto"}
        ``"cuda"`` without a usable GPU warns once (:class:`BackendFallbackWarning`) and
        falls back to the CPU; ``"auto"`` picks CUDA when usable, silently.
    strict : bool, optional
        Raise :class:`BackendUnavailableError` instead of falling back. Defaults to the
        ``XPOPT_STRICT`` environment variable.

    Returns
    -------
    str
        The effective backend, ``"cpu"`` or ``"cuda"``.
    """
    name = _check_name(name, "set_backend")
    effective = _resolve(name, strict if strict is not None else _env_strict(), stacklevel=3)
    _default["name"], _default["strict"] = name, strict
    return effective


def get_backend() -> str:
    """The effective backend (``"cpu"`` or ``"cuda"``) for new arrays in this context."""
    return _resolve(*_requested())


@contextlib.contextmanager
def use_backend(name: str, *, strict: bool | None = None) -> Iterator[str]:
    """Context manager: a backend for the ``with`` block only (thread- and task-local).

    Yields the effective backend, ``"cpu"`` or ``"cuda"``.
    """
    name = _check_name(name, "use_backend")
    if strict is None:
        strict = _requested()[1]
    effective = _resolve(name, strict, stacklevel=4)
    token = _context.set((name, strict))
    try:
        yield effective
    finally:
        _context.reset(token)


# --------------------------------------------------------------------- array modules
def is_cupy_array(x: Any) -> bool:
    """True for an array of the ``cupy`` module in use, decided without importing CuPy.

    No CuPy array can exist before ``cupy`` was imported, so an absent module means False.
    The module in ``sys.modules`` decides: the real CuPy, or the stand-in of
    :mod:`xpopt.testing` while it is active.
    """
    cupy = sys.modules.get("cupy")
    kind = getattr(cupy, "ndarray", None)
    return kind is not None and isinstance(x, kind)


def _backend_module(name: str):
    return _probe_cuda()[0] if name == "cuda" else numpy


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
        kinds = ", ".join(f"{i}: {'cupy' if is_cupy_array(a) else 'numpy'}" for i, a in enumerate(arrays)
                          if a is not None and type(a) not in (bool, int, float, complex))
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


# ------------------------------------------------------------------------- transfers
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
    raise TypeError(f"{what}: cannot move a {type(x).__name__}; expected arrays, dicts, lists, tuples")


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
    name = _resolve(_check_name(backend, "to_device"), _requested()[1]) if backend else get_backend()
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


def synchronize() -> None:
    """Wait for the GPU's queued work (a no-op where CUDA was never used)."""
    if "cupy" in sys.modules and _probe_result is not None and _probe_result[0] is not None:
        _probe_result[0].cuda.get_current_stream().synchronize()


# ------------------------------------------------------------------------- reporting
def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_info(backend: str | None = None) -> dict[str, Any]:
    """A description of the device that the backend (default: the configured one) uses.

    Returns
    -------
    dict
        For the CPU: ``backend, device, cores, numpy``. For CUDA also ``memory_bytes,
        compute_capability, cupy, cuda_runtime, cuda_driver``.
    """
    name = get_backend() if backend is None else _resolve(_check_name(backend, "device_info"), False)
    info: dict[str, Any] = {
        "backend": name,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
    }
    if name == "cpu":
        info.update(device=_cpu_name(), cores=os.cpu_count())
        return info
    cupy = _backend_module("cuda")
    dev = cupy.cuda.Device()
    props = cupy.cuda.runtime.getDeviceProperties(dev.id)
    raw_name = props["name"]
    info.update(
        device=raw_name.decode() if isinstance(raw_name, bytes) else str(raw_name),
        device_id=dev.id,
        memory_bytes=int(props["totalGlobalMem"]),
        compute_capability=f"{props['major']}.{props['minor']}",
        cupy=cupy.__version__,
        cuda_runtime=cupy.cuda.runtime.runtimeGetVersion(),
        cuda_driver=cupy.cuda.runtime.driverGetVersion(),
    )
    return info


def format_device_info(info: dict[str, Any]) -> str:
    """``device_info()`` as aligned ``key: value`` lines."""
    width = max(len(k) for k in info)
    return "\n".join(f"{k:<{width}} : {v}" for k, v in info.items())
