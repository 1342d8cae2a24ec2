"""The fused kernels compile for real GPUs, and their PTX rounds as the NumPy twins round.

No GPU is needed: nvcc compiles the kernels' own ``operation`` text, bound as CuPy's
``ElementwiseKernel`` binds it (see ``kernel_harness``), to cubins for ``sm_80`` (A100) and
``sm_90`` (H100/H200) and to PTX. The PTX is then read for what would break bit-for-bit
agreement with the host build and NumPy: FP64 in a float32 kernel, fused multiply-adds,
approximate or flush-to-zero instructions, a square root or division that is not correctly
rounded. Control kernels, compiled the ways the project forbids, show each check can fail.

Each (architecture, dtype, output) is compiled once per session, all four kernels in one
translation unit.
"""

from __future__ import annotations

import dataclasses
import functools
import subprocess
import sys
import textwrap

import numpy
import pytest

import kernel_harness as kh
from conftest import require_nvcc
from xpopt import kernels

SPECS = tuple(kernels.SPECS.values())
DTYPES = [pytest.param(d, id=d.name) for d in kh.DTYPES]
ARCHS = list(kh.ARCHS)


@functools.lru_cache(maxsize=None)
def _build(arch: str, dtype: numpy.dtype, output: str, nvcc: str):
    return kh.compile_cuda(SPECS, dtype, arch, output=output, nvcc=nvcc)


@pytest.fixture
def nvcc() -> str:
    """nvcc's path; skips without it (fails under CI=true)."""
    return require_nvcc()


def test_specs_share_the_no_contraction_option():
    # The bitwise claims below rest on this flag; a spec without it would compile with FMA.
    for spec in SPECS:
        assert "--fmad=false" in spec.options, spec.name


@pytest.mark.nvcc
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("arch", ARCHS)
def test_cubin_builds_for_real_architecture(nvcc, arch, dtype):
    """Every spec compiles to machine code for the architecture, under its own name."""
    cubin = _build(arch, dtype, "cubin", nvcc)
    assert int(arch[3:]) in kh.cubin_sm(cubin), f"cubin header names {kh.cubin_sm(cubin)}"
    for spec in SPECS:
        # extern "C": the symbol table holds the plain name, NUL-terminated.
        assert spec.name.encode() + b"\0" in cubin, f"{spec.name} missing from the {arch} cubin"


@pytest.mark.nvcc
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("arch", ARCHS)
def test_ptx_rounds_like_ieee_host_code(nvcc, arch, dtype):
    """Each kernel's PTX: T-width float ops only, no FMA, nothing approximate, IEEE sqrt/div."""
    ptx = _build(arch, dtype, "ptx", nvcc)
    assert f".target {arch}" in ptx
    entries = kh.ptx_entries(ptx)
    assert set(entries) == {s.name for s in SPECS}
    for spec in SPECS:
        entry = entries[spec.name]
        assert kh.float_instructions(entry), f"{spec.name}: no float arithmetic found in its PTX"
        assert kh.ptx_problems(entry, spec, dtype) == [], spec.name


@pytest.mark.nvcc
def test_ptx_checks_catch_forbidden_builds(nvcc):
    """Controls: a double literal, FMA contraction and fast math are each reported."""
    controls = (
        dataclasses.replace(kernels.GD, name="ctl_double_literal",
                            operation="param = param - 0.1 * lr * grad;"),
        dataclasses.replace(kernels.MOMENTUM, name="ctl_momentum"),
        dataclasses.replace(kernels.RMSPROP, name="ctl_rmsprop"),
    )
    f32 = numpy.dtype(numpy.float32)
    # --use_fast_math turns FMA contraction on and makes sqrt/div approximate and ftz.
    ptx = kh.compile_cuda(controls, f32, "sm_90", output="ptx", options=("--use_fast_math",),
                          nvcc=nvcc)
    entries = kh.ptx_entries(ptx)
    found = {spec.name: kh.ptx_problems(entries[spec.name], spec, f32) for spec in controls}
    assert any("FP64" in p for p in found["ctl_double_literal"]), found
    assert any("fused multiply-add" in p for p in found["ctl_momentum"]), found
    rms = " ".join(found["ctl_rmsprop"])
    assert "approximate or flushes" in rms and "no sqrt.rn.f32" in rms, found


@pytest.mark.nvcc
def test_compile_error_carries_nvcc_stderr(nvcc):
    broken = dataclasses.replace(kernels.GD, name="ctl_broken",
                                 operation="param = param - lr * undeclared_name;")
    with pytest.raises(kh.CompileError, match="undeclared_name") as err:
        kh.compile_cuda(broken, numpy.float32, "sm_90", output="ptx", nvcc=nvcc)
    assert "nvcc" in str(err.value) and "stderr" in str(err.value)


def test_specs_import_without_cupy():
    """``xpopt.kernels`` (and so ``xpopt``) imports with CuPy blocked, and never asks for it."""
    code = textwrap.dedent("""
        import importlib.abc, sys

        asked = []

        class BlockCupy(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "cupy" or name.startswith(("cupy.", "cupyx")):
                    asked.append(name)
                    raise ImportError("cupy blocked by the test")
                return None

        sys.meta_path.insert(0, BlockCupy())
        import xpopt.kernels as k

        assert asked == [], asked
        assert not any(m == "cupy" or m.startswith("cupy.") for m in sys.modules)
        assert set(k.SPECS) == {"xpopt_gd", "xpopt_momentum", "xpopt_rmsprop", "xpopt_adam"}
        for spec in k.SPECS.values():
            assert spec.params and spec.params[0] == ("in", "T", "grad"), spec.params
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
