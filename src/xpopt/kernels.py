"""The update kernels' machinery: the spec type, the registry, the CuPy build and the host build.

A rule's spec (its ``operation`` text, parameters and scalars) lives in the rule's module,
``xpopt/optim/<rule>.py``, beside its NumPy twin, and is registered in :data:`SPECS`. Specs
are plain data, importable without a GPU or CuPy: the proof harness in the tests compiles the
same ``operation`` text with nvcc for real GPU architectures and as C++ for the host, and
checks its arithmetic against the NumPy path. This module builds them: as a CuPy
``ElementwiseKernel``, lazily and cached (:func:`get_kernel`, :func:`launch`), and as C for
the CPU (:func:`host_c_source`, compiled by setup.py into ``xpopt._hostkernels``).

Conventions, in the style of CuPy's ``ElementwiseKernel``:

- every non-raw parameter is bound to its element at index ``i`` (inputs const, outputs by
  reference), so ``param``, ``v`` and ``s`` are read and written in place;
- scalars (``lr``, ``beta``, ``one_minus_beta``, the bias corrections ``bias1 = 1 - beta1**t``
  and ``bias2 = 1 - beta2**t``) are computed on the host once per step and passed as ``T``:
  a float32 kernel does no FP64 arithmetic (no double literals, no double scalars);
- kernels are compiled with ``--fmad=false``: no multiply-add contraction, so every
  operation is rounded once, as NumPy rounds it, and the GPU, the host build of the same
  text and NumPy agree bit for bit (the update is memory-bound: FMA would save nothing);
- the expressions keep the course's order of operations, so the rule's NumPy twin computes
  the same values.

One call updates every element given; with the network's flat buffers that is the whole
model in one launch.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

__all__ = [
    "KernelSpec",
    "SPECS",
    "register",
    "get_kernel",
    "launch",
    "HOST_TYPES",
    "host_c_source",
    "host_function_name",
    "GD",
    "MOMENTUM",
    "RMSPROP",
    "ADAM",  # the registry's entries, by __getattr__
]


@dataclass(frozen=True)
class KernelSpec:
    """Everything ``cupy.ElementwiseKernel`` needs, plus which inputs are scalars.

    Attributes
    ----------
    name : str
        Kernel name (a valid C identifier).
    in_params, out_params : str
        CuPy parameter lists, e.g. ``"T grad, T lr"`` and ``"T param"``.
    operation : str
        The loop body, in CUDA C++.
    preamble : str
        Code placed before the kernel.
    scalars : tuple of str
        The in_params passed as one value of type ``T`` rather than as arrays.
    options : tuple of str
        Compiler options (NVRTC and nvcc accept both).
    """

    name: str
    in_params: str
    out_params: str
    operation: str
    preamble: str = ""
    scalars: tuple = ()
    options: tuple = ("--fmad=false",)

    @functools.cached_property
    def params(self) -> tuple[tuple[str, str, str], ...]:
        """``(role, ctype, name)`` for each parameter in call order; role is
        ``"in"``, ``"scalar"`` or ``"out"``."""
        out = []
        for role, text in (("in", self.in_params), ("out", self.out_params)):
            for item in text.split(","):
                ctype, pname = item.split()
                out.append(("scalar" if pname in self.scalars else role, ctype, pname))
        return tuple(out)


# The registry of every update rule's spec, by kernel name. Each rule defines its spec in
# its own module, beside its NumPy twin (``xpopt/optim/gd.py``, ``momentum.py``,
# ``rmsprop.py``, ``adam.py``), and registers it there; importing xpopt imports them all, in
# that order (the order of the host build's functions).
SPECS: dict[str, KernelSpec] = {}

# The rules' specs by their old names here (``xpopt.kernels.ADAM``, ...): aliases of the
# registry's entries, looked up when asked for.
if TYPE_CHECKING:
    GD: KernelSpec
    MOMENTUM: KernelSpec
    RMSPROP: KernelSpec
    ADAM: KernelSpec
_BY_NAME = {
    "GD": "xpopt_gd",
    "MOMENTUM": "xpopt_momentum",
    "RMSPROP": "xpopt_rmsprop",
    "ADAM": "xpopt_adam",
}


def register(spec: KernelSpec) -> KernelSpec:
    """Add ``spec`` to :data:`SPECS` (a rule module does, once, at import); returns it."""
    known = SPECS.setdefault(spec.name, spec)
    if known != spec:
        raise ValueError(f"two different kernel specs are named {spec.name!r}")
    return spec


def _registered() -> dict[str, KernelSpec]:
    """:data:`SPECS`, with every rule registered (importing xpopt has done it already)."""
    from . import optim  # noqa: F401, PLC0415 (the rule modules register their specs)

    return SPECS


def __getattr__(name: str) -> KernelSpec:
    if name in _BY_NAME:
        return _registered()[_BY_NAME[name]]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_BY_NAME})


_cache: dict[str, tuple] = {}  # spec name -> (cupy module, its ElementwiseKernel)
_cache_lock = threading.Lock()


def get_kernel(spec: KernelSpec):
    """The ``cupy.ElementwiseKernel`` for ``spec``, built on first use and cached.

    CuPy compiles it (for the argument dtypes) at its first launch and caches that too.
    A cached kernel belongs to the ``cupy`` module that built it: under the stand-in of
    :mod:`xpopt.testing` (a module of its own) the kernel is built again, never shared.
    """
    from .backend import _probe_cuda  # noqa: PLC0415 (CuPy stays unimported until needed)

    cupy, why = _probe_cuda()
    if cupy is None:
        raise RuntimeError(f"fused kernels need CuPy with a CUDA device: {why}")
    built = _cache.get(spec.name)
    if built is None or built[0] is not cupy:
        with _cache_lock:
            built = _cache.get(spec.name)
            if built is None or built[0] is not cupy:
                kernel = cupy.ElementwiseKernel(
                    spec.in_params,
                    spec.out_params,
                    spec.operation,
                    spec.name,
                    preamble=spec.preamble,
                    options=spec.options,
                    no_return=True,
                )
                built = _cache[spec.name] = (cupy, kernel)
    return built[1]


def launch(spec: KernelSpec, arrays: dict, scalars: dict) -> None:
    """Launch ``spec`` once over CuPy arrays, updating its outputs in place.

    Parameters
    ----------
    spec : KernelSpec
    arrays : dict of str to cupy.ndarray
        One array per non-scalar parameter, all of one shape and dtype ``T``.
    scalars : dict of str to float
        One host value per scalar parameter; each is cast to ``T`` before the launch.
    """
    dtype = arrays[spec.params[0][2]].dtype.type
    args = [dtype(scalars[n]) if role == "scalar" else arrays[n] for role, _, n in spec.params]
    get_kernel(spec)(*args)


# ----------------------------------------------------------------------- host build
HOST_TYPES = {"float32": "float", "float64": "double"}


def host_function_name(spec: KernelSpec, dtype_name: str) -> str:
    """The C symbol of ``spec`` for one dtype, e.g. ``xpopt_adam_float32``."""
    return f"{spec.name}_{dtype_name}"


def host_c_source(specs=None, *, python_module: str | None = None) -> str:
    """C99 source of the kernels for the CPU, from the same ``operation`` text.

    Each spec becomes one function per dtype of :data:`HOST_TYPES`, a plain loop over
    ``n`` elements with CuPy's binding (inputs and scalars by value, outputs read, then
    written back). ``<tgmath.h>`` makes ``sqrt`` the float square root for ``float``, as
    CUDA's overloads do. Compiled without contraction (``-ffp-contract=off``) each
    operation is rounded once, as NumPy rounds it. setup.py calls it at build time.

    Parameters
    ----------
    specs : iterable of KernelSpec, optional
        Defaults to every spec in :data:`SPECS`.
    python_module : str, optional
        Also emit an empty CPython extension module of this (last-component) name, so that
        setuptools can build and install the file; its functions are called through ctypes.
    """
    specs = list(_registered().values()) if specs is None else list(specs)
    out = []
    if python_module:
        out += ["#define PY_SSIZE_T_CLEAN", "#include <Python.h>"]
    out += [
        "#include <stddef.h>",
        "#include <tgmath.h>",
        "",
        "/* Wider vectors where the processor has them (chosen at load time); every variant",
        "   rounds each operation once, as NumPy does: no contraction, IEEE div and sqrt. */",
        "#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)",
        '#define XPOPT_TARGETS __attribute__((target_clones("default", "avx2", "avx512f")))',
        "#else",
        "#define XPOPT_TARGETS",
        "#endif",
        "",
    ]
    for spec in specs:
        if spec.preamble:
            out += [spec.preamble, ""]
        for dtype_name, ctype in HOST_TYPES.items():
            args, loads, stores = [], [], []
            for role, _, name in spec.params:
                if role == "scalar":
                    args.append(f"{ctype} {name}")
                elif role == "in":
                    args.append(f"const {ctype} *restrict {name}_")
                    loads.append(f"const T {name} = {name}_[i];")
                else:
                    args.append(f"{ctype} *restrict {name}_")
                    loads.append(f"T {name} = {name}_[i];")
                    stores.append(f"{name}_[i] = {name};")
            body = "\n".join(
                "        " + line for line in [*loads, *spec.operation.splitlines(), *stores]
            )
            signature = f"{host_function_name(spec, dtype_name)}({', '.join(args)}, ptrdiff_t n)"
            out += [
                f"XPOPT_TARGETS void {signature}",
                "{",
                f"    typedef {ctype} T;",
                "    for (ptrdiff_t i = 0; i < n; ++i) {",
                body,
                "    }",
                "}",
                "",
            ]
    if python_module:
        out += [
            f"static struct PyModuleDef xpopt_host_module = {{PyModuleDef_HEAD_INIT, "
            f'"{python_module}", '
            f'"xpopt\'s update kernels for the CPU (called through ctypes)", -1, NULL}};',
            f"PyMODINIT_FUNC PyInit_{python_module}(void) "
            f"{{ return PyModule_Create(&xpopt_host_module); }}",
            "",
        ]
    return "\n".join(out)
