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
import sys
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy

__all__ = [
    "BackendFallbackWarning",
    "BackendUnavailableError",
    "Choice",
    "device_info",
    "format_device_info",
    "get_backend",
    "get_xp",
    "is_cupy_array",
    "requested",
    "set_backend",
    "synchronize",
    "to_device",
    "to_host",
    "to_module",
    "use_backend",
]

BACKENDS = ("cpu", "cuda", "auto")
_INSTALL_HINT = (
    "GPU: pip install 'xpopt[cuda]' (CUDA 12) or 'xpopt[cuda13]' (CUDA 13). "
    "CPU without this message: XPOPT_BACKEND=cpu or set_backend('cpu')."
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
    from ._cupy_builds import check_cupy_builds  # noqa: PLC0415

    conflict = check_cupy_builds()  # two builds overwrite each other's files: refuse both
    if conflict is not None:
        return None, conflict
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
@dataclass(frozen=True)
class Choice:
    """A backend asked for: ``name`` in :data:`BACKENDS` (before any fallback), and whether
    a CUDA request that cannot be met raises (``strict``) instead of falling back."""

    name: str
    strict: bool


_process_choice: Choice | None = None  # set_backend; None: the environment decides
_context: contextvars.ContextVar[Choice | None] = contextvars.ContextVar(
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


def requested() -> Choice:
    """The backend asked for here: the innermost :func:`use_backend`, else
    :func:`set_backend`'s, else ``XPOPT_BACKEND`` / ``XPOPT_STRICT`` (default ``cpu``).

    Raises
    ------
    ValueError
        If ``XPOPT_BACKEND`` names no backend.
    """
    choice = _context.get() or _process_choice
    if choice is None:
        name = _check_name(os.environ.get("XPOPT_BACKEND", "").strip() or "cpu", "XPOPT_BACKEND")
        choice = Choice(name, _env_strict())
    return choice


def _resolve(choice: Choice, stacklevel: int = 3) -> str:
    global _warned
    if choice.name == "cpu":
        return "cpu"
    cupy, why = _probe_cuda()
    if cupy is not None:
        return "cuda"
    if choice.name == "auto":
        return "cpu"
    if choice.strict:
        raise BackendUnavailableError(f"The 'cuda' backend cannot be used: {why} {_INSTALL_HINT}")
    with _warned_lock:
        first, _warned = not _warned, True
    if first:
        # stacklevel: point at the user's call (set_backend, use_backend, ...), not at xpopt
        warnings.warn(
            f"The 'cuda' backend cannot be used; falling back to the CPU. {why} {_INSTALL_HINT}",
            BackendFallbackWarning,
            stacklevel=stacklevel,
        )
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
        ``XPOPT_STRICT`` environment variable, read now.

    Returns
    -------
    str
        The effective backend, ``"cpu"`` or ``"cuda"``.
    """
    global _process_choice
    choice = Choice(
        _check_name(name, "set_backend"), _env_strict() if strict is None else bool(strict)
    )
    effective = _resolve(choice, stacklevel=3)
    _process_choice = choice
    return effective


def get_backend() -> str:
    """The effective backend (``"cpu"`` or ``"cuda"``) for new arrays in this context."""
    return _resolve(requested())


@contextlib.contextmanager
def use_backend(name: str | None = None, *, strict: bool | None = None) -> Iterator[str]:
    """Context manager: a backend for the ``with`` block only (thread- and task-local).

    Parameters
    ----------
    name : {"cpu", "cuda", "auto"}, optional
        Defaults to the backend asked for outside the block (:func:`requested`).
    strict : bool, optional
        Defaults to the strictness asked for outside the block.

    Yields
    ------
    str
        The effective backend, ``"cpu"`` or ``"cuda"``.
    """
    outside = requested()
    choice = Choice(
        outside.name if name is None else _check_name(name, "use_backend"),
        outside.strict if strict is None else bool(strict),
    )
    effective = _resolve(choice, stacklevel=4)
    token = _context.set(choice)
    try:
        yield effective
    finally:
        _context.reset(token)


def _backend_module(name: str):
    return _probe_cuda()[0] if name == "cuda" else numpy


def synchronize() -> None:
    """Wait for the GPU's queued work (a no-op where CUDA was never used)."""
    if "cupy" in sys.modules and _probe_result is not None and _probe_result[0] is not None:
        _probe_result[0].cuda.get_current_stream().synchronize()


# The array helpers and the device report live in their own modules; they are part of this
# module's public face (imported last: they build on the names above).
from .arrays import get_xp, is_cupy_array, to_device, to_host, to_module  # noqa: E402
from .devices import device_info, format_device_info  # noqa: E402
