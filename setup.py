"""Build the optional CPU kernels (``xpopt._hostkernels``) from the kernel specs.

Everything else about the package is in pyproject.toml. Each update rule's spec lives beside
its NumPy twin in ``src/xpopt/optim/<rule>.py``; the C source is generated from the registry
every rule fills, ``xpopt.kernels.SPECS``, by importing xpopt from ``src/`` (NumPy is a
build requirement for that: pyproject.toml's [build-system]; the C code itself uses no NumPy
header, so any NumPy will do). It is compiled without floating-point contraction so that it
rounds exactly as NumPy does. The extension is optional: without a C compiler the install
still succeeds and xpopt runs its NumPy path.
"""

import importlib
import pathlib
import sys

from setuptools import Extension, setup

ROOT = pathlib.Path(__file__).resolve().parent
SRC = ROOT / "src"


def _host_c_source() -> str:
    """The C source of every registered spec, from the xpopt in ``src/`` (not an installed one)."""
    sys.path.insert(0, str(SRC))
    try:
        kernels = importlib.import_module("xpopt.kernels")
    finally:
        sys.path.remove(str(SRC))
    where = pathlib.Path(kernels.__file__).resolve()
    if where.parent.parent != SRC:
        raise RuntimeError(f"setup.py imported xpopt from {where}, not from {SRC}")
    return kernels.host_c_source(python_module="_hostkernels")


def _host_extension() -> Extension:
    source = ROOT / "build" / "xpopt-host" / "_hostkernels.c"
    source.parent.mkdir(parents=True, exist_ok=True)
    text = _host_c_source()
    if not source.exists() or source.read_text() != text:
        source.write_text(text)
    if sys.platform == "win32":
        flags = ["/O2", "/fp:precise"]
    else:
        flags = ["-O3", "-std=c99", "-ffp-contract=off", "-fno-math-errno"]
    return Extension(
        "xpopt._hostkernels",
        sources=[str(source.relative_to(ROOT))],
        extra_compile_args=flags,
        optional=True,
    )


setup(ext_modules=[_host_extension()])
