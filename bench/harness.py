"""What the benchmark files share: sizes, contestant gates, timing and bandwidth helpers.

Conventions of the suite:

- Every contestant of one operation at one size shares a ``benchmark.group``, so
  pytest-benchmark prints them in one table and ``bench/report.py`` can take ratios.
- ``benchmark.extra_info`` carries ``contestant`` (a human label), ``device`` (``"cpu"`` or
  ``"gpu"``), ``baseline`` (True for the course's code, the denominator of the ratios), and,
  where it applies, ``reference`` (``"copy"``: a plain copy of the same bytes) and the
  bandwidth figures.
- A contestant that is not installed, or has no device, is skipped with the reason.
- GPU work is synchronised INSIDE the timed function, and warmed up first, so kernel
  compilation and CuPy's or PyTorch's first-call set-up are never counted.
- ``XPOPT_BENCH_QUICK=1`` shrinks every size and runs one round: a smoke pass that keeps the
  suite from rotting. Its figures mean nothing.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy
import pytest

QUICK = os.environ.get("XPOPT_BENCH_QUICK", "").strip().lower() in ("1", "true", "yes", "on")

# Measured copy bandwidths (bytes read + written per second), by device; filled by the
# session fixtures in conftest.py and written into the run's machine_info.
COPY_BANDWIDTH: dict[str, dict[str, Any]] = {}

# Skipped contestants with their reasons, written into the JSON for the report.
SKIPPED: list[dict[str, str]] = []


# ----------------------------------------------------------------------------- gates
def gpu_unavailable_reason() -> str | None:
    """None where CuPy has a usable CUDA device, else why not."""
    from xpopt.backend import cuda_unavailable_reason  # noqa: PLC0415

    return cuda_unavailable_reason()


def require_cupy():
    """The ``cupy`` module, or skip the calling benchmark with the reason."""
    why = gpu_unavailable_reason()
    if why is not None:
        pytest.skip(f"no usable GPU: {why}")
    import cupy  # noqa: PLC0415

    return cupy


def require_torch():
    """The ``torch`` module, or skip: PyTorch is an optional contestant, never a dependency."""
    try:
        import torch  # noqa: PLC0415
    except ImportError as exc:
        pytest.skip(f"PyTorch is not installed ({exc}); pip install torch to add its contestants")
    return torch


def require_torch_device(device: str):
    """``(torch, torch.device)`` for ``"cpu"`` or ``"cuda"``, or skip without that device."""
    torch = require_torch()
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip(f"PyTorch {torch.__version__} sees no CUDA device")
    return torch, torch.device(device)


def sync_for(contestant: str) -> Callable[[], None]:
    """The synchronisation the contestant's timed function must end with."""
    if "cupy" in contestant:
        from xpopt import synchronize  # noqa: PLC0415

        return synchronize
    if "torch" in contestant and "cuda" in contestant:
        import torch  # noqa: PLC0415

        return torch.cuda.synchronize
    return lambda: None


# ------------------------------------------------------------------------------ timing
def plan(rounds: int, warmup: int = 1, iterations: int = 1) -> dict[str, int]:
    """pedantic() arguments, shrunk to one round (and at most one warm-up) when QUICK."""
    if QUICK:
        return {"rounds": 1, "warmup_rounds": min(warmup, 1), "iterations": 1}
    return {"rounds": rounds, "warmup_rounds": warmup, "iterations": iterations}


def measure(
    benchmark,
    fn: Callable[[], Any],
    *,
    group: str,
    contestant: str,
    device: str,
    rounds: int,
    warmup: int = 1,
    iterations: int = 1,
    baseline: bool = False,
    **info: Any,
) -> Any:
    """Time ``fn`` with ``benchmark.pedantic`` and label it; returns ``fn``'s last result.

    Parameters
    ----------
    benchmark : pytest-benchmark fixture
    fn : callable
        Takes no arguments; must synchronise the device itself before returning.
    group : str
        The operation and size: contestants of one group share a table.
    contestant : str
        The human label in the report.
    device : {"cpu", "gpu"}
    rounds, warmup, iterations : int
        As in ``benchmark.pedantic``; QUICK mode runs one round.
    baseline : bool
        True for the course's code: the report's "x faster" column divides by it.
    **info
        More ``extra_info`` (a note, the reference role, sizes).
    """
    benchmark.group = group
    benchmark.extra_info.update(
        contestant=contestant, device=device, baseline=baseline, quick=QUICK, **info
    )
    return benchmark.pedantic(fn, **plan(rounds, warmup, iterations))


def median_seconds(benchmark) -> float | None:
    """The median time of the benchmark just run, or None under ``--benchmark-disable``."""
    stats = getattr(benchmark, "stats", None)
    if not stats:
        return None
    return float(stats.stats.median)


def need_copy_bandwidth(request, device: str) -> None:
    """Make sure this run's copy bandwidth of ``device`` is measured (a session fixture)."""
    request.getfixturevalue("gpu_copy_bandwidth" if device == "gpu" else "cpu_copy_bandwidth")


def add_bandwidth(benchmark, nbytes: int, device: str) -> None:
    """Put the effective bandwidth (bytes moved / median time) and its fraction of this
    run's measured copy bandwidth on ``device`` into ``extra_info``."""
    benchmark.extra_info["bytes_per_call"] = int(nbytes)
    median = median_seconds(benchmark)
    if median is None or median <= 0:
        return
    bandwidth = nbytes / median
    benchmark.extra_info["bandwidth_GBps"] = bandwidth / 1e9
    copy = COPY_BANDWIDTH.get(device)
    if copy:
        benchmark.extra_info["copy_GBps"] = copy["bytes_per_s"] / 1e9
        benchmark.extra_info["copy_fraction"] = bandwidth / copy["bytes_per_s"]


# ------------------------------------------------------------------ copy bandwidth
def measure_cpu_copy(nbytes: int, repeats: int = 7) -> dict[str, Any]:
    """The host's copy bandwidth: ``numpy.copyto`` of ``nbytes``, on one thread and on one
    thread per core (NumPy releases the GIL while copying); the faster is the yardstick.

    One thread is the ceiling of a plain NumPy update rule (NumPy's elementwise operations run
    on one thread); xpopt splits large NumPy updates among threads, so the device's figure is
    the best of both. Counted as bytes read + written.
    """
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    n = max(nbytes // 4, 1)
    src = numpy.ones(n, dtype=numpy.float32)
    dst = numpy.empty_like(src)
    numpy.copyto(dst, src)  # fault the pages in: first touch is not bandwidth
    threads = max(1, os.cpu_count() or 1)
    bounds = [(i * n // threads, (i + 1) * n // threads) for i in range(threads)]

    def timed(copy) -> float:
        copy()  # warm
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            copy()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    moved = 2 * src.nbytes
    one = timed(lambda: numpy.copyto(dst, src))
    with ThreadPoolExecutor(max_workers=threads) as pool:

        def parallel():
            list(pool.map(lambda b: numpy.copyto(dst[b[0] : b[1]], src[b[0] : b[1]]), bounds))

        many = timed(parallel)
    best = min(one, many)
    return {
        "bytes": moved,
        "median_s": best,
        "bytes_per_s": moved / best,
        "one_thread_bytes_per_s": moved / one,
        "threads": threads,
        "all_threads_bytes_per_s": moved / many,
        "how": (
            f"numpy.copyto of {src.nbytes / 2**20:.0f} MiB float32, median of {repeats}, "
            f"best of 1 thread ({moved / one / 1e9:.1f} GB/s) and {threads} threads "
            f"({moved / many / 1e9:.1f} GB/s)"
        ),
    }


def measure_gpu_copy(cupy, nbytes: int, repeats: int = 20) -> dict[str, Any]:
    """A device-to-device copy of ``nbytes``, timed with CUDA events (bytes read + written)."""
    n = max(nbytes // 4, 1)
    src = cupy.ones(n, dtype=cupy.float32)
    dst = cupy.empty_like(src)
    cupy.copyto(dst, src)  # warm-up: allocator and first launch
    cupy.cuda.get_current_stream().synchronize()
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    times = []
    for _ in range(repeats):
        start.record()
        cupy.copyto(dst, src)
        end.record()
        end.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, end) / 1e3)
    median = statistics.median(times)
    moved = 2 * src.nbytes
    del src, dst
    cupy.get_default_memory_pool().free_all_blocks()
    return {
        "bytes": moved,
        "median_s": median,
        "bytes_per_s": moved / median,
        "how": f"cupy.copyto of {n * 4 / 2**20:.0f} MiB float32 on the device, CUDA events, "
        f"median of {repeats}",
    }


# ------------------------------------------------------------------- machine info
def machine_description() -> dict[str, Any]:
    """CPU, GPU (or why none), versions, BLAS and the copy bandwidths of this run."""
    import xpopt  # noqa: PLC0415

    info: dict[str, Any] = {
        "quick": QUICK,
        "xpopt": xpopt.__version__,
        "cpu": xpopt.device_info("cpu"),
    }
    why = gpu_unavailable_reason()
    info["gpu"] = xpopt.device_info("cuda") if why is None else {"unavailable": why}
    try:
        import torch  # noqa: PLC0415

        info["torch"] = {
            "version": torch.__version__,
            "threads": torch.get_num_threads(),
            "cuda": torch.version.cuda,
            "cuda_available": bool(torch.cuda.is_available()),
        }
    except ImportError:
        info["torch"] = None
    try:
        from threadpoolctl import threadpool_info  # noqa: PLC0415

        info["blas"] = [
            {
                k: pool.get(k)
                for k in ("user_api", "internal_api", "version", "num_threads", "architecture")
            }
            for pool in threadpool_info()
        ]
    except ImportError:
        info["blas"] = None
    info["env"] = {
        k: os.environ[k]
        for k in sorted(os.environ)
        if k.startswith(("OPENBLAS_", "OMP_", "MKL_", "XPOPT_"))
    }
    info["copy_bandwidth"] = dict(COPY_BANDWIDTH)
    return info


# ------------------------------------------------------------------------- sizes
def fmt_count(n: int) -> str:
    """``1048576 -> "1M"``, ``65536 -> "64K"``: binary multiples, as the sizes are chosen."""
    for unit, scale in (("M", 2**20), ("K", 2**10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale}{unit}"
    return str(n)
