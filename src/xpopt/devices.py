"""What device a backend computes on: ``device_info`` and its text form.

Part of :mod:`xpopt.backend`'s public face.
"""

from __future__ import annotations

import os
import platform
from typing import Any

import numpy

from .backend import Choice, _backend_module, _check_name, _resolve, get_backend


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
    name = (
        get_backend()
        if backend is None
        else _resolve(Choice(_check_name(backend, "device_info"), False))
    )
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
