"""pytest-benchmark set-up for ``pytest bench/``: copy-bandwidth fixtures and run metadata.

- ``cpu_copy_bandwidth`` / ``gpu_copy_bandwidth``: the device's copy bandwidth MEASURED IN THIS
  RUN (bytes read + written per second), the yardstick of the optimizer benchmarks.
- ``pytest_benchmark_update_machine_info``: records the CPU, the GPU (name, memory, CUDA and
  CuPy versions) or why there is none, PyTorch, BLAS and the copy bandwidths with each run.
- Skipped contestants and their reasons go into the saved JSON (``xpopt_skipped``), so the
  report says what was not measured and why.
- ``XPOPT_BENCH_CUPY=standin`` runs the CuPy contestants on the stand-in of
  :mod:`xpopt.testing` (the smoke pass in CI does, so their code cannot rot): their
  timings are host timings of a NumPy stand-in, never GPU figures, and the run's
  machine_info names the stand-in as the device.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # harness, course_code

import harness  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _cupy_standin_if_asked():
    """The whole session on the CuPy stand-in when ``XPOPT_BENCH_CUPY=standin``."""
    if os.environ.get("XPOPT_BENCH_CUPY", "").strip() != "standin":
        yield
        return
    from xpopt.testing import cupy_standin  # noqa: PLC0415

    with cupy_standin():
        yield


@pytest.fixture(scope="session")
def cpu_copy_bandwidth() -> dict:
    """The host's copy bandwidth (best of one thread and all cores), measured once per session."""
    if "cpu" not in harness.COPY_BANDWIDTH:
        # 256 MiB per buffer: far beyond any cache, so this is DRAM bandwidth.
        nbytes = (16 if harness.QUICK else 256) * 2**20
        harness.COPY_BANDWIDTH["cpu"] = harness.measure_cpu_copy(nbytes)
    return harness.COPY_BANDWIDTH["cpu"]


@pytest.fixture(scope="session")
def gpu_copy_bandwidth() -> dict:
    """The GPU's device-to-device copy bandwidth, measured once per session (skip without one)."""
    cupy = harness.require_cupy()
    if "gpu" not in harness.COPY_BANDWIDTH:
        nbytes = (64 if harness.QUICK else 1024) * 2**20
        harness.COPY_BANDWIDTH["gpu"] = harness.measure_gpu_copy(cupy, nbytes)
    return harness.COPY_BANDWIDTH["gpu"]


def pytest_benchmark_update_machine_info(config, machine_info):
    """Add xpopt's description of the devices (``xpopt.device_info``) to the saved run."""
    machine_info["xpopt"] = harness.machine_description()


def pytest_runtest_logreport(report):
    """Remember each skipped benchmark and why, for the report's "not measured" list."""
    if report.skipped and report.when in ("setup", "call"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        harness.SKIPPED.append(
            {"nodeid": report.nodeid, "reason": reason.removeprefix("Skipped: ")}
        )


def pytest_benchmark_update_json(config, benchmarks, output_json):
    """Save the skipped contestants beside the measured ones."""
    output_json["xpopt_skipped"] = list(harness.SKIPPED)
