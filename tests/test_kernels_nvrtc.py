"""The fused kernels as CuPy itself builds them: source, NVRTC output and machine code.

No GPU is needed. For every kernel of ``xpopt.kernels.SPECS``, float32 and float64, and the
architectures ``sm_80`` (A100) and ``sm_90`` (H100/H200):

- the constructor arguments are recorded from ``xpopt.kernels.get_kernel(spec)`` under
  ``xpopt.testing.cupy_standin()``, and the argument kinds from ``xpopt.kernels.launch``: what
  is proven is what xpopt hands CuPy (a ``get_kernel`` that dropped ``options`` would compile
  with FMA contraction, which the checks below report; see the controls);
- CuPy's own code generator and compile path (CuPy 14.2, ``tests/cupy_codegen.py``) produce
  the exact source and NVRTC options; CuPy's NVRTC (12.9, the wheel
  ``nvidia-cuda-nvrtc-cu12``) compiles them to a cubin and PTX;
- the PTX: ``T``-width float arithmetic only, no ``fma``, ``.rn`` add/sub/mul, correctly
  rounded ``div.rn``/``sqrt.rn``, ``.ftz`` on every float32 operation (CuPy appends
  ``-ftz=true``: a CuPy that stopped would be noticed here) and none in float64;
- the machine code: the same source compiled by CUDA 13's nvcc (nvdisasm 13 cannot read
  NVRTC 12 cubins) with the same options, disassembled by the ``nvidia-cuda-nvdisasm``
  wheel: no FP64 instruction in float32, ``.FTZ`` on float32 ``FADD``/``FMUL`` and nowhere in
  float64, correctly rounded slow paths, and no ``FFMA``/``DFMA`` beyond those of the
  correctly rounded division and square-root sequences (counted from probe kernels);
  nvcc's PTX has the same float instructions, in the same order, as NVRTC's.

Controls built the same way (a double literal, an explicit ``fma``, momentum without
``--fmad=false``, a build without ``-ftz=true``, fast math) show each check can fail.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import sys

import numpy
import pytest

import cupy_codegen as cg
from conftest import IN_CI, require_nvcc
from xpopt import kernels

SPECS = tuple(kernels.SPECS.values())
DTYPES = [pytest.param(d, id=d.name) for d in cg.DTYPES]
ARCHS = list(cg.ARCHS)
F32 = numpy.dtype(numpy.float32)


# ------------------------------------------------------------------------------- gates
def _unavailable(what: str, why: str):
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true: {why}")
    pytest.skip(f"{what} is not available here: {why}")


def require_cupy_nvrtc() -> None:
    """CuPy (the pinned version) with an NVRTC library; skips without one (fails under
    CI=true). A CuPy whose private names moved fails, here and everywhere, never skips."""
    why = cg.nvrtc_unavailable_reason()
    if why is not None:
        _unavailable("CuPy with NVRTC (pip install cupy-cuda12x nvidia-cuda-nvrtc-cu12)", why)


def require_nvdisasm() -> str:
    """nvdisasm's path; skips without it (fails under CI=true)."""
    path = cg.find_nvdisasm()
    if path is None:
        _unavailable(
            "nvdisasm (pip install nvidia-cuda-nvdisasm)",
            "not found in the wheel nvidia-cuda-nvdisasm nor on PATH",
        )
    return path


@pytest.fixture
def nvrtc() -> None:
    require_cupy_nvrtc()


@pytest.fixture
def nvcc() -> str:
    return require_nvcc()


@pytest.fixture
def nvdisasm() -> str:
    return require_nvdisasm()


# ----------------------------------------------------- what xpopt passes to CuPy, recorded
def record_args(get_kernel) -> dict[str, cg.KernelArgs]:
    """``cupy.ElementwiseKernel``'s constructor arguments as ``get_kernel(spec)`` passes them,
    by kernel name, recorded by ``xpopt.testing.cupy_standin()``'s ElementwiseKernel."""
    from xpopt.testing import cupy_standin, is_standin  # noqa: PLC0415

    kernels._cache.clear()
    try:
        with cupy_standin() as cp:
            built = {spec.name: get_kernel(spec) for spec in SPECS}
            assert is_standin(sys.modules["cupy"])
            assert [k.name for k in cp.kernels_built] == [s.name for s in SPECS]
            for name, k in built.items():
                assert any(k is b for b in cp.kernels_built), name
                # Arguments KernelArgs does not carry must keep CuPy's defaults.
                extra = {
                    a: getattr(k, a)
                    for a in ("loop_prep", "after_loop", "kwargs", "return_tuple")
                    if getattr(k, a, None)
                }
                assert not extra, f"{name}: also passes {extra}; extend cupy_codegen.KernelArgs"
            return {name: cg.KernelArgs.of(k) for name, k in built.items()}
    finally:
        kernels._cache.clear()


@functools.cache
def recorded_args() -> dict[str, cg.KernelArgs]:
    """What ``xpopt.kernels.get_kernel`` passes CuPy, by kernel name (recorded once)."""
    return record_args(kernels.get_kernel)


@functools.cache
def kinds(spec_name: str, dtype: numpy.dtype) -> tuple:
    return cg.launch_kinds(kernels.SPECS[spec_name], dtype)


def build(spec, dtype, arch, size: int = cg.DEFAULT_SIZE) -> cg.CupyBuild:
    dtype = numpy.dtype(dtype)
    return cg.cupy_build(recorded_args()[spec.name], kinds(spec.name, dtype), dtype, arch, size)


def width(dtype) -> str:
    return {4: "f32", 8: "f64"}[numpy.dtype(dtype).itemsize]


def machine_code(b: cg.CupyBuild, args: cg.KernelArgs, nvcc: str, nvdisasm: str):
    """``(nvcc build, listing, problems, body counts)`` of one CuPy build."""
    nb = cg.nvcc_build(b, nvcc)
    listing = cg.disassemble(nb.cubin, nvdisasm)
    entry = cg.ptx_entries(nb.ptx)[b.name]
    w = width(b.dtype)
    n_div, n_sqrt = cg.count_ptx(entry, "div", w), cg.count_ptx(entry, "sqrt", w)
    expansions = (
        cg.probe_expansions(b.dtype, b.arch, args.options, nvcc, nvdisasm)
        if n_div or n_sqrt
        else None
    )
    problems = cg.sass_problems(listing, b.name, b.dtype, n_div, n_sqrt, expansions, args.operation)
    counts = cg.sass_counts(cg.sass_functions(listing).get(b.name, ()))
    return nb, listing, problems, counts


@pytest.fixture(scope="module")
def machine_code_prefetched() -> None:
    """Every nvcc build and disassembly the machine-code tests read, run in parallel once:
    the kernels and the probes for each (arch, dtype), and the controls."""
    nvcc, nvdisasm = require_nvcc(), require_nvdisasm()
    require_cupy_nvrtc()
    builds = []
    for arch in ARCHS:
        for dtype in cg.DTYPES:
            builds += [build(spec, dtype, arch) for spec in SPECS]
            options = recorded_args()[SPECS[0].name].options
            builds += [b for _, b in cg.probe_builds(dtype, arch, options).values()]
    for args, like in _controls().values():
        builds.append(cg.cupy_build(args, kinds(like, F32), F32, "sm_90"))
        if "/" in args.operation or "sqrt(" in args.operation:
            builds += [b for _, b in cg.probe_builds(F32, "sm_90", args.options).values()]
    cg.prefetch_machine_code(builds, nvcc, nvdisasm)


# ------------------------------------------------------------------------------- tests
def test_cupy_private_code_generator_is_where_it_was_read():
    """The pinned CuPy and every private name the proof drives (fails, not skips, if moved)."""
    try:
        cp = cg.cupy_modules()
    except ModuleNotFoundError as exc:
        _unavailable("CuPy", str(exc))
    assert cp.cupy.__version__.startswith(cg.CUPY_PINNED + ".")


def test_get_kernel_passes_the_specs_to_cupy():
    """The recorded constructor arguments: the spec's text, its options as a tuple (CuPy
    requires one), no_return; and launch passes arrays and T-typed scalars in spec order."""
    recorded = recorded_args()
    assert set(recorded) == {s.name for s in SPECS}
    for spec in SPECS:
        assert recorded[spec.name] == cg.KernelArgs.from_spec(spec), spec.name
        assert "--fmad=false" in recorded[spec.name].options, spec.name
        for dtype in cg.DTYPES:
            want = tuple(
                ("scalar", dtype.type) if role == "scalar" else ("array", dtype)
                for role, _, _ in spec.params
            )
            assert kinds(spec.name, dtype) == want, (spec.name, dtype)


@pytest.mark.nvcc
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("arch", ARCHS)
def test_source_and_options_are_cupys(nvrtc, arch, dtype):
    """What NVRTC received: CuPy's headers + CuPy's generated kernel around the operation, and
    CuPy's option list: assemble_cupy_compiler_options(kernel options), then -ftz=true, the
    architecture and --device-as-default-execution-space, in that order; a cubin for arch."""
    cp = cg.cupy_modules()
    ctype = {"f32": "float", "f64": "double"}[width(dtype)]
    headers = "".join(f"#include <{h}>\n" for h in cp.core._cupy_header_list)
    for spec in SPECS:
        args = recorded_args()[spec.name]
        b = build(spec, dtype, arch)
        assert b.source == headers + b.code, spec.name
        assert f'extern "C" __global__ void {spec.name}(' in b.code
        assert f"typedef {ctype} T;" in b.code
        assert spec.operation in b.code
        for role, _, pname in spec.params:
            if role == "scalar":
                assert f"const {ctype} {pname}," in b.code, pname  # by value, as T
            else:
                assert f"CArray<{ctype}, 1, 1, 1> _raw_{pname}" in b.code, pname
        want = tuple(cp.core.assemble_cupy_compiler_options(args.options)) + (
            "-ftz=true",
            f"-arch={arch}",
            "--device-as-default-execution-space",
        )
        assert b.options == want, spec.name
        # The caller's --fmad=false is not overridden by anything CuPy adds after it.
        fmad = [o for o in b.options if o.lstrip("-").startswith("fmad")]
        assert fmad == ["--fmad=false"], b.options
        assert b.method == "cubin" and b.cubin[:4] == b"\x7fELF", spec.name
        assert b.program_name.endswith(".cu"), b.program_name
        assert f".target {arch}" in b.ptx


@pytest.mark.nvcc
def test_recorded_inputs_reproduce_cupys_output(nvrtc):
    """The recorded source and options are all NVRTC was given: compiled again with CuPy's
    NVRTC binding (createProgram / compileProgram / getPTX / getCUBIN) they give the same PTX
    and the same cubin."""
    for spec in SPECS:
        b = build(spec, F32, "sm_90")
        ptx, cubin = cg.nvrtc_compile(b.source, b.options)
        assert ptx == b.ptx, spec.name
        assert cubin == b.cubin, spec.name


@pytest.mark.nvcc
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("arch", ARCHS)
def test_ptx_rounds_as_specified(nvrtc, arch, dtype):
    """CuPy's PTX: T-width float ops, no FMA, .rn everywhere, IEEE div/sqrt, .ftz iff float32."""
    for spec in SPECS:
        b = build(spec, dtype, arch)
        assert cg.ptx_problems(b.ptx, spec.name, dtype, spec.operation) == [], spec.name
        ops = cg.ptx_float_ops(b.ptx)
        assert not any(o.split(".")[0] in ("fma", "mad") for o in ops), ops


@pytest.mark.nvcc
@pytest.mark.parametrize("dtype", DTYPES)
def test_ptx_of_arrays_beyond_2_gib(nvrtc, dtype):
    """A model of 2**30 parameters: CuPy indexes its arrays with 64 bits (another CArray type,
    another source); the arithmetic is checked again."""
    ctype = {"f32": "float", "f64": "double"}[width(dtype)]
    for spec in SPECS:
        b = build(spec, dtype, "sm_90", size=1 << 30)
        assert f"CArray<{ctype}, 1, 1, 0>" in b.code and "CIndexer<1, 1>" in b.code
        assert cg.ptx_problems(b.ptx, spec.name, dtype, spec.operation) == [], spec.name


@pytest.mark.nvcc
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("arch", ARCHS)
def test_machine_code_rounds_as_specified(
    nvrtc, nvcc, nvdisasm, machine_code_prefetched, arch, dtype, record_property
):
    """SASS of CuPy's source (nvcc 13, CuPy's options): no FP64 in float32, FTZ iff float32,
    FFMA/DFMA only inside correctly rounded div/sqrt, the same PTX float ops as NVRTC's."""
    for spec in SPECS:
        args = recorded_args()[spec.name]
        b = build(spec, dtype, arch)
        nb, listing, problems, counts = machine_code(b, args, nvcc, nvdisasm)
        assert nb.dropped == ("--device-as-default-execution-space",), nb.dropped
        assert re.search(rf"^\s*\.target\s+{arch}\s*$", listing, re.M), "not a cubin for " + arch
        assert problems == [], f"{spec.name}: {problems}"
        assert cg.ptx_float_ops(cg.ptx_entries(nb.ptx)[spec.name]) == cg.ptx_float_ops(
            cg.ptx_entries(b.ptx)[spec.name]
        ), spec.name
        record_property(
            f"{spec.name}_{arch}_{dtype}",
            {k: counts[k] for k in ("FFMA", "DFMA", "FMUL", "FADD", "DMUL", "DADD", ".FTZ")},
        )
        if width(dtype) == "f32":
            assert counts["DFMA"] == counts["DMUL"] == counts["DADD"] == 0
            assert counts[".FTZ"] >= counts["FADD"] + counts["FMUL"] > 0
        else:
            assert counts[".FTZ"] == 0 and counts["DMUL"] + counts["DADD"] > 0
        if "/" not in spec.operation and "sqrt(" not in spec.operation:
            assert counts["FFMA"] == counts["DFMA"] == 0, (spec.name, counts)


# ------------------------------------------------------------------------------ controls
def _control(name: str, base: cg.KernelArgs, **changes) -> cg.KernelArgs:
    return dataclasses.replace(base, name=name, **changes)


def _controls():
    rec = recorded_args()
    gd, momentum, rmsprop = rec["xpopt_gd"], rec["xpopt_momentum"], rec["xpopt_rmsprop"]
    return {
        "double_literal": (
            _control("ctl_double_literal", gd, operation="param = param - 0.1 * lr * grad;"),
            "xpopt_gd",
        ),
        "explicit_fma": (
            _control("ctl_explicit_fma", gd, operation="param = fma(-lr, grad, param);"),
            "xpopt_gd",
        ),
        "no_fmad_false": (
            _control(
                "ctl_momentum_contracted",
                momentum,
                options=tuple(o for o in momentum.options if o != "--fmad=false"),
            ),
            "xpopt_momentum",
        ),
        "fast_math": (
            _control(
                "ctl_rmsprop_fast_math", rmsprop, options=rmsprop.options + ("--use_fast_math",)
            ),
            "xpopt_rmsprop",
        ),
    }


@pytest.mark.nvcc
def test_controls_are_caught_in_ptx_and_machine_code(
    nvrtc, nvcc, nvdisasm, machine_code_prefetched
):
    """Each forbidden variant, built exactly as the kernels are, is reported by both checks."""
    found = {}
    for what, (args, like) in _controls().items():
        b = cg.cupy_build(args, kinds(like, F32), F32, "sm_90")
        ptx = cg.ptx_problems(b.ptx, args.name, F32, args.operation)
        _, _, sass, counts = machine_code(b, args, nvcc, nvdisasm)
        found[what] = (ptx, sass, counts)
    ptx, sass, counts = found["double_literal"]
    assert any("FP64 in a float32 kernel" in p for p in ptx), ptx
    assert any("FP64 instructions in a float32 kernel" in p for p in sass), sass
    for what in ("explicit_fma", "no_fmad_false"):
        ptx, sass, counts = found[what]
        assert any("fused multiply-add fma" in p for p in ptx), (what, ptx)
        assert any("FFMA in the kernel's body" in p for p in sass), (what, sass)
        assert counts["FFMA"] >= 1, (what, counts)
    ptx, sass, counts = found["fast_math"]
    assert any("approximate" in p for p in ptx) and any("no sqrt.rn" in p for p in ptx), ptx
    assert any("no correctly rounded div_rn" in p for p in sass), sass
    assert any("no correctly rounded sqrt_rn" in p for p in sass), sass


@pytest.mark.nvcc
def test_ftz_checks_notice_a_build_without_ftz(nvrtc, nvcc, nvdisasm):
    """Control for the .ftz expectation: CuPy's source and options minus CuPy's -ftz=true,
    compiled by NVRTC and by nvcc, is reported by both checks (a CuPy that stopped
    appending it would fail the tests above); float64 never flushes."""
    spec = kernels.RMSPROP
    b = build(spec, F32, "sm_90")
    options = tuple(o for o in b.options if o != "-ftz=true")
    assert len(options) == len(b.options) - 1
    ptx, _ = cg.nvrtc_compile(b.source, options)
    assert any("lacks .ftz" in p for p in cg.ptx_problems(ptx, spec.name, F32, spec.operation))
    unflushed = dataclasses.replace(b, options=options, cubin=None, ptx=ptx)
    nb = cg.nvcc_build(unflushed, nvcc)
    listing = cg.disassemble(nb.cubin, nvdisasm)
    expansions = cg.probe_expansions(
        F32, "sm_90", recorded_args()[spec.name].options, nvcc, nvdisasm
    )
    problems = cg.sass_problems(listing, spec.name, F32, 1, 1, expansions, spec.operation)
    assert any("without .FTZ" in p for p in problems), problems


@pytest.mark.nvcc
def test_a_get_kernel_dropping_options_fails_the_proof(nvrtc):
    """The link to the running code: were get_kernel to stop passing ``options``, the recorded
    arguments, and so the PTX checked above, would change, and the check would report it."""

    def get_kernel_without_options(spec):
        import cupy  # noqa: PLC0415  (the stand-in, inside record_args)

        return cupy.ElementwiseKernel(
            spec.in_params,
            spec.out_params,
            spec.operation,
            spec.name,
            preamble=spec.preamble,
            no_return=True,
        )

    broken = record_args(get_kernel_without_options)["xpopt_momentum"]
    assert broken.options == ()
    b = cg.cupy_build(broken, kinds("xpopt_momentum", F32), F32, "sm_90")
    assert "--fmad=false" not in b.options
    problems = cg.ptx_problems(b.ptx, broken.name, F32, broken.operation)
    assert any("fused multiply-add fma" in p for p in problems), problems


@pytest.mark.nvcc
def test_nvrtc_rejection_carries_its_log(nvrtc):
    broken = dataclasses.replace(
        recorded_args()["xpopt_gd"],
        name="ctl_broken",
        operation="param = param - lr * undeclared_name;",
    )
    with pytest.raises(cg.CompileError, match="undeclared_name") as err:
        cg.cupy_build(broken, kinds("xpopt_gd", F32), F32, "sm_90")
    assert "NVRTC rejected ctl_broken" in str(err.value)


def test_nvcc_translation_refuses_unknown_options():
    opts, dropped = cg.nvcc_options(
        (
            "-I/x",
            "--fmad=false",
            "--std=c++17",
            "-ftz=true",
            "-arch=sm_90",
            "--device-as-default-execution-space",
        )
    )
    assert opts == ("-I/x", "--fmad=false", "--std=c++17", "-ftz=true", "-arch=sm_90")
    assert dropped == ("--device-as-default-execution-space",)
    with pytest.raises(cg.CompileError, match="no nvcc translation"):
        cg.nvcc_options(("--some-new-nvrtc-flag",))
