"""Compiling C++ for the host, cached on disk, and the flush-to-zero switch (x86 MXCSR).

Shared libraries are cached by a hash of their source and flags under
``$XPOPT_STANDIN_CACHE`` or ``<tempdir>/xpopt-standin-<user>``. Each is compiled under a
temporary name and renamed into place, so concurrent pytest processes never load a
half-written file.
"""

from __future__ import annotations

import contextlib
import ctypes
import getpass
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator

import numpy

# No contraction and IEEE semantics: each operation is rounded once, as NumPy rounds it
# (the kernels of xpopt are compiled with --fmad=false on the GPU for the same reason).
CXXFLAGS = ("-O2", "-shared", "-fPIC", "-ffp-contract=off", "-fno-fast-math", "-std=c++17")
FTZ_DAZ = 0x8040  # MXCSR bit 15 (flush-to-zero) and bit 6 (denormals-are-zero)

_lock = threading.Lock()
_loaded: dict[str, ctypes.CDLL] = {}


def is_x86_64() -> bool:
    """True where MXCSR exists (the flush-to-zero emulation needs it)."""
    return platform.machine().lower() in ("x86_64", "amd64")


def cache_dir() -> str:
    """Where compiled libraries are kept (created on demand)."""
    path = os.environ.get("XPOPT_STANDIN_CACHE")
    if not path:
        try:
            user = getpass.getuser()
        except Exception:  # no login name (containers): the uid still separates users
            user = str(os.getuid()) if hasattr(os, "getuid") else "user"
        path = os.path.join(tempfile.gettempdir(), f"xpopt-standin-{user}")
    os.makedirs(path, exist_ok=True)
    return path


def find_compiler() -> str:
    """The C++ compiler on PATH (``$CXX``, ``c++`` or ``g++``), or a clear error."""
    for name in (os.environ.get("CXX"), "c++", "g++"):
        path = shutil.which(name) if name else None
        if path:
            return path
    raise RuntimeError(
        "xpopt.testing runs ElementwiseKernel operation text on the host and needs a C++ "
        "compiler: none of $CXX, c++, g++ was found on PATH (install g++, e.g. "
        "apt-get install g++)."
    )


def build(source: str, label: str = "kernel") -> ctypes.CDLL:
    """Compile ``source`` (C++) into a shared library, or reuse the cached one, and load it."""
    compiler = find_compiler()
    key = hashlib.sha256("\0".join([compiler, *CXXFLAGS, source]).encode()).hexdigest()[:32]
    with _lock:
        lib = _loaded.get(key)
        if lib is not None:
            return lib
        directory = cache_dir()
        target = os.path.join(directory, f"{label}-{key}.so")
        if not os.path.exists(target):
            fd, src_path = tempfile.mkstemp(suffix=".cpp", prefix=f"{label}-", dir=directory)
            with os.fdopen(fd, "w") as f:
                f.write(source)
            tmp_so = src_path[:-4] + ".so"
            try:
                done = subprocess.run(
                    [compiler, *CXXFLAGS, "-o", tmp_so, src_path], capture_output=True, text=True
                )
                if done.returncode != 0:
                    raise RuntimeError(
                        f"xpopt.testing: the host build of {label!r} failed ({compiler}):\n"
                        f"{done.stderr}\n--- source ---\n{source}"
                    )
                os.replace(tmp_so, target)  # atomic: other processes see all or nothing
            finally:
                for leftover in (src_path, tmp_so):
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(leftover)
        lib = ctypes.CDLL(target)
        _loaded[key] = lib
        return lib


_MXCSR_SOURCE = """
#include <xmmintrin.h>
extern "C" unsigned xpopt_get_mxcsr(void) { return _mm_getcsr(); }
extern "C" void xpopt_set_mxcsr(unsigned value) { _mm_setcsr(value); }
"""
_mxcsr = None


def _mxcsr_lib():
    global _mxcsr
    if _mxcsr is None:
        if not is_x86_64():
            raise NotImplementedError(
                "flush-to-zero emulation needs x86-64 (MXCSR); this machine is "
                f"{platform.machine()}: float32 work would silently keep subnormals that a "
                "GPU under CuPy flushes to zero"
            )
        lib = build(_MXCSR_SOURCE, "mxcsr")
        lib.xpopt_get_mxcsr.restype = ctypes.c_uint
        lib.xpopt_get_mxcsr.argtypes = []
        lib.xpopt_set_mxcsr.restype = None
        lib.xpopt_set_mxcsr.argtypes = [ctypes.c_uint]
        _mxcsr = lib
    return _mxcsr


@contextlib.contextmanager
def ftz_mode() -> Iterator[None]:
    """Flush-to-zero and denormals-are-zero on the calling thread, for the ``with`` block.

    NumPy code run inside computes float32 as a GPU under CuPy does (CuPy compiles every
    kernel with ``-ftz=true``): subnormal inputs read as zero and subnormal results become
    signed zero. On x86 the flags also apply to float64, which a GPU does not flush: use
    this for float32 references only. Raises NotImplementedError off x86-64.
    """
    lib = _mxcsr_lib()
    old = lib.xpopt_get_mxcsr()
    lib.xpopt_set_mxcsr(old | FTZ_DAZ)
    try:
        yield
    finally:
        lib.xpopt_set_mxcsr(old)


def flush_subnormals(a) -> numpy.ndarray:
    """A copy of the NumPy array ``a`` with subnormal values replaced by signed zeros.

    Parameters
    ----------
    a : array_like of floats

    Returns
    -------
    numpy.ndarray
        Same shape and dtype; integers and booleans are returned copied unchanged.
    """
    out = numpy.array(a, copy=True)
    if out.dtype.kind != "f":
        return out
    tiny = numpy.finfo(out.dtype).smallest_normal
    sub = (out != 0) & (numpy.abs(out) < tiny)
    out[sub] = numpy.copysign(out.dtype.type(0), out[sub])
    return out
