"""What CuPy itself compiles for xpopt's fused kernels, and what that code does, without a GPU.

The pipeline, each step CuPy's own code where CuPy has the step in Python-visible form:

1. :func:`cupy_build` takes the arguments xpopt gives ``cupy.ElementwiseKernel``
   (:class:`KernelArgs`, recorded from ``xpopt.kernels.get_kernel``), builds the real
   ``cupy.ElementwiseKernel`` from them, describes a launch the way
   ``ElementwiseKernel.__call__`` does (:func:`launch_arginfos`, the one step written out
   here: ``__call__`` needs a device), then calls CuPy's ``_get_elementwise_kernel`` (what
   ``__call__`` reaches on a cache miss). That runs CuPy's code generator,
   ``compile_with_cache`` (header prefix, ``assemble_cupy_compiler_options``) and
   ``_compile_with_cache_cuda`` (``-ftz=true``, ``-arch=sm_XX``,
   ``--device-as-default-execution-space``) down to NVRTC. A spy in place of CuPy's
   ``_NVRTCProgram`` records the exact source, program name and options NVRTC receives, and
   the PTX and cubin it returns. Three more things are patched for the call only: two ask the
   (absent) device (``_get_arch`` returns the requested architecture instead,
   ``_get_arch_for_options_for_nvrtc`` runs unmemoized: its memo is keyed by device), and the
   kernel cache backend neither loads nor stores (a cached cubin would skip NVRTC). Loading
   the cubin into a module then fails without a driver; that error is expected and dropped.
2. :func:`ptx_problems` reads that PTX: float arithmetic of ``T``'s width only, no ``fma``,
   ``.rn`` on every add/sub/mul (ptxas may not contract those), correctly rounded ``div.rn`` /
   ``sqrt.rn``, nothing approximate, ``.ftz`` on every float32 operation (CuPy's
   ``-ftz=true``) and on no float64 one.
3. The wheel's nvdisasm (13.x) cannot read NVRTC 12 cubins, so :func:`nvcc_build` compiles
   the same recorded source with CUDA 13's nvcc and the recorded options translated
   (:func:`nvcc_options`), and :func:`disassemble` runs nvdisasm on it.
   :func:`sass_problems` reads the machine code: no FP64 instruction in a float32 kernel; no
   ``.FTZ`` in a float64 kernel; ``.FTZ`` on every float32 ``FADD``/``FMUL``; the
   slow-path subroutines are the correctly rounded ones; and the fused multiply-adds
   (``FFMA``/``DFMA``) are exactly those of the correctly rounded division and square-root
   sequences, counted from probe kernels (``out = a / b;``, ``out = sqrt(a);``) built the
   same way: any other one is a contraction of the operation's own arithmetic.

CuPy's names used here are private; :func:`cupy_modules` checks the pinned version
(:data:`CUPY_PINNED`) and each name, and raises :class:`CodegenError` (a test failure,
not a skip) when one moved.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import importlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import tempfile
import threading
import types
from pathlib import Path

import numpy

__all__ = [
    "ARCHS",
    "CUPY_PINNED",
    "DTYPES",
    "CodegenError",
    "CompileError",
    "CupyBuild",
    "KernelArgs",
    "NvccBuild",
    "cupy_build",
    "cupy_modules",
    "disassemble",
    "find_nvdisasm",
    "launch_arginfos",
    "launch_kinds",
    "nvcc_build",
    "nvcc_options",
    "nvrtc_compile",
    "nvrtc_unavailable_reason",
    "prefetch_machine_code",
    "probe_builds",
    "probe_expansions",
    "ptx_entries",
    "ptx_float_ops",
    "ptx_problems",
    "sass_counts",
    "sass_functions",
    "sass_problems",
]

#: The CuPy release (major.minor) whose private code generator this module was written
#: against (read in CuPy 14.2.0: cupy/_core/_kernel.pyx, cupy/_core/core.pyx,
#: cupy/cuda/compiler.py). Another version fails the tests until the names are re-checked.
CUPY_PINNED = "14.2"
ARCHS = ("sm_80", "sm_90")
DTYPES = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))
#: Elements of the launch described by default: a flat buffer of a million parameters.
DEFAULT_SIZE = 1 << 20

_INDEX_32_LIMIT = 1 << 31  # CuPy: 32-bit indexing while nbytes (arrays) / size (indexer) <= 2**31
_ARG_NDARRAY, _ARG_INDEXER, _ARG_SCALAR = 1, 2, 3  # cupy/_core/_kernel.pxd _ArgKind


class CodegenError(RuntimeError):
    """CuPy's private code generator is not where this module expects it (or misbehaved)."""


class CompileError(RuntimeError):
    """A compiler or the disassembler failed; the message holds the command and its output."""


# ----------------------------------------------------------------------------- CuPy itself
_REQUIRED = {
    "cupy._core._kernel": (
        "ElementwiseKernel",
        "_ArgInfo",
        "_TypeMap",
        "_get_elementwise_kernel",
        "_get_elementwise_kernel_code",
    ),
    "cupy._core._scalar": ("CScalar",),
    "cupy._core._carray": ("Indexer",),
    "cupy._core.core": (
        "compile_with_cache",
        "assemble_cupy_compiler_options",
        "_cupy_header_list",
    ),
    "cupy.cuda.compiler": (
        "_NVRTCProgram",
        "_get_arch",
        "_get_arch_for_options_for_nvrtc",
        "_kernel_cache_backend",
        "_get_nvrtc_version",
    ),
    "cupy_backends.cuda.api.runtime": ("CUDARuntimeError",),
    "cupy_backends.cuda.api.driver": ("CUDADriverError",),
    "cupy_backends.cuda.libs.nvrtc": (
        "createProgram",
        "compileProgram",
        "getPTX",
        "getCUBIN",
        "destroyProgram",
        "getProgramLog",
        "getVersion",
        "NVRTCError",
    ),
}


_real_cupy: types.SimpleNamespace | None = None


def cupy_modules() -> types.SimpleNamespace:
    """The real CuPy modules this module drives, checked.

    Raises
    ------
    CodegenError
        CuPy is not the pinned version, or a private name it relies on moved, or
        ``sys.modules["cupy"]`` is a stand-in.
    ModuleNotFoundError
        CuPy is not installed (callers turn that into a skip, or a failure under CI).
    """
    global _real_cupy
    if _real_cupy is not None:  # the real modules, even while a stand-in is in sys.modules
        return _real_cupy
    cupy = importlib.import_module("cupy")
    version = getattr(cupy, "__version__", "")
    if not hasattr(cupy, "_core") or not version or not getattr(cupy, "__file__", None):
        raise CodegenError(
            f"sys.modules['cupy'] is not the real CuPy ({cupy!r}); is a stand-in still installed?"
        )
    if ".".join(version.split(".")[:2]) != CUPY_PINNED:
        raise CodegenError(
            f"CuPy {version} is installed; tests/cupy_codegen.py drives CuPy's private code "
            f"generator as read in CuPy {CUPY_PINNED}. Re-read cupy/_core/_kernel.pyx "
            "(ElementwiseKernel.__call__, _get_elementwise_kernel), cupy/_core/core.pyx "
            "(compile_with_cache) and cupy/cuda/compiler.py (_compile_with_cache_cuda), update "
            "the module, then CUPY_PINNED."
        )
    ns = {}
    for modname, names in _REQUIRED.items():
        try:
            mod = importlib.import_module(modname)
        except ImportError as exc:
            raise CodegenError(
                f"CuPy {version}: cannot import {modname} ({exc}); the private code generator moved"
            ) from exc
        missing = [n for n in names if not hasattr(mod, n)]
        if missing:
            raise CodegenError(
                f"CuPy {version}: {modname} has no {', '.join(missing)}; the "
                "private code generator moved, re-read CuPy's source"
            )
        ns[modname.rsplit(".", 1)[-1]] = mod
    for modname, fname in (
        ("compiler", "_get_arch_for_options_for_nvrtc"),
        ("_kernel", "_get_elementwise_kernel"),
    ):
        if not callable(getattr(getattr(ns[modname], fname), "__wrapped__", None)):
            raise CodegenError(
                f"CuPy {version}: {modname}.{fname} is no longer a memoized "
                "wrapper with __wrapped__; re-read CuPy's source"
            )
    _real_cupy = types.SimpleNamespace(cupy=cupy, **ns)
    return _real_cupy


def nvrtc_unavailable_reason() -> str | None:
    """None when CuPy imports and its NVRTC binding loads a library, else why not."""
    try:
        cp = cupy_modules()
    except ModuleNotFoundError as exc:
        return f"CuPy is not installed ({exc})"
    try:
        cp.nvrtc.getVersion()
    except Exception as exc:  # the library (wheel nvidia-cuda-nvrtc-cu12) is missing
        return f"CuPy's NVRTC binding has no library ({type(exc).__name__}: {exc})"
    return None


# ------------------------------------------------------------------ what xpopt hands CuPy
@dataclasses.dataclass(frozen=True)
class KernelArgs:
    """The constructor arguments of one ``cupy.ElementwiseKernel``, as xpopt passes them."""

    in_params: str
    out_params: str
    operation: str
    name: str
    preamble: str = ""
    options: tuple = ()
    no_return: bool = False

    @classmethod
    def of(cls, kernel) -> KernelArgs:
        """From a kernel object recording its constructor arguments as attributes (the
        ``ElementwiseKernel`` of ``xpopt.testing.cupy_standin()``)."""
        values = {f.name: getattr(kernel, f.name) for f in dataclasses.fields(cls)}
        if not isinstance(values["options"], tuple):
            # CuPy 14.2 types the parameter (`tuple options=()` in _get_elementwise_kernel):
            # anything else raises TypeError at the first launch.
            raise TypeError(
                f"{values['name']}: options must be a tuple for CuPy, got "
                f"{type(values['options']).__name__} {values['options']!r}"
            )
        return cls(**values)

    @classmethod
    def from_spec(cls, spec, **changes) -> KernelArgs:
        """What ``get_kernel(spec)`` passes, written out (controls and probes only: the tests
        record the real arguments from ``get_kernel``)."""
        args = cls(
            spec.in_params,
            spec.out_params,
            spec.operation,
            spec.name,
            preamble=spec.preamble,
            options=tuple(spec.options),
            no_return=True,
        )
        return dataclasses.replace(args, **changes)


def launch_kinds(spec, dtype) -> tuple:
    """How ``xpopt.kernels.launch`` passes ``spec``'s arguments for ``dtype``, in order.

    Calls ``launch`` itself on small NumPy arrays, with ``xpopt.kernels.get_kernel``
    replaced for the call by one returning a recorder, and returns one ``("array", dtype)``
    or ``("scalar", type)`` per positional argument it passed.
    """
    from xpopt import kernels  # noqa: PLC0415

    dtype = numpy.dtype(dtype)
    calls = []

    def recorder(*args, **kwargs):
        calls.append((args, kwargs))

    arrays = {n: numpy.zeros(4, dtype) for role, _, n in spec.params if role != "scalar"}
    scalars = {n: 0.5 for role, _, n in spec.params if role == "scalar"}
    real_get_kernel = kernels.get_kernel
    kernels.get_kernel = lambda s: recorder if s is spec else real_get_kernel(s)
    try:
        kernels.launch(spec, arrays, scalars)
    finally:
        kernels.get_kernel = real_get_kernel
    if len(calls) != 1 or calls[0][1]:
        raise AssertionError(f"launch({spec.name}) made calls {calls}, expected one positional")
    kinds = []
    for a in calls[0][0]:
        if isinstance(a, numpy.ndarray):
            kinds.append(("array", a.dtype))
        elif isinstance(a, (numpy.generic, float, int)):
            kinds.append(("scalar", type(a)))
        else:
            raise AssertionError(f"launch({spec.name}) passed a {type(a).__name__}")
    return tuple(kinds)


def launch_arginfos(cp, kernel, kinds, dtype, size: int = DEFAULT_SIZE):
    """``(arginfos, type_map)`` of a launch of the real ``kernel`` over 1-D C-contiguous
    arrays of ``size`` elements of ``dtype``, as ``ElementwiseKernel.__call__`` computes them
    (CuPy 14.2, cupy/_core/_kernel.pyx):

    - arrays stay ndarrays; scalars become ``CScalar`` (``_preprocess_args``);
    - ``_decide_params_type`` (CuPy's, called here) binds ``T`` from the array dtypes, scalars
      count as ``None``; each scalar is then cast to its parameter type (``apply_dtype``), so
      its ``_ArgInfo`` carries that dtype;
    - ``_reduce_dims`` leaves 1-D arrays alone; the indexer is 1-D;
    - ``index_32_bits``: an array's when its bytes are at most 2**31, the indexer's when its
      size is (``ndarray._init_fast``, ``Indexer.init``).
    """
    dtype = numpy.dtype(dtype)
    k = cp._kernel
    if len(kinds) not in (kernel.nin, kernel.nargs):
        raise AssertionError(
            f"{kernel.name}: {len(kinds)} arguments for nin={kernel.nin}, nargs={kernel.nargs}"
        )
    if len(kinds) != kernel.nargs:
        raise AssertionError(
            f"{kernel.name}: outputs must be passed (no_return kernels update in place)"
        )
    in_kinds, out_kinds = kinds[: kernel.nin], kinds[kernel.nin :]
    if any(kind != "array" for kind, _ in out_kinds):
        raise AssertionError(f"{kernel.name}: every output must be an array, got {out_kinds}")
    in_types = tuple(dtype if kind == "array" else None for kind, _ in in_kinds)
    # The arrays are all of `dtype` in the launch described (launch() takes T from them).
    in_types_decided, out_types, type_map = kernel._decide_params_type(
        in_types, tuple(dtype for _ in out_kinds)
    )
    array32 = size * dtype.itemsize <= _INDEX_32_LIMIT
    infos = []
    for (kind, _), t in zip(in_kinds + out_kinds, in_types_decided + out_types, strict=True):
        if kind == "array":
            infos.append(
                k._ArgInfo(_ARG_NDARRAY, cp.cupy.ndarray, numpy.dtype(t), 1, True, array32)
            )
        else:
            infos.append(k._ArgInfo(_ARG_SCALAR, cp._scalar.CScalar, numpy.dtype(t), 0, True, True))
    infos.append(
        k._ArgInfo(_ARG_INDEXER, cp._carray.Indexer, None, 1, True, size <= _INDEX_32_LIMIT)
    )
    return tuple(infos), type_map


# --------------------------------------------------------------------- CuPy -> NVRTC, spied
@dataclasses.dataclass(frozen=True)
class CupyBuild:
    """One kernel as CuPy compiles it: the exact NVRTC input and output."""

    name: str
    dtype: numpy.dtype
    arch: str
    code: str  # _get_elementwise_kernel_code's text (without CuPy's header lines)
    source: str  # what NVRTC compiled: CuPy's header includes + code
    program_name: str  # NVRTC program name CuPy gave
    options: tuple  # the NVRTC options, in CuPy's order
    method: str  # "cubin" (CuPy asks for machine code for arch) or "ptx"
    ptx: str
    cubin: bytes | None
    nvrtc_version: tuple


class _NoCache:
    """A kernel cache backend that never hits and stores nothing."""

    def load(self, name):
        return None

    def save(self, name, cubin, source):
        return None


_capture_lock = threading.Lock()


@contextlib.contextmanager
def _capturing(cp, arch: str):
    """Patch CuPy's device queries and record what reaches NVRTC (a list of dicts)."""
    compiler = cp.compiler
    records = []
    base = compiler._NVRTCProgram

    class SpyProgram(base):
        def compile(self, options=(), log_stream=None):
            out = super().compile(options, log_stream)
            ptx = out[0] if self.method == "ptx" else cp.nvrtc.getPTX(self.ptr)
            records.append(
                dict(
                    source=self.src,
                    name=self.name,
                    options=tuple(options),
                    method=self.method,
                    result=out[0],
                    ptx=ptx,
                )
            )
            return out

    saved = {
        n: getattr(compiler, n)
        for n in (
            "_NVRTCProgram",
            "_get_arch",
            "_get_arch_for_options_for_nvrtc",
            "_kernel_cache_backend",
        )
    }
    with _capture_lock:
        compiler._NVRTCProgram = SpyProgram
        compiler._get_arch = lambda: arch[len("sm_") :]
        compiler._get_arch_for_options_for_nvrtc = saved[
            "_get_arch_for_options_for_nvrtc"
        ].__wrapped__
        compiler._kernel_cache_backend = _NoCache()
        try:
            yield records
        finally:
            for n, v in saved.items():
                setattr(compiler, n, v)


def _as_text(x) -> str:
    return x.decode() if isinstance(x, bytes) else x


@functools.cache
def cupy_build(
    args: KernelArgs, kinds: tuple, dtype, arch: str, size: int = DEFAULT_SIZE
) -> CupyBuild:
    """Compile ``args`` the way CuPy does at the first launch of ``kinds`` over ``dtype``.

    Parameters
    ----------
    args : KernelArgs
        The ``cupy.ElementwiseKernel`` constructor arguments.
    kinds : tuple
        The launch's positional arguments (:func:`launch_kinds`).
    dtype : numpy.dtype
        The arrays' dtype.
    arch : str
        ``"sm_80"`` or ``"sm_90"``: the device's compute capability CuPy would ask for.
    size : int
        Elements per array (decides CuPy's 32- or 64-bit indexing).

    Raises
    ------
    CodegenError
        CuPy moved, or did not reach NVRTC as expected.
    CompileError
        NVRTC rejected the source (the message holds its log).
    """
    cp = cupy_modules()
    dtype = numpy.dtype(dtype)
    if not re.fullmatch(r"sm_\d+", arch):
        raise ValueError(f"arch must look like 'sm_90', got {arch!r}")
    kernel = cp._kernel.ElementwiseKernel(
        args.in_params,
        args.out_params,
        args.operation,
        args.name,
        preamble=args.preamble,
        options=args.options,
        no_return=args.no_return,
    )
    arginfos, type_map = launch_arginfos(cp, kernel, kinds, dtype, size)
    # ElementwiseKernel._get_kernel_code / _compile_kernel pass exactly these.
    call = (arginfos, type_map, kernel.params, kernel.operation, kernel.name, kernel.preamble)
    code = cp._kernel._get_elementwise_kernel_code(*call, **kernel.kwargs)
    with _capturing(cp, arch) as records:
        try:
            cp._kernel._get_elementwise_kernel.__wrapped__(*call, **kernel.kwargs)
        except Exception as exc:
            reached = any(r["source"].endswith(code) for r in records)
            if type(exc).__name__ == "CompileException":
                log = getattr(exc, "_msg", None) or str(exc)
                raise CompileError(f"NVRTC rejected {args.name} ({dtype}, {arch}):\n{log}") from exc
            if not (
                reached
                and isinstance(exc, (cp.runtime.CUDARuntimeError, cp.driver.CUDADriverError))
            ):
                raise CodegenError(
                    f"CuPy did not build {args.name} as expected: {type(exc).__name__}: {exc}"
                ) from exc
            # Loading the cubin into a module needs a driver; on a GPU machine it just works.
    mine = [r for r in records if r["source"].endswith(code)]
    if len(mine) != 1:
        raise CodegenError(
            f"{args.name}: expected one NVRTC compilation of the kernel, "
            f"recorded {len(mine)} (of {len(records)})"
        )
    r = mine[0]
    return CupyBuild(
        name=args.name,
        dtype=dtype,
        arch=arch,
        code=code,
        source=r["source"],
        program_name=r["name"],
        options=r["options"],
        method=r["method"],
        ptx=_as_text(r["ptx"]),
        cubin=r["result"] if r["method"] == "cubin" else None,
        nvrtc_version=tuple(cp.nvrtc.getVersion()),
    )


def nvrtc_compile(source: str, options, name: str = "kernel.cu") -> tuple[str, bytes | None]:
    """``(ptx, cubin)`` of ``source`` compiled by CuPy's NVRTC binding with exactly
    ``options`` (the cubin when they hold ``-arch=sm_XX``, else None)."""
    nv = cupy_modules().nvrtc
    prog = nv.createProgram(source, name, (), ())
    try:
        try:
            nv.compileProgram(prog, list(options))
        except nv.NVRTCError as exc:
            raise CompileError(
                f"NVRTC failed with {list(options)}:\n{nv.getProgramLog(prog)}"
            ) from exc
        ptx = _as_text(nv.getPTX(prog))
        real = any(re.fullmatch(r"-arch=sm_\d+", o) for o in options)
        return ptx, (nv.getCUBIN(prog) if real else None)
    finally:
        nv.destroyProgram(prog)


# ------------------------------------------------------------------------------------ PTX
def ptx_entries(ptx: str) -> dict[str, str]:
    """PTX text of each ``.entry`` (kernel), by name, from its header to its closing brace."""
    entries = {}
    for m in re.finditer(r"\.entry\s+(\w+)\s*\(", ptx):
        start = m.start()
        pos = ptx.index("{", ptx.index(")", start))
        depth = 0
        while True:  # braces nest in PTX (scoped register blocks)
            depth += ptx[pos] == "{"
            depth -= ptx[pos] == "}"
            pos += 1
            if depth == 0:
                break
        entries[m.group(1)] = ptx[start:pos]
    return entries


_PTX_FLOAT_OP = re.compile(r"^\s*(?:@!?%\w+\s+)?([a-z]+(?:\.[a-z0-9]+)*\.f(?:16|32|64))\b", re.M)
_PTX_NOT_ARITH = ("ld.", "st.", "mov.", "cvta.", "param.", "reg.", "local.", "shared.", "global.")


def ptx_float_ops(ptx: str) -> list[str]:
    """Floating-point instruction opcodes of PTX text (``mul.rn.ftz.f32``, ...), in order:
    arithmetic, conversions, comparisons (no loads, stores, moves or declarations)."""
    return [op for op in _PTX_FLOAT_OP.findall(ptx) if not op.startswith(_PTX_NOT_ARITH)]


_FTZ_CAPABLE = (
    "add",
    "sub",
    "mul",
    "div",
    "sqrt",
    "fma",
    "mad",
    "rcp",
    "rsqrt",
    "min",
    "max",
    "abs",
    "neg",
    "setp",
    "testp",
    "ex2",
    "lg2",
    "sin",
    "cos",
)


def ptx_problems(ptx: str, name: str, dtype, operation: str) -> list[str]:
    """What, in kernel ``name`` of a PTX module, breaks xpopt's rounding contract.

    The whole module is read (a helper function would count). Empty when: no ``.f64`` in a
    float32 module; every float instruction of the entry has ``T``'s width (conversions
    aside); no ``fma``/``mad``; ``add``/``sub``/``mul``
    carry ``.rn``; nothing ``.approx``; ``sqrt(`` and ``/`` in ``operation`` show as
    ``sqrt.rn`` / ``div.rn``; in float32 every arithmetic op carries ``.ftz`` (CuPy's
    ``-ftz=true``), in float64 none does.
    """
    dtype = numpy.dtype(dtype)
    width = {4: "f32", 8: "f64"}[dtype.itemsize]
    problems = []
    entries = ptx_entries(ptx)
    if name not in entries:
        return [f"no .entry {name} in the PTX (entries: {sorted(entries)})"]
    if width == "f32":
        lines = sorted(
            {
                ln.strip()
                for ln in ptx.splitlines()
                if ".f64" in ln and not ln.lstrip().startswith("//")
            }
        )
        if lines:
            problems.append(f"FP64 in a float32 kernel: {lines[:5]}")
    # The whole module (one kernel, plus any helper .func) is read, not just the entry.
    ops = ptx_float_ops(ptx)
    if not ptx_float_ops(entries[name]):
        problems.append("no float arithmetic found in the kernel")
    for op in sorted(set(ops)):
        parts = op.split(".")
        if parts[0] in ("fma", "mad"):
            problems.append(f"fused multiply-add {op}")
        elif parts[0] in ("add", "sub", "mul") and "rn" not in parts:
            problems.append(f"{op} without .rn (ptxas may contract it into an FMA)")
        if "approx" in parts:
            problems.append(f"{op} is approximate")
        if parts[-1] != width and parts[0] != "cvt":
            problems.append(f"{op} is not of T's width {width}")
        if parts[0] in _FTZ_CAPABLE:
            if width == "f32" and "ftz" not in parts:
                problems.append(f"{op} lacks .ftz: CuPy's -ftz=true is not in effect")
            if width == "f64" and "ftz" in parts:
                problems.append(f"{op} flushes subnormals in a float64 kernel")
    for needed, marker in ((f"sqrt.rn.{width}", "sqrt("), (f"div.rn.{width}", "/")):
        if marker in operation and not any(
            o.split(".")[0] == needed.split(".")[0] and "rn" in o.split(".") and o.endswith(width)
            for o in ops
        ):
            problems.append(
                f"no {needed} although the operation has {marker!r} (found {sorted(set(ops))})"
            )
    return problems


# ------------------------------------------------------------------------- nvcc (CUDA 13)
#: NVRTC options with no nvcc counterpart, and why dropping them cannot change the code.
NVRTC_ONLY = {
    "--device-as-default-execution-space": (
        "NVRTC only: makes unannotated functions __device__; nvcc would instead reject a "
        "kernel calling such a function, so a dropped option cannot silently change code"
    ),
    "-default-device": "short form of --device-as-default-execution-space",
}
_NVCC_KEEP = re.compile(
    r"-I.+|--?fmad=(true|false)|--?ftz=(true|false)|--?prec-(div|sqrt)=(true|false)"
    r"|--?std=c\+\+\d\d|-arch=sm_\d+|-D\w+(=.*)?|--use_fast_math|-use_fast_math"
)


def nvcc_options(options) -> tuple[tuple, tuple]:
    """``(nvcc options, dropped)`` for NVRTC ``options``: the same flags where nvcc has them.

    Raises
    ------
    CompileError
        An option with no known translation (so a new CuPy option is looked at, not lost).
    """
    kept, dropped = [], []
    for o in options:
        if o in NVRTC_ONLY:
            dropped.append(o)
        elif _NVCC_KEEP.fullmatch(o):
            kept.append(o)
        else:
            raise CompileError(
                f"no nvcc translation for the NVRTC option {o!r}; extend "
                "tests/cupy_codegen.py nvcc_options"
            )
    return tuple(kept), tuple(dropped)


@dataclasses.dataclass(frozen=True)
class NvccBuild:
    """CUDA 13 nvcc's build of one :class:`CupyBuild`'s exact source."""

    cubin: bytes
    ptx: str
    command: tuple
    dropped: tuple


def _run(cmd, what: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise CompileError(
            f"{what} failed (exit {proc.returncode}): {' '.join(map(str, cmd))}"
            f"\n--- stderr ---\n{proc.stderr.strip()}\n--- stdout ---\n"
            f"{proc.stdout.strip()}"
        )
    return proc


@functools.cache
def nvcc_build(build: CupyBuild, nvcc: str) -> NvccBuild:
    """Compile ``build.source`` with nvcc to a cubin for ``build.arch`` (PTX kept too)."""
    opts, dropped = nvcc_options(build.options)
    if f"-arch={build.arch}" not in opts:
        raise CompileError(
            f"{build.name}: CuPy's options {build.options} do not target {build.arch}"
        )
    with tempfile.TemporaryDirectory(prefix="xpopt-cupy-nvcc-") as tmp:
        src, out = Path(tmp, f"{build.name}.cu"), Path(tmp, f"{build.name}.cubin")
        keep = Path(tmp, "keep")
        keep.mkdir()
        src.write_text(build.source)
        cmd = (nvcc, "-cubin", *opts, "--keep", "--keep-dir", str(keep), "-o", str(out), str(src))
        _run(cmd, f"nvcc ({build.name}, {build.dtype}, {build.arch})")
        ptx_files = list(keep.glob("*.ptx"))
        if len(ptx_files) != 1:
            raise CompileError(f"nvcc --keep left {len(ptx_files)} PTX files")
        return NvccBuild(
            cubin=out.read_bytes(), ptx=ptx_files[0].read_text(), command=cmd, dropped=dropped
        )


# ---------------------------------------------------------------------------- nvdisasm
def find_nvdisasm() -> str | None:
    """nvdisasm from the ``nvidia-cuda-nvdisasm`` wheel (found through its file list), or on
    PATH, or None."""
    try:
        dist = importlib.metadata.distribution("nvidia-cuda-nvdisasm")
    except importlib.metadata.PackageNotFoundError:
        dist = None
    if dist is not None:
        for f in dist.files or ():
            if Path(str(f)).name in ("nvdisasm", "nvdisasm.exe"):
                path = Path(dist.locate_file(f)).resolve()
                if path.is_file() and os.access(path, os.X_OK):
                    return str(path)
    return shutil.which("nvdisasm")


@functools.cache
def disassemble(cubin: bytes, nvdisasm: str) -> str:
    """nvdisasm's listing of a cubin's code sections."""
    with tempfile.TemporaryDirectory(prefix="xpopt-nvdisasm-") as tmp:
        path = Path(tmp, "k.cubin")
        path.write_bytes(cubin)
        return _run((nvdisasm, "-c", str(path)), "nvdisasm").stdout


_SASS_FUNCTION = re.compile(r"^\s*\.type\s+([^,\s]+)\s*,\s*@function", re.M)
_SASS_INSTR = re.compile(
    r"^\s*/\*[0-9a-f]{4,}\*/\s+(?:@!?U?P[T\d]+\s+)?([A-Z][A-Z0-9_]*(?:\.[A-Z0-9_]+)*)"
)


def sass_functions(listing: str) -> dict[str, list[str]]:
    """Opcodes (with modifiers, e.g. ``FMUL.FTZ``) of each function of an nvdisasm listing,
    by name: the kernel and the internal subroutines it calls (``$__internal_0_$__cuda_...``).
    """
    functions: dict[str, list[str]] = {}
    current = None
    for line in listing.splitlines():
        m = _SASS_FUNCTION.match(line)
        if m:
            current = m.group(1)
            functions.setdefault(current, [])
            continue
        m = _SASS_INSTR.match(line)
        if m and current is not None:
            functions[current].append(m.group(1))
    return functions


def _subroutine_kind(name: str) -> str:
    """``$__internal_1_$__cuda_sm3x_div_rn_ftz_f32_slowpath`` ->
    ``__cuda_sm3x_div_rn_ftz_f32_slowpath``."""
    return re.sub(r"^\$__internal_\d+_\$", "", name)


def sass_counts(opcodes) -> collections.Counter:
    """Counts of opcodes by base name (``FFMA``, ``FMUL``, ...), plus ``*.FTZ`` totals."""
    c = collections.Counter(op.split(".")[0] for op in opcodes)
    c[".FTZ"] = sum("FTZ" in op.split(".") for op in opcodes)
    return c


_SASS_FP64 = re.compile(
    r"^(DADD|DMUL|DFMA|DSETP|DSET|DMNMX|DMMA)\b|\.F64\b|"
    r"^MUFU\.\w*64H"
)
FMA_OPS = ("FFMA", "DFMA")


def _fp64_ops(opcodes) -> list[str]:
    return sorted({op for op in opcodes if _SASS_FP64.search(op)})


@dataclasses.dataclass(frozen=True)
class Expansions:
    """Fused multiply-adds in the correctly rounded division and square root sequences of one
    (arch, dtype, options): per operation in the kernel's body, and per slow-path subroutine."""

    body: dict  # {"div": Counter, "sqrt": Counter}
    subroutines: dict  # {kind: Counter}


def sass_problems(
    listing: str,
    name: str,
    dtype,
    n_div: int,
    n_sqrt: int,
    expansions: Expansions | None,
    operation: str = "",
) -> list[str]:
    """What, in the machine code of kernel ``name``, breaks xpopt's rounding contract.

    Parameters
    ----------
    listing : str
        nvdisasm's output for the kernel's cubin.
    name : str
        The kernel.
    dtype : numpy.dtype
        What ``T`` stood for.
    n_div, n_sqrt : int
        Correctly rounded divisions and square roots in the kernel's PTX.
    expansions : Expansions or None
        :func:`probe_expansions` for the same arch, dtype and options (None: no division or
        square root is expected, so neither any FFMA/DFMA nor any subroutine).
    operation : str
        The kernel's operation: a ``/`` in it needs a correctly rounded division slow path
        (``..._div_rn_...``) in the machine code, a ``sqrt(`` a square-root one
        (``..._sqrt_rn_...``); approximate instructions have none.

    Returns
    -------
    list of str
        Empty when: the kernel is there; a float32 kernel has no FP64 instruction; FFMA/DFMA
        in the kernel's body number exactly ``n_div`` division and ``n_sqrt`` square-root
        sequences' worth, and each subroutine's match the probes' (any other is a contracted
        multiply-add of the operation); the subroutines are correctly rounded (``_rn_``)
        ones of ``T``'s width; in float32 every ``FADD``/``FMUL`` of the body carries ``.FTZ``,
        in float64 no instruction does.
    """
    dtype = numpy.dtype(dtype)
    width = {4: "f32", 8: "f64"}[dtype.itemsize]
    functions = sass_functions(listing)
    if name not in functions:
        return [f"kernel {name} not in the disassembly (functions: {sorted(functions)})"]
    body = functions[name]
    problems = []
    everything = [op for ops in functions.values() for op in ops]
    if width == "f32":
        fp64 = _fp64_ops(everything)
        if fp64:
            problems.append(f"FP64 instructions in a float32 kernel: {fp64}")
        arith = [op for op in body if op.split(".")[0] in ("FADD", "FMUL")]
        if not arith:
            problems.append("no FADD/FMUL in the kernel's body")
        missing = sorted({op for op in arith if "FTZ" not in op.split(".")})
        if missing:
            problems.append(f"FP32 arithmetic without .FTZ: {missing}")
    else:
        ftz = sorted({op for op in everything if "FTZ" in op.split(".")})
        if ftz:
            problems.append(f"flush-to-zero instructions in a float64 kernel: {ftz}")
    if expansions is None:
        if n_div or n_sqrt:
            raise ValueError("expansions are needed to account for divisions and square roots")
        expansions = Expansions(
            body={"div": collections.Counter(), "sqrt": collections.Counter()}, subroutines={}
        )
    counts = sass_counts(body)
    for op in FMA_OPS:
        want = n_div * expansions.body["div"][op] + n_sqrt * expansions.body["sqrt"][op]
        if counts[op] != want:
            problems.append(
                f"{counts[op]} {op} in the kernel's body, where its {n_div} division(s) and "
                f"{n_sqrt} square root(s) account for {want}: a multiply-add was fused"
            )
    kinds = [_subroutine_kind(sub) for sub in functions if sub != name]
    for marker, needed in (("/", "div_rn"), ("sqrt(", "sqrt_rn")):
        if marker in operation and not any(needed in k for k in kinds):
            problems.append(
                f"the operation has {marker!r} but the machine code calls no "
                f"correctly rounded {needed} slow path (subroutines: {kinds})"
            )
    for sub, ops in functions.items():
        if sub == name:
            continue
        kind = _subroutine_kind(sub)
        if "_rn_" not in kind or width not in kind:
            problems.append(f"subroutine {kind} is not a correctly rounded {width} one")
        if ("ftz" in kind.split("_")) != (width == "f32"):
            problems.append(
                f"subroutine {kind}: flush-to-zero variant in {width} "
                f"{'missing' if width == 'f32' else 'present'}"
            )
        if kind not in expansions.subroutines:
            problems.append(
                f"subroutine {kind} does not occur in the division and square-root "
                f"probes ({sorted(expansions.subroutines)})"
            )
            continue
        c = sass_counts(ops)
        for op in FMA_OPS:
            if c[op] != expansions.subroutines[kind][op]:
                problems.append(
                    f"{c[op]} {op} in {kind}, the probes have {expansions.subroutines[kind][op]}"
                )
    return problems


def count_ptx(ptx_entry: str, base: str, width: str) -> int:
    """How many ``base.rn...width`` instructions (e.g. ``div``, ``sqrt``) a PTX entry has."""
    return sum(
        1 for op in ptx_float_ops(ptx_entry) if op.split(".")[0] == base and op.endswith(width)
    )


PROBES = {
    "div": ("T a, T b", "T out", "out = a / b;"),
    "sqrt": ("T a", "T out", "out = sqrt(a);"),
}


def probe_builds(dtype, arch: str, options: tuple) -> dict[str, tuple[KernelArgs, CupyBuild]]:
    """The probe kernels (``out = a / b;``, ``out = sqrt(a);``) built as xpopt's are."""
    dtype = numpy.dtype(dtype)
    out = {}
    for what, (ins, outs, op) in PROBES.items():
        args = KernelArgs(ins, outs, op, f"xpopt_probe_{what}", "", tuple(options), True)
        kinds = tuple(("array", dtype) for _ in range(len(ins.split(",")) + 1))
        out[what] = (args, cupy_build(args, kinds, dtype, arch))
    return out


@functools.cache
def probe_expansions(dtype, arch: str, options: tuple, nvcc: str, nvdisasm: str) -> Expansions:
    """The FFMA/DFMA counts of one correctly rounded division and one square root, from
    probe kernels built like xpopt's (CuPy's generator, NVRTC options, nvcc, nvdisasm)."""
    body, subs = {}, {}
    for what, (args, build) in probe_builds(dtype, arch, options).items():
        functions = sass_functions(disassemble(nvcc_build(build, nvcc).cubin, nvdisasm))
        body[what] = sass_counts(functions[args.name])
        for sub, ops in functions.items():
            if sub != args.name:
                subs[_subroutine_kind(sub)] = sass_counts(ops)
    return Expansions(body=body, subroutines=subs)


def prefetch_machine_code(builds, nvcc: str, nvdisasm: str, workers: int | None = None) -> None:
    """Run nvcc and nvdisasm for many builds at once (one process each, ``workers`` at a
    time, default one per CPU); the results land in :func:`nvcc_build` and
    :func:`disassemble`'s caches. Errors surface later, from the cached calls' owners."""
    import concurrent.futures  # noqa: PLC0415

    def one(build):
        disassemble(nvcc_build(build, nvcc).cubin, nvdisasm)

    with concurrent.futures.ThreadPoolExecutor(workers or os.cpu_count() or 2) as pool:
        for f in [pool.submit(one, b) for b in dict.fromkeys(builds)]:
            try:
                f.result()
            except CompileError:
                pass  # reported, with its command line, by the test that needs the build
