"""Shared test machinery: the ``xp`` fixture, ``assert_close``, GPU and compiler gates.

- ``xp`` runs a test once per array module present: ``numpy`` always, ``cupy`` marked ``gpu``
  and skipped, with the reason, where CuPy has no usable device.
- ``assert_close(actual, desired)`` moves both sides to the host and checks type of array
  module agreement, dtype, shape and values with per-dtype tolerances.
- Under ``CI=true`` a test that needs nvcc fails instead of skipping when it is missing.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # course_reference, kernel harness

from xpopt import backend  # noqa: E402

IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")

# rtol, atol per dtype: a few ulps of accumulated rounding for a handful of operations.
TOLERANCES = {
    numpy.dtype(numpy.float64): (1e-12, 1e-14),
    numpy.dtype(numpy.float32): (1e-5, 1e-7),
}


def gpu_unavailable_reason() -> str | None:
    """None when CuPy has a usable CUDA device, else why not (imports CuPy if installed)."""
    return backend.cuda_unavailable_reason()


REQUIRE_GPU = os.environ.get("XPOPT_REQUIRE_GPU", "").strip() == "1"


def require_gpu() -> None:
    """Skip the calling test, visibly, where there is no usable GPU.

    Under ``XPOPT_REQUIRE_GPU=1`` (the GPU CI job, ci/gpu.sh) a missing GPU is a failure
    instead: there, a skipped GPU test would be a check that silently did not run.
    """
    why = gpu_unavailable_reason()
    if why is not None:
        if REQUIRE_GPU:
            pytest.fail(f"XPOPT_REQUIRE_GPU=1 but there is no usable GPU: {why}")
        pytest.skip(f"no usable GPU: {why}")


def require_nvcc() -> str:
    """The path of nvcc; skip without one, except under CI=true where that is a failure."""
    path = shutil.which("nvcc") or next(
        (p for p in ("/usr/local/cuda/bin/nvcc",) if os.path.exists(p)), None)
    if path is None:
        if IN_CI:
            pytest.fail("nvcc (the CUDA compiler) is required under CI=true but was not found")
        pytest.skip("nvcc (the CUDA compiler) is not installed on this machine")
    return path


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.gpu)])
def xp(request):
    """The array module under test: numpy, and cupy where a GPU is usable."""
    if request.param == "numpy":
        return numpy
    require_gpu()
    import cupy

    return cupy


def assert_close(actual, desired, *, rtol: float | None = None, atol: float | None = None,
                 exact: bool = False) -> None:
    """Host copies of both sides have the same dtype, shape and (close or equal) values."""
    a = numpy.asarray(backend.to_host(actual))
    d = numpy.asarray(backend.to_host(desired))
    assert a.dtype == d.dtype, f"dtype {a.dtype} != {d.dtype}"
    assert a.shape == d.shape, f"shape {a.shape} != {d.shape}"
    if exact:
        numpy.testing.assert_array_equal(a, d)
        return
    default_rtol, default_atol = TOLERANCES.get(a.dtype, (1e-7, 0))
    numpy.testing.assert_allclose(a, d, rtol=default_rtol if rtol is None else rtol,
                                  atol=default_atol if atol is None else atol)


@pytest.fixture(autouse=True)
def _isolated_backend(monkeypatch):
    """Each test starts from the default backend, whatever the previous one set."""
    monkeypatch.delenv("XPOPT_BACKEND", raising=False)
    monkeypatch.delenv("XPOPT_STRICT", raising=False)
    saved = dict(backend._default)
    backend._default.update(name=None, strict=None)
    yield
    backend._default.update(saved)
