"""Build xpopt's fused-kernel specs for the host, and the helpers the host and GPU tests share.

The host build wraps the ``operation`` text of a :class:`xpopt.kernels.KernelSpec` in the
binding CuPy's ``ElementwiseKernel`` generates (``typedef float T;``, the preamble, then per
element ``const T &grad = _raw_grad[i];`` for inputs and ``T &param = _raw_param[i];`` for
outputs, scalars passed by value):

- :func:`host_source`, :func:`host_function`, :func:`run_on_host`: that body in a plain
  C++ loop, compiled by g++ without floating-point contraction into a shared library and
  called through ctypes on NumPy arrays, in place (``-ffp-contract=off`` matters where the
  CPU has FMA: GCC contracts ``a * b + c`` by default, e.g. on aarch64);
- :func:`assert_bitwise_equal`, :func:`edge_values`, and small drivers of xpopt's public
  functions (:func:`split`, :func:`joined`, :func:`course_init`, :func:`course_step`) shared
  by the host and GPU tests.

What CuPy compiles for a GPU is proven from CuPy's own generated source, not from a wrapper
written here: see ``cupy_codegen`` and ``test_kernels_nvrtc``.
"""

from __future__ import annotations

import ctypes
import functools
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy

from xpopt.kernels import KernelSpec

__all__ = [
    "DTYPES",
    "HYPER",
    "CompileError",
    "assert_bitwise_equal",
    "course_init",
    "course_step",
    "edge_values",
    "find_gxx",
    "host_function",
    "host_source",
    "joined",
    "optimizer_class",
    "run_on_host",
    "split",
]

DTYPES = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))
_CTYPE_NAMES = {numpy.dtype(numpy.float32): "float", numpy.dtype(numpy.float64): "double"}
_CTYPES_SCALARS = {
    numpy.dtype(numpy.float32): ctypes.c_float,
    numpy.dtype(numpy.float64): ctypes.c_double,
}
HOST_FLAGS = ("-O2", "-shared", "-fPIC", "-ffp-contract=off", "-std=c++17")


class CompileError(RuntimeError):
    """A compiler rejected a generated source; the message holds its command and stderr."""


# ------------------------------------------------------------------------------ sources
def _ctype(dtype) -> str:
    dtype = numpy.dtype(dtype)
    try:
        return _CTYPE_NAMES[dtype]
    except KeyError:
        raise TypeError(f"kernels are built for float32 or float64, not {dtype}") from None


def _check_spec(spec: KernelSpec) -> None:
    # The harness fixes T only; a spec with another type placeholder would bind differently.
    for _, ctype, name in spec.params:
        if ctype != "T":
            raise ValueError(
                f"{spec.name}: parameter {name!r} has type {ctype!r}; the harness "
                "supports the single placeholder type 'T'"
            )


def _signature(spec: KernelSpec) -> str:
    args = []
    for role, _, name in spec.params:
        if role == "scalar":
            args.append(f"const T {name}")
        elif role == "in":
            args.append(f"const T* _raw_{name}")
        else:
            args.append(f"T* _raw_{name}")
    args.append("long long n")
    return ", ".join(args)


def _element_bindings(spec: KernelSpec, indent: str) -> str:
    lines = []
    for role, _, name in spec.params:
        if role == "in":
            lines.append(f"{indent}const T &{name} = _raw_{name}[i];")
        elif role == "out":
            lines.append(f"{indent}T &{name} = _raw_{name}[i];")
    return "\n".join(lines)


def _body(spec: KernelSpec, indent: str) -> str:
    return "\n".join(indent + line for line in spec.operation.splitlines())


def _as_tuple(specs: KernelSpec | Iterable[KernelSpec]) -> tuple[KernelSpec, ...]:
    specs = (specs,) if isinstance(specs, KernelSpec) else tuple(specs)
    if not specs:
        raise ValueError("no kernel spec given")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"kernel names must be unique in one source, got {names}")
    for spec in specs:
        _check_spec(spec)
    return specs


def _preambles(specs: Sequence[KernelSpec]) -> str:
    seen, out = set(), []
    for spec in specs:
        if spec.preamble and spec.preamble not in seen:
            seen.add(spec.preamble)
            out.append(spec.preamble)
    return "\n".join(out)


def host_source(specs: KernelSpec | Iterable[KernelSpec], dtype) -> str:
    """C++ for the host: CuPy's per-element binding (arrays as ``_raw_<name>`` pointers, each
    element bound by reference at index ``i``, scalars by value, ``n`` last) and a plain loop.

    ``using std::sqrt;`` brings the ``float`` overload, so ``sqrt`` of a ``float`` is a float
    square root, as in device code.
    """
    specs = _as_tuple(specs)
    parts = [
        "#include <cmath>",
        "using std::sqrt;",
        f"typedef {_ctype(dtype)} T;",
        _preambles(specs),
    ]
    for spec in specs:
        parts.append(
            f'extern "C" void {spec.name}({_signature(spec)})\n'
            "{\n"
            "    for (long long i = 0; i < n; ++i) {\n"
            f"{_element_bindings(spec, ' ' * 8)}\n"
            f"{_body(spec, ' ' * 8)}\n"
            "    }\n"
            "}\n"
        )
    return "\n".join(p for p in parts if p) + "\n"


# ------------------------------------------------------------------------------ compilers
def find_gxx() -> str | None:
    """The path of g++, or None."""
    return shutil.which("g++")


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise CompileError(
            f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n"
            f"--- stderr ---\n{proc.stderr.strip()}\n--- stdout ---\n{proc.stdout.strip()}"
        )


# ---------------------------------------------------------------------------- test data
def edge_values(dtype) -> numpy.ndarray:
    """Gradient values at the edges of ``dtype``'s range, both signs, with zeros and NaN.

    Zeros; subnormals (the smallest one, and one a few hundred times larger); values whose
    square underflows to zero, to a subnormal, or just reaches the smallest normal; the
    smallest normal; large values whose
    square is still finite (1e18 in float32, 1e150 in float64); values whose square
    overflows to inf (1e20, 1e160); the largest finite value; inf; NaN.
    """
    dtype = numpy.dtype(dtype)
    fi = numpy.finfo(dtype)
    if dtype == numpy.float32:
        big, square_overflows, square_subnormal, square_zero = 1e18, 1e20, 3e-20, 1e-25
    else:
        big, square_overflows, square_subnormal, square_zero = 1e150, 1e160, 1e-155, 1e-170
    tiny_sub = fi.smallest_subnormal
    magnitudes = [
        tiny_sub,
        tiny_sub * 300,
        square_zero,
        square_subnormal,
        float(numpy.sqrt(fi.tiny)),
        fi.tiny,
        big,
        square_overflows,
        fi.max,
        numpy.inf,
    ]
    values = [0.0, -0.0, numpy.nan]
    for m in magnitudes:
        values += [m, -m]
    return numpy.array(values, dtype=dtype)


# --------------------------------------------------------------------------- comparison
def assert_bitwise_equal(actual, desired, what: str = "") -> None:
    """Same dtype, shape, NaN positions, and the same bits everywhere else.

    NaNs are compared by position only: their sign and payload depend on which operand a
    processor propagates (x86 and GPUs differ), not on the arithmetic. Everywhere else the bit
    patterns must agree, which ``numpy.testing.assert_array_equal`` alone does not check
    (it takes ``-0.0 == 0.0``).
    """
    actual, desired = numpy.asarray(actual), numpy.asarray(desired)
    assert actual.dtype == desired.dtype, f"{what}: dtype {actual.dtype} != {desired.dtype}"
    assert actual.shape == desired.shape, f"{what}: shape {actual.shape} != {desired.shape}"
    numpy.testing.assert_array_equal(actual, desired, err_msg=what)
    uint = numpy.dtype(f"u{actual.dtype.itemsize}")
    keep = ~numpy.isnan(desired)
    bits_a = numpy.ascontiguousarray(actual).view(uint)[keep]
    bits_d = numpy.ascontiguousarray(desired).view(uint)[keep]
    bad = numpy.flatnonzero(bits_a != bits_d)
    if bad.size:
        i = bad[0]
        raise AssertionError(
            f"{what}: {bad.size} element(s) equal in value but not in bits, first "
            f"{actual[keep][i]!r} ({bits_a[i]:#x}) vs {desired[keep][i]!r} ({bits_d[i]:#x})"
        )


# ---------------------------------------------------------------------------- host build
_host_dir: tempfile.TemporaryDirectory | None = None


def _host_tmp() -> Path:
    # One directory per process, removed at interpreter exit by TemporaryDirectory's finalizer;
    # the libraries must outlive their build because ctypes keeps them mapped.
    global _host_dir
    if _host_dir is None:
        _host_dir = tempfile.TemporaryDirectory(prefix="xpopt-host-kernels-")
    return Path(_host_dir.name)


@functools.cache
def _host_library(spec: KernelSpec, dtype: numpy.dtype, gxx: str) -> ctypes.CDLL:
    tmp = _host_tmp()
    stem = f"{spec.name}_{_ctype(dtype)}"
    src, lib = tmp / f"{stem}.cpp", tmp / f"{stem}.so"
    src.write_text(host_source(spec, dtype))
    _run([gxx, *HOST_FLAGS, "-o", str(lib), str(src)], f"g++ ({spec.name}, {dtype})")
    return ctypes.CDLL(str(lib))


def host_function(spec: KernelSpec, dtype, *, gxx: str | None = None):
    """The host build of ``spec`` for ``dtype``, as a ctypes function (built once per process).

    Its arguments are those of :func:`host_source`'s function: ``spec.params`` in order (arrays
    as pointers, scalars as ``c_float`` / ``c_double``), then ``n`` as ``c_longlong``.

    Raises
    ------
    CompileError
        g++ is missing or failed.
    """
    dtype = numpy.dtype(dtype)
    _ctype(dtype)
    _check_spec(spec)
    gxx = gxx or find_gxx()
    if gxx is None:
        raise CompileError("g++ was not found on PATH")
    fn = getattr(_host_library(spec, dtype, gxx), spec.name)
    scalar = _CTYPES_SCALARS[dtype]
    fn.argtypes = [scalar if role == "scalar" else ctypes.c_void_p for role, _, _ in spec.params]
    fn.argtypes.append(ctypes.c_longlong)
    fn.restype = None
    return fn


def run_on_host(spec: KernelSpec, dtype, arrays: dict, scalars: dict) -> None:
    """Run the host build of ``spec`` over NumPy arrays, updating its outputs in place.

    Parameters
    ----------
    spec : KernelSpec
    dtype : numpy.dtype or type
        ``float32`` or ``float64``; every array must have it.
    arrays : dict of str to numpy.ndarray
        One C-contiguous array per non-scalar parameter (``grad``, ``param``, ``v``, ...), all of
        one size; outputs must be writeable.
    scalars : dict of str to float
        One value per scalar parameter, rounded to ``dtype`` first as ``xpopt.kernels.launch``
        does (``numpy.float32(x)``) and passed by value.

    Raises
    ------
    KeyError
        A parameter is missing, or an unknown name was given.
    ValueError, TypeError
        An array has the wrong dtype, size, layout, or is read-only where it is written.
    """
    dtype = numpy.dtype(dtype)
    want_arrays = {n for role, _, n in spec.params if role != "scalar"}
    want_scalars = {n for role, _, n in spec.params if role == "scalar"}
    for got, want, what in ((arrays, want_arrays, "arrays"), (scalars, want_scalars, "scalars")):
        if set(got) != want:
            raise KeyError(
                f"{spec.name} {what}: missing {sorted(want - set(got))}, "
                f"unexpected {sorted(set(got) - want)}"
            )
    sizes = set()
    for role, _, name in spec.params:
        if role == "scalar":
            continue
        a = arrays[name]
        if not isinstance(a, numpy.ndarray):
            raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
        if a.dtype != dtype:
            raise TypeError(f"{name} has dtype {a.dtype}, the kernel is built for {dtype}")
        if not a.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous")
        if role == "out" and not a.flags.writeable:
            raise ValueError(f"{name} is an output and must be writeable")
        sizes.add(a.size)
    if len(sizes) != 1:
        raise ValueError(f"{spec.name}: arrays must have one size, got {sorted(sizes)}")
    fn = host_function(spec, dtype)
    args = []
    for role, _, name in spec.params:
        if role == "scalar":
            # Round in NumPy (as launch() does) so ctypes only widens or copies the value.
            args.append(float(dtype.type(scalars[name])))
        else:
            args.append(arrays[name].ctypes.data)
    fn(*args, sizes.pop())


# ------------------------------------------------- the rules through xpopt's public API
# Hyperparameters away from the defaults, so a default silently used instead shows.
HYPER = {
    "xpopt_gd": {"learning_rate": 0.05},
    "xpopt_momentum": {"learning_rate": 0.03, "beta": 0.85},
    "xpopt_rmsprop": {"learning_rate": 0.02, "beta2": 0.99, "epsilon": 1e-7},
    "xpopt_adam": {"learning_rate": 0.02, "beta1": 0.8, "beta2": 0.99, "epsilon": 1e-7},
}


def optimizer_class(name: str):
    """The ``xpopt.optim`` optimizer class whose ``spec`` is the kernel ``name``."""
    from xpopt.optim import GD, Adam, Momentum, RMSprop  # noqa: PLC0415

    classes = {cls.spec.name: cls for cls in (GD, Momentum, RMSprop, Adam)}
    return classes[name]


def split(flat, layout, prefix: str = "", packed: bool = False, xp=numpy) -> dict:
    """A copy of the 1-D host array ``flat`` on ``xp``, as a packed FlatDict or as a dict of
    separate arrays, keyed ``prefix + key`` in ``layout`` order."""
    from xpopt import FlatDict  # noqa: PLC0415

    keyed = tuple((prefix + k, tuple(s)) for k, s in layout)
    if packed:
        return FlatDict(xp.array(flat, copy=True), keyed)
    out, lo = {}, 0
    for k, s in keyed:
        size = int(numpy.prod(s))
        out[k] = xp.array(flat[lo : lo + size].reshape(s), copy=True)
        lo += size
    return out


def joined(d: dict, layout, prefix: str = "") -> numpy.ndarray:
    """``d``'s arrays, in ``layout`` order, raveled into one host array."""
    from xpopt import to_host  # noqa: PLC0415

    return numpy.concatenate([numpy.asarray(to_host(d[prefix + k])).ravel() for k, _ in layout])


def course_init(name: str, parameters: dict) -> dict:
    """The rule's state through the course's initializers, by slot (``{"v": ..., "s": ...}``)."""
    import xpopt  # noqa: PLC0415

    if name == "xpopt_momentum":
        return {"v": xpopt.initialize_velocity(parameters)}
    if name == "xpopt_rmsprop":
        return {"s": xpopt.initialize_rmsprop(parameters)}
    if name == "xpopt_adam":
        v, s = xpopt.initialize_adam(parameters)
        return {"v": v, "s": s}
    return {}


def course_step(name: str, parameters: dict, grads: dict, state: dict, t: int, hyper: dict) -> dict:
    """One step through the course-named function (in place), checking it hands back the
    same dicts; returns Adam's ``v_corrected`` and ``s_corrected`` (empty for the others)."""
    import xpopt  # noqa: PLC0415

    lr = hyper["learning_rate"]
    if name == "xpopt_gd":
        assert xpopt.update_parameters_with_gd(parameters, grads, lr) is parameters
        return {}
    if name == "xpopt_momentum":
        p, v = xpopt.update_parameters_with_momentum(
            parameters, grads, state["v"], hyper["beta"], lr
        )
        assert p is parameters and v is state["v"]
        return {}
    if name == "xpopt_rmsprop":
        p, s = xpopt.update_parameters_with_rmsprop(
            parameters, grads, state["s"], lr, hyper["beta2"], hyper["epsilon"]
        )
        assert p is parameters and s is state["s"]
        return {}
    p, v, s, v_corr, s_corr = xpopt.update_parameters_with_adam(
        parameters,
        grads,
        state["v"],
        state["s"],
        t,
        lr,
        hyper["beta1"],
        hyper["beta2"],
        hyper["epsilon"],
    )
    assert p is parameters and v is state["v"] and s is state["s"]
    return {"v_corrected": v_corr, "s_corrected": s_corr}
