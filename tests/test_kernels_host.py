"""The fused kernels' arithmetic, run on the CPU, equals the NumPy twins bit for bit.

``kernel_harness`` compiles each spec's ``operation`` text, with CuPy's binding, as C++ for
the host (g++, no floating-point contraction, so every operation is rounded once as on the
GPU built with ``--fmad=false``) and runs it through ctypes on NumPy arrays. The twins in
``xpopt.optim`` perform the same operations in the same order with ``out=``, so the two
must agree exactly, over many steps and at the edges of the floating-point range
(subnormals, overflow to inf, NaN). ``test_kernels_compile`` shows the GPU build rounds as
this host build does (IEEE ``.rn`` instructions only), which carries the result to the GPU.

The public functions and optimizer objects are compared with the host kernel too, with the
scalars computed here from the course's formulas, so their dispatch (packed FlatDict, dicts
of separate arrays, NumPy chunks) and their scalar arguments are covered.
"""

from __future__ import annotations

import dataclasses

import numpy
import pytest

import kernel_harness as kh
import xpopt
from conftest import IN_CI
from xpopt import kernels
from xpopt.optim import RMSprop

DTYPES = [pytest.param(d, id=d.name) for d in kh.DTYPES]
STEPS = 30

HYPER = kh.HYPER
OPTIMIZERS = {name: kh.optimizer_class(name) for name in kernels.SPECS}
RULES = [pytest.param(name, id=name.removeprefix("xpopt_")) for name in kernels.SPECS]


def require_gxx() -> str:
    """g++'s path; skip without it, except under CI=true where that is a failure."""
    path = kh.find_gxx()
    if path is None:
        if IN_CI:
            pytest.fail(
                "g++ (host build of the kernels) is required under CI=true but was not found"
            )
        pytest.skip(
            "g++ is not installed on this machine (needed for the host build of the kernels)"
        )
    return path


@pytest.fixture(autouse=True)
def _gxx():
    require_gxx()


def course_scalars(
    name: str,
    t: int,
    learning_rate: float,
    beta: float = 0.9,
    beta1: float = 0.9,
    beta2: float = 0.999,
    epsilon: float = 1e-8,
) -> dict:
    """The kernel's scalar arguments for step ``t``, written from the course's formulas.

    Independent of ``xpopt.optim``'s ``*_scalars`` helpers on purpose: the public-API tests
    compare xpopt's scalars against these.
    """
    if name == "xpopt_gd":
        return {"lr": learning_rate}
    if name == "xpopt_momentum":
        return {"lr": learning_rate, "beta": beta, "one_minus_beta": 1 - beta}
    if name == "xpopt_rmsprop":
        return {"lr": learning_rate, "beta2": beta2, "one_minus_beta2": 1 - beta2, "eps": epsilon}
    return {
        "lr": learning_rate,
        "beta1": beta1,
        "one_minus_beta1": 1 - beta1,
        "beta2": beta2,
        "one_minus_beta2": 1 - beta2,
        "bias1": 1 - beta1**t,
        "bias2": 1 - beta2**t,
        "eps": epsilon,
    }


class TwinAndKernel:
    """The same state twice: advanced by the NumPy twin and by the host kernel."""

    def __init__(self, spec: kernels.KernelSpec, param: numpy.ndarray):
        self.spec = spec
        self.opt_cls = OPTIMIZERS[spec.name]
        self.slots = self.opt_cls.slots
        zeros = numpy.zeros_like(param)
        self.twin = {"param": param.copy(), **{s: zeros.copy() for s in self.slots}}
        self.host = {"param": param.copy(), **{s: zeros.copy() for s in self.slots}}
        self.scratch = (numpy.empty_like(param), numpy.empty_like(param))

    def step(self, grad: numpy.ndarray, scalars: dict, what: str) -> None:
        rule = self.opt_cls.rule
        rule(
            numpy,
            self.twin["param"],
            grad,
            *[self.twin[s] for s in self.slots],
            *self.scratch,
            **scalars,
        )
        kh.run_on_host(self.spec, grad.dtype, {"grad": grad, **self.host}, scalars)
        for key in self.twin:
            kh.assert_bitwise_equal(self.host[key], self.twin[key], f"{what}: {key}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", RULES)
def test_host_kernel_equals_twin_over_many_steps(name, dtype):
    """30 steps from zero state, fresh gradients of varying scale each step, t from 1."""
    spec = kernels.SPECS[name]
    rng = numpy.random.default_rng(1234)
    n = 777  # not a multiple of any SIMD width: the compiler's scalar tail loop runs too
    pair = TwinAndKernel(spec, rng.standard_normal(n).astype(dtype))
    opt = OPTIMIZERS[name](**HYPER[name])
    for t in range(1, STEPS + 1):
        scale = 10.0 ** rng.uniform(-4, 3)
        grad = (rng.standard_normal(n) * scale).astype(dtype)
        pair.step(grad, opt.scalars(opt.learning_rate, t), f"{name} {dtype} t={t}")
    assert numpy.isfinite(pair.host["param"]).all()


@pytest.mark.parametrize("t0", [1, 10_000], ids=["t=1", "t=10000"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", RULES)
def test_host_kernel_equals_twin_at_floating_point_edges(name, dtype, t0):
    """Zero, subnormal, huge, overflowing, infinite and NaN gradients: same values, same NaNs.

    Every step shuffles the edge values among random ones, so each element meets several of
    them in turn (state that overflowed to inf, then a NaN, then a zero gradient, ...).
    """
    spec = kernels.SPECS[name]
    rng = numpy.random.default_rng(99)
    edges = kh.edge_values(dtype)
    n = 8 * edges.size
    param = rng.standard_normal(n).astype(dtype)
    param[: edges.size] = edges  # parameters start at the edges too
    param[edges.size : 2 * edges.size] = 0
    pair = TwinAndKernel(spec, param)
    opt = OPTIMIZERS[name](**HYPER[name])
    seen = numpy.zeros(4, dtype=bool)  # inf, nan, subnormal, zero somewhere in the outputs
    with numpy.errstate(all="ignore"):
        for t in range(t0, t0 + 12):
            grad = numpy.concatenate(
                [edges, edges, rng.standard_normal(n - 2 * edges.size).astype(dtype)]
            )
            grad = grad[rng.permutation(n)]
            pair.step(grad, opt.scalars(opt.learning_rate, t), f"{name} {dtype} t={t}")
            for a in pair.host.values():
                mag = numpy.abs(a)
                seen |= [
                    numpy.isinf(a).any(),
                    numpy.isnan(a).any(),
                    ((mag > 0) & (mag < numpy.finfo(dtype).tiny)).any(),
                    (a == 0).any(),
                ]
    # The comparison above is only worth something if the edges were reached.
    assert seen.all(), dict(zip(["inf", "nan", "subnormal", "zero"], seen, strict=True))


def test_bitwise_comparison_catches_a_reordered_operation():
    """Control: ``lr * (grad / d)`` instead of ``(lr * grad) / d`` is seen as a mismatch."""
    reordered = dataclasses.replace(
        kernels.RMSPROP,
        name="ctl_rmsprop_reordered",
        operation=kernels.RMSPROP.operation.replace(
            "lr * grad / (sqrt(s) + eps)", "lr * (grad / (sqrt(s) + eps))"
        ),
    )
    assert reordered.operation != kernels.RMSPROP.operation
    rng = numpy.random.default_rng(5)
    dtype = numpy.dtype(numpy.float32)
    pair = TwinAndKernel(kernels.RMSPROP, rng.standard_normal(500).astype(dtype))
    pair.spec = reordered
    grad = rng.standard_normal(500).astype(dtype)
    with pytest.raises(AssertionError, match="not equal"):
        pair.step(grad, RMSprop(**HYPER["xpopt_rmsprop"]).scalars(0.02, 1), "reordered")


def test_run_on_host_rejects_bad_arguments():
    spec, f32 = kernels.GD, numpy.float32
    p, g = numpy.zeros(4, f32), numpy.ones(4, f32)
    with pytest.raises(KeyError, match="missing"):
        kh.run_on_host(spec, f32, {"param": p}, {"lr": 0.1})
    with pytest.raises(TypeError, match="dtype"):
        kh.run_on_host(spec, f32, {"param": p, "grad": g.astype(numpy.float64)}, {"lr": 0.1})
    with pytest.raises(ValueError, match="one size"):
        kh.run_on_host(spec, f32, {"param": p, "grad": numpy.ones(5, f32)}, {"lr": 0.1})
    with pytest.raises(ValueError, match="contiguous"):
        kh.run_on_host(spec, f32, {"param": p, "grad": numpy.ones(8, f32)[::2]}, {"lr": 0.1})


def test_host_compile_error_carries_gxx_stderr():
    broken = dataclasses.replace(
        kernels.GD, name="ctl_host_broken", operation="param = param - lr * undeclared_name;"
    )
    with pytest.raises(kh.CompileError, match="undeclared_name"):
        kh.host_function(broken, numpy.float32)


# ------------------------------------------------------------------- public functions
LAYOUT = (
    ("W1", (120, 300)),
    ("b1", (120, 1)),
    ("W2", (150, 120)),
    ("b2", (150, 1)),
    ("W3", (1, 150)),
    ("b3", (1, 1)),
)
N = sum(int(numpy.prod(s)) for _, s in LAYOUT)


def test_layout_spans_several_numpy_chunks():
    # The packed case below must exercise the twin's chunked loop (a full chunk and a partial
    # one), and W1 alone the dict case's.
    chunk = xpopt.optim.base.CHUNK
    assert N > chunk and N % chunk != 0
    assert 120 * 300 > chunk


def _fill(d: dict, flat: numpy.ndarray, prefix: str) -> None:
    """Write ``flat`` into ``d``'s existing arrays, as a training loop writes its gradients."""
    lo = 0
    for k, shape in LAYOUT:
        size = int(numpy.prod(shape))
        d[prefix + k][...] = flat[lo : lo + size].reshape(shape)
        lo += size


APIS = ["function", "object", "object-reused", "bound"]


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("packed", [True, False], ids=["flatdict", "dict"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", RULES)
def test_public_api_equals_host_kernel(name, dtype, packed, api):
    """xpopt's course functions and optimizer objects equal the host kernel fed with the
    course's scalars, bit for bit, for 30 steps.

    Containers: a packed FlatDict (one group, the twin in NumPy chunks) or a dict of separate
    arrays (one group per array). APIs: the course-named function; ``Optimizer.update`` with
    new gradient dicts and a per-call decaying rate; ``update`` with one gradient dict
    rewritten in place each step and the rate set on the object (the path where a plan is
    kept between steps); ``Optimizer.bind``'s step function, fed the same way.
    """
    spec = kernels.SPECS[name]
    h = HYPER[name]
    opt_cls = OPTIMIZERS[name]
    if api == "bound" and not hasattr(opt_cls, "bind"):
        pytest.skip("this xpopt has no Optimizer.bind")
    rng = numpy.random.default_rng(2024)
    param0 = rng.standard_normal(N).astype(dtype)
    params = kh.split(param0, LAYOUT, packed=packed)
    grads = kh.split(numpy.zeros(N, dtype), LAYOUT, prefix="d", packed=packed)
    if api == "function":
        state = kh.course_init(name, params)
    else:
        opt = opt_cls(**h)
        ostate = opt.init(params)
        state = {slot: getattr(ostate, slot) for slot in opt.slots}
        if api == "bound":
            step = opt.bind(params, grads, ostate)
    assert all(isinstance(d, xpopt.FlatDict) == packed for d in state.values())
    host = {"param": param0.copy(), **{slot: numpy.zeros(N, dtype) for slot in state}}
    hyper = {k: v for k, v in h.items() if k != "learning_rate"}
    for t in range(1, STEPS + 1):
        grad = (rng.standard_normal(N) * 10.0 ** rng.uniform(-3, 2)).astype(dtype)
        lr = h["learning_rate"] if api == "function" else h["learning_rate"] / (1 + 0.1 * (t - 1))
        extra = {}
        if api in ("function", "object"):
            grads = kh.split(grad, LAYOUT, prefix="d", packed=packed)
        else:
            _fill(grads, grad, "d")
            opt.learning_rate = lr
        if api == "function":
            extra = kh.course_step(name, params, grads, state, t, h)
        elif api == "object":
            opt.update(params, grads, ostate, learning_rate=lr)
        elif api == "object-reused":
            opt.update(params, grads, ostate)
        else:
            step()
        if api != "function":
            assert ostate.t == t
        scalars = course_scalars(name, t, lr, **hyper)
        kh.run_on_host(spec, dtype, {"grad": grad, **host}, scalars)
        what = f"{name} {dtype} {'flatdict' if packed else 'dict'} {api} t={t}"
        kh.assert_bitwise_equal(kh.joined(params, LAYOUT), host["param"], f"{what}: param")
        for slot, d in state.items():
            kh.assert_bitwise_equal(kh.joined(d, LAYOUT, "d"), host[slot], f"{what}: {slot}")
        if extra:  # Adam's function also returns the bias-corrected moments
            want_v = host["v"] / dtype.type(scalars["bias1"])
            want_s = host["s"] / dtype.type(scalars["bias2"])
            kh.assert_bitwise_equal(
                kh.joined(extra["v_corrected"], LAYOUT, "d"), want_v, f"{what}: v_corrected"
            )
            kh.assert_bitwise_equal(
                kh.joined(extra["s_corrected"], LAYOUT, "d"), want_s, f"{what}: s_corrected"
            )
    if packed:  # still one buffer: the in-place path was taken, nothing was rebound
        assert params.packed and all(d.packed for d in state.values())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", RULES)
def test_large_model_equals_host_kernel(name, dtype):
    """A packed model large enough for the NumPy path's biggest split (threads, where the
    dispatch has them) still equals the host kernel bit for bit."""
    spec = kernels.SPECS[name]
    big = getattr(xpopt.optim.base, "THREADED_MIN", 1 << 20)
    n = big + 3 * xpopt.optim.base.CHUNK + 17
    rng = numpy.random.default_rng(3)
    param0 = rng.standard_normal(n).astype(dtype)
    layout = (("W1", (n - 1,)), ("b1", (1,)))
    params = xpopt.FlatDict(param0.copy(), layout)
    opt = OPTIMIZERS[name](**HYPER[name])
    ostate = opt.init(params)
    host = {"param": param0, **{slot: numpy.zeros(n, dtype) for slot in opt.slots}}
    for t in (1, 2):
        grad = rng.standard_normal(n).astype(dtype)
        opt.update(params, xpopt.FlatDict(grad.copy(), (("dW1", (n - 1,)), ("db1", (1,)))), ostate)
        kh.run_on_host(spec, dtype, {"grad": grad, **host}, opt.scalars(opt.learning_rate, t))
        kh.assert_bitwise_equal(params.flat, host["param"], f"{name} {dtype} n={n} t={t}")
        for slot in opt.slots:
            kh.assert_bitwise_equal(getattr(ostate, slot).flat, host[slot], f"{name} {slot}")
