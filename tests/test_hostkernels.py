"""The compiled CPU kernels (``xpopt._hostkernels``) against the NumPy twins.

On NumPy, ``fused=True`` (the default) runs the kernel that setup.py compiled from the same
``operation`` text as the CUDA kernels; ``fused=False`` runs the NumPy twin. The two must
agree bit for bit: that keeps the compiled path exact to the course, since the twins are
(tests/test_optim.py, tests/test_train.py). Installing without a C compiler leaves the
extension out; then these tests skip with the reason, except under CI=true, where the
install has a compiler and a missing extension is a failure.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import numpy
import pytest

import xpopt
from conftest import IN_CI
from kernel_harness import assert_bitwise_equal, edge_values
from xpopt import hostkernels, kernels
from xpopt.flat import FlatDict
from xpopt.optim import placement

OPTIMIZERS = {
    "gd": lambda fused: xpopt.GD(0.01, fused=fused),
    "momentum": lambda fused: xpopt.Momentum(0.01, 0.9, fused=fused),
    "rmsprop": lambda fused: xpopt.RMSprop(0.01, 0.999, 1e-8, fused=fused),
    "adam": lambda fused: xpopt.Adam(0.01, 0.9, 0.999, 1e-8, fused=fused),
}


@pytest.fixture(autouse=True)
def _require_host_kernels():
    why = hostkernels.unavailable_reason()
    if why is not None:
        if IN_CI and os.environ.get("XPOPT_HOST_KERNELS", "1") != "0":
            pytest.fail(f"the compiled CPU kernels must be built under CI=true: {why}")
        pytest.skip(f"compiled CPU kernels unavailable: {why}")


def _model(n, dtype, rng):
    layout = [("W1", (n // 3, 3)), ("b1", (n - 3 * (n // 3), 1))]
    params = FlatDict(rng.standard_normal(n).astype(dtype), layout)
    grads = params.zeros_like("d")
    return params, grads


def _run_both(name, n, dtype, steps, gradients):
    """Run the compiled and the twin path side by side from the same start."""
    rng = numpy.random.default_rng(7)
    params, grads = _model(n, dtype, rng)
    twins = params.copy()
    fused_opt, twin_opt = OPTIMIZERS[name](True), OPTIMIZERS[name](False)
    fused_state, twin_state = fused_opt.init(params), twin_opt.init(twins)
    for step in range(steps):
        grads.flat[...] = gradients(rng, step)
        fused_opt.update(params, grads, fused_state)
        twin_opt.update(twins, grads, twin_state)
        assert fused_state.plan.host is not None and twin_state.plan.host is None
        assert_bitwise_equal(params.flat, twins.flat, f"{name} step {step + 1}")
        for slot in type(fused_opt).slots:
            assert_bitwise_equal(
                getattr(fused_state, slot).flat,
                getattr(twin_state, slot).flat,
                f"{name} {slot} step {step + 1}",
            )


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_compiled_equals_twin_over_many_steps(name, dtype):
    """30 steps with gradients of random scale: the same bits on both paths (t from 1)."""
    _run_both(
        name,
        1001,
        dtype,
        30,
        lambda rng, step: rng.standard_normal(1001) * 10.0 ** rng.integers(-6, 4),
    )


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_compiled_equals_twin_on_edge_values(name, dtype):
    """Zeros, subnormals, overflowing squares, inf and NaN: the same bits (NaN by position)."""
    edges = edge_values(dtype)

    def gradients(rng, step):
        g = rng.standard_normal(997)
        g[: edges.size] = rng.permutation(edges)
        return g.astype(dtype)

    with numpy.errstate(all="ignore"):
        _run_both(name, 997, dtype, 8, gradients)


@pytest.mark.parametrize("name", ["momentum", "adam"])
def test_compiled_threaded_equals_twin(name, monkeypatch):
    """A model over the threading threshold is split among workers, each with its share:
    the result is still the twin's, every element included."""
    monkeypatch.setattr(placement, "THREADED_MIN", 1000)
    monkeypatch.setattr(placement, "num_threads", lambda: 3)
    rng = numpy.random.default_rng(3)
    params, grads = _model(30_011, numpy.float32, rng)
    twins = params.copy()
    fused_opt, twin_opt = OPTIMIZERS[name](True), OPTIMIZERS[name](False)
    fused_state, twin_state = fused_opt.init(params), twin_opt.init(twins)
    for _ in range(3):
        grads.flat[...] = rng.standard_normal(grads.flat.size)
        fused_opt.update(params, grads, fused_state)
        twin_opt.update(twins, grads, twin_state)
    assert len(fused_state.plan.parts) == 3
    assert_bitwise_equal(params.flat, twins.flat, name)


def test_course_functions_use_the_compiled_kernel_and_match_the_twin():
    """update_parameters_with_adam on plain dicts (one call per array) equals the twin path."""
    rng = numpy.random.default_rng(11)
    params = {"W1": rng.standard_normal((4, 3)), "b1": rng.standard_normal((4, 1))}
    grads = {"d" + k: rng.standard_normal(v.shape) for k, v in params.items()}
    twin_params = {k: v.copy() for k, v in params.items()}
    v, s = xpopt.initialize_adam(params)
    tv, ts = xpopt.initialize_adam(twin_params)
    opt = xpopt.Adam(0.01, fused=False)
    state = xpopt.OptimizerState(t=0, v=tv, s=ts)
    for t in range(1, 6):
        xpopt.update_parameters_with_adam(params, grads, v, s, t)
        opt.update(twin_params, grads, state)
        for k in params:
            assert_bitwise_equal(params[k], twin_params[k], f"{k} t={t}")


def test_host_source_is_the_cuda_operation_text():
    """The C source holds each spec's operation, verbatim: one rule, two compilers."""
    source = kernels.host_c_source()
    for spec in kernels.SPECS.values():
        for line in spec.operation.splitlines():
            assert line in source, (spec.name, line)
        for dtype_name in kernels.HOST_TYPES:
            assert f"void {kernels.host_function_name(spec, dtype_name)}(" in source


def test_disabled_by_environment():
    """XPOPT_HOST_KERNELS=0 turns the compiled path off (the NumPy twin runs), with a reason."""
    code = (
        "import numpy, xpopt; from xpopt import hostkernels\n"
        "p = xpopt.initialize_parameters([3, 2]); g = p.zeros_like('d')\n"
        "o = xpopt.Adam(); s = o.init(p); o.update(p, g, s)\n"
        "print(hostkernels.unavailable_reason(), s.plan.host)"
    )
    env = {**os.environ, "XPOPT_HOST_KERNELS": "0"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "disabled by XPOPT_HOST_KERNELS=0 None"


def test_no_compiled_kernel_for_non_native_byte_order():
    """``>f8`` is named float64 too: host_function must not hand out the native kernel for
    it (it read big-endian 1.0 as 4.7e-30). Validation refuses such arrays before; this is
    the guard where the fault lived."""
    swapped = numpy.dtype(numpy.float64).newbyteorder("S")
    for spec in kernels.SPECS.values():
        assert hostkernels.host_function(spec, swapped) is None
        assert hostkernels.host_function(spec, swapped.newbyteorder("S")) is not None


def test_every_rule_registers_its_spec_in_order():
    """Each rule's module registers its spec (beside its NumPy twin) in ``kernels.SPECS``, in
    order of increasing complexity: the order of the C functions setup.py builds."""
    from xpopt.optim import adam, gd, momentum, rmsprop  # noqa: PLC0415

    assert list(kernels.SPECS) == ["xpopt_gd", "xpopt_momentum", "xpopt_rmsprop", "xpopt_adam"]
    for module, alias in ((gd, "GD"), (momentum, "MOMENTUM"), (rmsprop, "RMSPROP"), (adam, "ADAM")):
        assert kernels.SPECS[module.SPEC.name] is module.SPEC is getattr(kernels, alias)
    with pytest.raises(ValueError, match="two different kernel specs"):
        kernels.register(dataclasses.replace(gd.SPEC, operation="param = param;"))


def test_address_of_writeable_read_only_and_empty_arrays():
    """``hostkernels.address``: the first element's address, through the buffer protocol or,
    for read-only and empty arrays, through ctypes; views start where they start."""
    a = numpy.arange(10.0)
    assert hostkernels.address(a) == a.ctypes.data
    assert hostkernels.address(a[3:]) == a.ctypes.data + 3 * a.itemsize
    frozen = a.copy()
    frozen.flags.writeable = False
    assert hostkernels.address(frozen) == frozen.ctypes.data
    empty = numpy.empty(0)
    assert hostkernels.address(empty) == empty.ctypes.data
