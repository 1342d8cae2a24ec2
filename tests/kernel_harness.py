"""Compile xpopt's fused-kernel specs without a GPU: for real GPUs with nvcc, and for the host.

Both builds wrap the SAME ``operation`` text of a :class:`xpopt.kernels.KernelSpec` in the
binding CuPy's ``ElementwiseKernel`` generates (``typedef float T;``, the preamble, then per
element ``const T &grad = _raw_grad[i];`` for inputs and ``T &param = _raw_param[i];`` for
outputs, scalars passed by value), so what the tests prove about the host build or the PTX
holds for the kernel CuPy compiles on a GPU:

- :func:`cuda_source`, :func:`compile_cuda`: a ``__global__`` grid-stride kernel per spec,
  compiled by nvcc to a cubin for a real architecture (``sm_80``, ``sm_90``) or to PTX, with
  the spec's ``options`` (``--fmad=false``);
- :func:`host_source`, :func:`host_function`, :func:`run_on_host`: the same body in a plain
  C++ loop, compiled by g++ without floating-point contraction into a shared library and
  called through ctypes on NumPy arrays, in place (``-ffp-contract=off`` matters where the
  CPU has FMA: GCC contracts ``a * b + c`` by default, e.g. on aarch64);
- :func:`ptx_problems`: what in a kernel's PTX would round differently from that host build;
- :func:`assert_bitwise_equal`, :func:`edge_values`, and small drivers of xpopt's public
  functions (:func:`split`, :func:`joined`, :func:`course_init`, :func:`course_step`) shared
  by the host and GPU tests.

CuPy's ``CArray`` parameters carry no ``__restrict__``; neither do these, so the compilers
see the same aliasing freedom as in CuPy's build.
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

import numpy

from xpopt.kernels import KernelSpec

__all__ = [
    "ARCHS", "DTYPES", "HYPER", "CompileError", "assert_bitwise_equal", "compile_cuda",
    "course_init", "course_step", "cubin_sm", "cuda_source", "edge_values", "find_gxx",
    "find_nvcc", "float_instructions", "host_function", "host_source", "joined",
    "optimizer_class", "ptx_entries", "ptx_problems", "run_on_host", "split",
]

ARCHS = ("sm_80", "sm_90")
DTYPES = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))
_CTYPE_NAMES = {numpy.dtype(numpy.float32): "float", numpy.dtype(numpy.float64): "double"}
_CTYPES_SCALARS = {numpy.dtype(numpy.float32): ctypes.c_float,
                   numpy.dtype(numpy.float64): ctypes.c_double}
HOST_FLAGS = ("-O2", "-shared", "-fPIC", "-ffp-contract=off", "-std=c++17")
_EM_CUDA = 190  # ELF e_machine of CUDA binaries


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
            raise ValueError(f"{spec.name}: parameter {name!r} has type {ctype!r}; the harness "
                             "supports the single placeholder type 'T'")


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


def cuda_source(specs: KernelSpec | Iterable[KernelSpec], dtype) -> str:
    """CUDA C++ for one or more specs, bound as CuPy's ElementwiseKernel binds them.

    Parameters
    ----------
    specs : KernelSpec or iterable of KernelSpec
        Kernels to put in one translation unit (their names must differ).
    dtype : numpy.dtype or type
        ``float32`` or ``float64``: what ``T`` stands for.

    Returns
    -------
    str
        ``typedef ... T;``, the preambles, then one ``extern "C" __global__`` grid-stride kernel
        per spec with arrays as ``_raw_<name>`` pointers, scalars by value, ``n`` last.
    """
    specs = _as_tuple(specs)
    parts = [f"typedef {_ctype(dtype)} T;", _preambles(specs)]
    for spec in specs:
        parts.append(
            f'extern "C" __global__ void {spec.name}({_signature(spec)})\n'
            "{\n"
            "    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;\n"
            "         i += (long long)blockDim.x * gridDim.x) {\n"
            f"{_element_bindings(spec, ' ' * 8)}\n"
            f"{_body(spec, ' ' * 8)}\n"
            "    }\n"
            "}\n"
        )
    return "\n".join(p for p in parts if p) + "\n"


def host_source(specs: KernelSpec | Iterable[KernelSpec], dtype) -> str:
    """C++ for the host with the same binding as :func:`cuda_source` and a plain loop.

    ``using std::sqrt;`` brings the ``float`` overload, so ``sqrt`` of a ``float`` is a float
    square root, as in device code.
    """
    specs = _as_tuple(specs)
    parts = ["#include <cmath>", "using std::sqrt;", f"typedef {_ctype(dtype)} T;",
             _preambles(specs)]
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
def find_nvcc() -> str | None:
    """The path of nvcc, or None."""
    return shutil.which("nvcc") or next(
        (p for p in ("/usr/local/cuda/bin/nvcc",) if os.path.exists(p)), None)


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


def _options(specs: Sequence[KernelSpec], options: Sequence[str] | None) -> tuple[str, ...]:
    if options is not None:
        return tuple(options)
    found = {spec.options for spec in specs}
    if len(found) != 1:
        raise ValueError(f"specs compiled together must share their options, got {found}")
    return found.pop()


def compile_cuda(specs: KernelSpec | Iterable[KernelSpec], dtype, arch: str = "sm_90", *,
                 output: str = "cubin", options: Sequence[str] | None = None,
                 nvcc: str | None = None) -> bytes | str:
    """Compile :func:`cuda_source` with nvcc, in a temporary directory.

    Parameters
    ----------
    specs : KernelSpec or iterable of KernelSpec
    dtype : numpy.dtype or type
        ``float32`` or ``float64``.
    arch : str
        A real architecture, ``"sm_80"`` or ``"sm_90"`` (``-arch=<arch>``).
    output : {"cubin", "ptx"}
        A cubin (machine code for ``arch``) or PTX (for its virtual architecture).
    options : sequence of str, optional
        Compiler options; the specs' own ``options`` when None (they must agree).
    nvcc : str, optional
        The compiler; found on PATH when None.

    Returns
    -------
    bytes or str
        The cubin's bytes, or the PTX text.

    Raises
    ------
    CompileError
        nvcc failed; the message carries its command line and stderr.
    """
    specs = _as_tuple(specs)
    if output not in ("cubin", "ptx"):
        raise ValueError(f"output must be 'cubin' or 'ptx', got {output!r}")
    if not re.fullmatch(r"sm_\d+[a-z]?", arch):
        raise ValueError(f"arch must be a real architecture such as 'sm_90', got {arch!r}")
    nvcc = nvcc or find_nvcc()
    if nvcc is None:
        raise CompileError("nvcc (the CUDA compiler) was not found on PATH")
    with tempfile.TemporaryDirectory(prefix="xpopt-nvcc-") as tmp:
        src, out = Path(tmp, "kernels.cu"), Path(tmp, f"kernels.{output}")
        src.write_text(cuda_source(specs, dtype))
        cmd = [nvcc, f"-{output}", f"-arch={arch}", *_options(specs, options), "-o", str(out),
               str(src)]
        _run(cmd, f"nvcc ({output}, {arch}, {numpy.dtype(dtype)})")
        return out.read_bytes() if output == "cubin" else out.read_text()


def cubin_sm(cubin: bytes) -> set[int]:
    """The SM numbers a cubin's ELF header may name (checks it is a CUDA ELF first).

    The header's ``e_flags`` holds the target SM in its low byte (CUDA <= 12 layout) or in its
    second byte (CUDA 13 layout); both candidates are returned, so ``90 in cubin_sm(b)``
    holds for an ``sm_90`` cubin whichever toolkit built it.
    """
    if cubin[:4] != b"\x7fELF" or cubin[4] != 2:
        raise ValueError("not a 64-bit ELF file")
    (e_machine,) = struct.unpack_from("<H", cubin, 18)
    if e_machine != _EM_CUDA:
        raise ValueError(f"ELF machine {e_machine} is not CUDA ({_EM_CUDA})")
    (e_flags,) = struct.unpack_from("<I", cubin, 48)
    return {e_flags & 0xFF, (e_flags >> 8) & 0xFF}


def ptx_entries(ptx: str) -> dict[str, str]:
    """PTX text of each ``.entry`` (kernel), by name, from its header to its closing brace."""
    entries = {}
    for m in re.finditer(r"\.entry\s+(\w+)\s*\(", ptx):
        name, start = m.group(1), m.start()
        body = ptx.index("{", ptx.index(")", start))
        depth, pos = 0, body
        while True:  # braces nest in PTX (scoped register blocks)
            c = ptx[pos]
            depth += c == "{"
            depth -= c == "}"
            pos += 1
            if depth == 0:
                break
        entries[name] = ptx[start:pos]
    return entries


_FLOAT_OP = re.compile(r"^\s*(?:@!?%\w+\s+)?([a-z]+(?:\.[a-z0-9]+)*\.f(?:16|32|64))\b", re.M)


def float_instructions(ptx: str) -> list[str]:
    """The floating-point instruction opcodes of some PTX text (``mul.rn.f32``, ...), in order.

    Loads, stores, moves and parameter declarations are left out: only arithmetic,
    conversions and comparisons remain.
    """
    skip = ("ld.", "st.", "mov.", "cvta.", "param.", "reg.")
    return [op for op in _FLOAT_OP.findall(ptx) if not op.startswith(skip)]


def ptx_problems(entry: str, spec: KernelSpec, dtype) -> list[str]:
    """What, in one kernel's PTX, would let the GPU round differently from IEEE host code.

    Parameters
    ----------
    entry : str
        The kernel's PTX (one value of :func:`ptx_entries`).
    spec : KernelSpec
        Its spec: ``sqrt(`` or ``/`` in its operation must show as ``sqrt.rn`` / ``div.rn``.
    dtype : numpy.dtype or type
        What ``T`` stood for.

    Returns
    -------
    list of str
        Empty when every float instruction is of ``T``'s width (a float32 kernel with no
        ``.f64`` anywhere: no double scalar, literal or conversion), no multiply-add is fused
        (no ``fma``/``mad``; ``add``/``sub``/``mul`` carry ``.rn``, which ptxas may not
        contract), nothing is approximate or flushes subnormals (no ``.approx``, ``.ftz``),
        and the square roots and divisions of the operation are the correctly rounded ones.
    """
    width = {"float": "f32", "double": "f64"}[_ctype(dtype)]
    problems = []
    if width == "f32" and ".f64" in entry:
        lines = sorted({ln.strip() for ln in entry.splitlines() if ".f64" in ln})
        problems.append(f"FP64 in a float32 kernel: {lines[:5]}")
    ops = float_instructions(entry)
    for op in sorted(set(ops)):
        parts = op.split(".")
        if parts[0] in ("fma", "mad"):
            problems.append(f"fused multiply-add {op}")
        elif parts[0] in ("add", "sub", "mul") and "rn" not in parts:
            problems.append(f"{op} without .rn (ptxas may contract it into an FMA)")
        if "approx" in parts or "ftz" in parts:
            problems.append(f"{op} is approximate or flushes subnormals to zero")
        if parts[-1] != width and parts[0] != "cvt":
            problems.append(f"{op} is not of T's width {width}")
    needed = []
    if "sqrt(" in spec.operation:
        needed.append(f"sqrt.rn.{width}")
    if "/" in spec.operation:
        needed.append(f"div.rn.{width}")
    for op in needed:
        if op not in ops:
            problems.append(f"no {op} although the operation needs it (found {sorted(set(ops))})")
    return problems


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
    magnitudes = [tiny_sub, tiny_sub * 300, square_zero, square_subnormal,
                  float(numpy.sqrt(fi.tiny)), fi.tiny, big, square_overflows, fi.max, numpy.inf]
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
            f"{actual[keep][i]!r} ({bits_a[i]:#x}) vs {desired[keep][i]!r} ({bits_d[i]:#x})")


# ---------------------------------------------------------------------------- host build
_host_dir: tempfile.TemporaryDirectory | None = None


def _host_tmp() -> Path:
    # One directory per process, removed at interpreter exit by TemporaryDirectory's finalizer;
    # the libraries must outlive their build because ctypes keeps them mapped.
    global _host_dir
    if _host_dir is None:
        _host_dir = tempfile.TemporaryDirectory(prefix="xpopt-host-kernels-")
    return Path(_host_dir.name)


@functools.lru_cache(maxsize=None)
def _host_library(spec: KernelSpec, dtype: numpy.dtype, gxx: str) -> ctypes.CDLL:
    tmp = _host_tmp()
    stem = f"{spec.name}_{_ctype(dtype)}"
    src, lib = tmp / f"{stem}.cpp", tmp / f"{stem}.so"
    src.write_text(host_source(spec, dtype))
    _run([gxx, *HOST_FLAGS, "-o", str(lib), str(src)], f"g++ ({spec.name}, {dtype})")
    return ctypes.CDLL(str(lib))


def host_function(spec: KernelSpec, dtype, *, gxx: str | None = None):
    """The host build of ``spec`` for ``dtype``, as a ctypes function (built once per process).

    Its arguments are those of :func:`cuda_source`'s kernel: ``spec.params`` in order (arrays
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
            raise KeyError(f"{spec.name} {what}: missing {sorted(want - set(got))}, "
                           f"unexpected {sorted(set(got) - want)}")
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
        out[k] = xp.array(flat[lo: lo + size].reshape(s), copy=True)
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


def course_step(name: str, parameters: dict, grads: dict, state: dict, t: int,
                hyper: dict) -> dict:
    """One step through the course-named function (in place), checking it hands back the
    same dicts; returns Adam's ``v_corrected`` and ``s_corrected`` (empty for the others)."""
    import xpopt  # noqa: PLC0415

    lr = hyper["learning_rate"]
    if name == "xpopt_gd":
        assert xpopt.update_parameters_with_gd(parameters, grads, lr) is parameters
        return {}
    if name == "xpopt_momentum":
        p, v = xpopt.update_parameters_with_momentum(parameters, grads, state["v"],
                                                     hyper["beta"], lr)
        assert p is parameters and v is state["v"]
        return {}
    if name == "xpopt_rmsprop":
        p, s = xpopt.update_parameters_with_rmsprop(parameters, grads, state["s"], lr,
                                                    hyper["beta2"], hyper["epsilon"])
        assert p is parameters and s is state["s"]
        return {}
    p, v, s, v_corr, s_corr = xpopt.update_parameters_with_adam(
        parameters, grads, state["v"], state["s"], t, lr, hyper["beta1"], hyper["beta2"],
        hyper["epsilon"])
    assert p is parameters and v is state["v"] and s is state["s"]
    return {"v_corrected": v_corr, "s_corrected": s_corr}
