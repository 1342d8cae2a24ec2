"""Build the optional CPU kernels (``xpopt._hostkernels``) from the kernel specs.

Everything else about the package is in pyproject.toml. The C source is generated from
``src/xpopt/kernels.py`` (the same ``operation`` text as the CUDA kernels), compiled without
floating-point contraction so that it rounds exactly as NumPy does. The extension is
optional: without a C compiler the install still succeeds and xpopt runs its NumPy path.
"""

import importlib.util
import pathlib
import sys

from setuptools import Extension, setup

ROOT = pathlib.Path(__file__).resolve().parent


def _kernel_specs():
    """xpopt.kernels, loaded from its file: it needs nothing but the standard library."""
    spec = importlib.util.spec_from_file_location("_xpopt_build_kernels", ROOT / "src/xpopt/kernels.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building classes
    spec.loader.exec_module(module)
    return module


def _host_extension() -> Extension:
    source = ROOT / "build" / "xpopt-host" / "_hostkernels.c"
    source.parent.mkdir(parents=True, exist_ok=True)
    text = _kernel_specs().host_c_source(python_module="_hostkernels")
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
