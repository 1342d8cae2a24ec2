"""Shared test machinery: the ``xp`` fixture, ``assert_close``, GPU and compiler gates.

- ``--cupy=auto|standin|real`` chooses what a GPU test runs on. ``real``: CuPy on a usable
  device, else the test skips with the reason. ``standin``: :mod:`xpopt.testing`'s strict
  CuPy stand-in, active for the whole test (``import cupy`` inside it gets the stand-in).
  ``auto`` (the default): real CuPy where a GPU is usable, otherwise the stand-in.
- A test marked ``gpu`` runs on that CuPy; one marked ``real_gpu`` needs a real device
  (timings, memory-pool behaviour) and skips, visibly, on the stand-in.
- ``xp`` runs a test once per array module: ``numpy`` and ``cupy`` (marked ``gpu``).
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
CUPY_CHOICES = ("auto", "standin", "real")


def pytest_addoption(parser):
    parser.addoption(
        "--cupy",
        choices=CUPY_CHOICES,
        default="auto",
        help="what GPU tests run on: 'real' CuPy (skip without a GPU), the 'standin' of "
        "xpopt.testing, or 'auto' (default: real CuPy where a GPU is usable, else the "
        "stand-in)",
    )


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "real_gpu: needs a real CUDA device (timings, memory "
        "pool); skipped, with the reason, on the stand-in",
    )


_REAL_GPU_WHY: list = []  # the real probe's answer, taken once before any stand-in runs


def _real_gpu_reason() -> str | None:
    if not _REAL_GPU_WHY:
        _REAL_GPU_WHY.append(gpu_unavailable_reason())
    return _REAL_GPU_WHY[0]


def cupy_mode(config) -> str:
    """``"real"`` or ``"standin"``: what this session's GPU tests run on."""
    asked = config.getoption("--cupy")
    if asked == "auto":
        return "real" if _real_gpu_reason() is None else "standin"
    return asked


@pytest.fixture(autouse=True)
def _cupy_for_gpu_tests(request):
    """Tests marked ``gpu`` run on the session's CuPy: the stand-in is put in place for the
    whole test (fixtures included: this fixture is set up before the others it precedes)."""
    node = request.node
    if node.get_closest_marker("gpu") is None and node.get_closest_marker("real_gpu") is None:
        yield None
        return
    mode = cupy_mode(request.config)
    if node.get_closest_marker("real_gpu") is not None or mode == "real":
        why = _real_gpu_reason()
        if why is not None:
            if REQUIRE_GPU:
                pytest.fail(f"XPOPT_REQUIRE_GPU=1 but there is no usable GPU: {why}")
            pytest.skip(
                f"no usable GPU: {why}"
                + (
                    ""
                    if mode == "real"
                    else " (this test needs a real device; the CuPy stand-in cannot serve it)"
                )
            )
        yield sys.modules.get("cupy") or __import__("cupy")
        return
    from xpopt.testing import cupy_standin  # noqa: PLC0415

    # strict_scalars: a NumPy scalar of another dtype than the kernel's T is refused.
    # CuPy 14 casts it instead, to the same value; refusing it holds xpopt to its own rule
    # (scalars are computed on the host and handed over as T) so no FP64 value can creep in.
    with cupy_standin(strict_scalars=True) as cupy:
        yield cupy


def require_gpu() -> None:
    """Fail loudly when a test that needs CuPy is not marked for it.

    Tests that run on a GPU are marked ``gpu`` (real CuPy or the stand-in, see
    ``--cupy``) or ``real_gpu``; the autouse fixture above skips them where nothing can
    serve them, and ``XPOPT_REQUIRE_GPU=1`` (ci/gpu.sh) turns that skip into a failure.
    """
    why = gpu_unavailable_reason()
    if why is not None:
        pytest.fail(
            f"this test uses CuPy but no CuPy is usable here ({why}); mark it "
            "@pytest.mark.gpu (real CuPy or the stand-in) or @pytest.mark.real_gpu"
        )


def require_nvcc() -> str:
    """The path of nvcc; skip without one, except under CI=true where that is a failure."""
    path = shutil.which("nvcc") or next(
        (p for p in ("/usr/local/cuda/bin/nvcc",) if os.path.exists(p)), None
    )
    if path is None:
        if IN_CI:
            pytest.fail("nvcc (the CUDA compiler) is required under CI=true but was not found")
        pytest.skip("nvcc (the CUDA compiler) is not installed on this machine")
    return path


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.gpu)])
def xp(request, _cupy_for_gpu_tests):
    """The array module under test: numpy, and cupy (real, or the stand-in: ``--cupy``)."""
    return numpy if request.param == "numpy" else _cupy_for_gpu_tests


def assert_close(
    actual, desired, *, rtol: float | None = None, atol: float | None = None, exact: bool = False
) -> None:
    """Host copies of both sides have the same dtype, shape and (close or equal) values."""
    a = numpy.asarray(backend.to_host(actual))
    d = numpy.asarray(backend.to_host(desired))
    assert a.dtype == d.dtype, f"dtype {a.dtype} != {d.dtype}"
    assert a.shape == d.shape, f"shape {a.shape} != {d.shape}"
    if exact:
        numpy.testing.assert_array_equal(a, d)
        return
    default_rtol, default_atol = TOLERANCES.get(a.dtype, (1e-7, 0))
    numpy.testing.assert_allclose(
        a,
        d,
        rtol=default_rtol if rtol is None else rtol,
        atol=default_atol if atol is None else atol,
    )


@pytest.fixture(autouse=True)
def _isolated_backend(monkeypatch):
    """Each test starts from the default backend, whatever the previous one set."""
    monkeypatch.delenv("XPOPT_BACKEND", raising=False)
    monkeypatch.delenv("XPOPT_STRICT", raising=False)
    saved = backend._process_choice
    backend._process_choice = None
    yield
    backend._process_choice = saved


@pytest.fixture
def cupy(_cupy_for_gpu_tests):
    """The CuPy of a test marked ``gpu``: real CuPy, or the stand-in (see ``--cupy``)."""
    if _cupy_for_gpu_tests is None:
        pytest.fail("the cupy fixture is for tests marked @pytest.mark.gpu")
    return _cupy_for_gpu_tests


@pytest.fixture
def standin(cupy):
    """The stand-in itself, for tests that read its counters (a real GPU has none)."""
    from xpopt.testing import is_standin  # noqa: PLC0415

    if not is_standin(cupy):
        pytest.skip(
            "counts launches and transfers only under the CuPy stand-in "
            "(this session runs GPU tests on real CuPy)"
        )
    return cupy
