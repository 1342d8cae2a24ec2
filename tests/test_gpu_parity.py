"""On CuPy: fused, unfused and NumPy give the same updates.

Marked ``gpu``: run on real CuPy where a GPU is usable and on the strict stand-in of
:mod:`xpopt.testing` elsewhere (its ``ElementwiseKernel`` compiles and runs the same
``operation`` text on the host, with the GPU's flush-to-zero in float32); the grouping
test at the end runs on both array modules through ``xp``.

What is asserted, and why:

- fused (one ``ElementwiseKernel`` per group) vs NumPy: EXACT, every bit except NaN payloads
  (``kernel_harness.assert_bitwise_equal``), plus ``assert_close``, on data without
  subnormals. The kernels CuPy builds are proven without a GPU in ``test_kernels_nvrtc``
  (CuPy's generated source, NVRTC, the machine code: no FMA, no FP64 in float32, ``.ftz``
  in float32), and ``test_kernels_host`` shows the same text, rounded the same way on the
  CPU, equals the NumPy twins bit for bit.
- at edge values (subnormals, inf, NaN, signed zeros): float32 equals the twin run with
  the GPU's flush-to-zero semantics, bit for bit; float64 equals the plain twin.
- unfused (the twin's ufuncs on CuPy) vs NumPy: ``assert_close`` only. Those kernels are
  CuPy's own, compiled with CuPy's options, which this project does not control.
"""

from __future__ import annotations

import contextlib

import numpy
import pytest

import kernel_harness as kh
from conftest import assert_close, require_gpu
from xpopt import kernels
from xpopt.optim import base

DTYPES = [pytest.param(d, id=d.name) for d in kh.DTYPES]
RULES = [pytest.param(name, id=name.removeprefix("xpopt_")) for name in kernels.SPECS]
STEPS = 5
# About 100k parameters, W1 several NumPy chunks long, and odd sizes for the tails.
LAYOUT = (
    ("W1", (256, 256)),
    ("b1", (256, 1)),
    ("W2", (128, 256)),
    ("b2", (128, 1)),
    ("W3", (1, 128)),
    ("b3", (1, 1)),
)
N = sum(int(numpy.prod(s)) for _, s in LAYOUT)


def _cupy():
    require_gpu()
    import cupy  # noqa: PLC0415 (only where a device exists)

    return cupy


def _run(xp, name: str, api: str, dtype, packed: bool, fused: bool, param0, grads_host):
    """The host copies of ``{"param": ..., slot: ...}`` after each step, run on ``xp``."""
    h = kh.HYPER[name]
    params = kh.split(param0, LAYOUT, packed=packed, xp=xp)
    if api == "object":
        opt = kh.optimizer_class(name)(**h, fused=fused)
        ostate = opt.init(params)
        state = {slot: getattr(ostate, slot) for slot in opt.slots}
    else:
        state = kh.course_init(name, params)
    snapshots = []
    for t, grad in enumerate(grads_host, start=1):
        grads = kh.split(grad, LAYOUT, prefix="d", packed=packed, xp=xp)
        if api == "object":
            opt.update(params, grads, ostate)
        else:
            kh.course_step(name, params, grads, state, t, h)
        snap = {"param": kh.joined(params, LAYOUT)}
        snap.update((slot, kh.joined(d, LAYOUT, "d")) for slot, d in state.items())
        snapshots.append(snap)
    if packed:  # the fast path was taken throughout: nothing was rebound
        assert params.packed and all(d.packed for d in state.values())
    return snapshots


def _data(dtype, seed=7):
    rng = numpy.random.default_rng(seed)
    param0 = rng.standard_normal(N).astype(dtype)
    grads = [
        (rng.standard_normal(N) * 10.0 ** rng.uniform(-3, 2)).astype(dtype) for _ in range(STEPS)
    ]
    return param0, grads


def _compare(got, want, what, *, exact):
    for t, (g, w) in enumerate(zip(got, want, strict=True), start=1):
        for key in w:
            assert_close(g[key], w[key])
            if exact:
                kh.assert_bitwise_equal(g[key], w[key], f"{what} t={t} {key}")


@pytest.mark.gpu
@pytest.mark.parametrize("packed", [True, False], ids=["flatdict", "dict"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", RULES)
def test_optimizer_objects_fused_unfused_numpy_agree(name, dtype, packed):
    cupy = _cupy()
    param0, grads = _data(dtype)
    want = _run(numpy, name, "object", dtype, packed, True, param0, grads)
    fused = _run(cupy, name, "object", dtype, packed, True, param0, grads)
    unfused = _run(cupy, name, "object", dtype, packed, False, param0, grads)
    _compare(fused, want, f"{name} fused vs numpy", exact=True)
    _compare(unfused, want, f"{name} unfused vs numpy", exact=False)


@pytest.mark.gpu
@pytest.mark.parametrize("packed", [True, False], ids=["flatdict", "dict"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", RULES)
def test_course_functions_gpu_equal_numpy(name, dtype, packed):
    """The course-named functions (fused on CuPy: they have no switch) equal NumPy's."""
    cupy = _cupy()
    param0, grads = _data(dtype, seed=8)
    want = _run(numpy, name, "function", dtype, packed, True, param0, grads)
    got = _run(cupy, name, "function", dtype, packed, True, param0, grads)
    _compare(got, want, f"{name} function cupy vs numpy", exact=True)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", RULES)
def test_kernel_equals_twin_at_edges_with_the_gpus_flush_to_zero(name, dtype):
    """One launch per step on edge gradients (subnormal, overflowing, inf, NaN, signed
    zeros) equals the NumPy twin bit for bit (NaN payloads aside), where the twin runs with
    the GPU's semantics: CuPy compiles every kernel with ``-ftz=true``, so in float32 each
    subnormal input reads as zero and each subnormal result is flushed (float64 is not
    affected). That is what "bit-identical" means for float32 on the GPU; the plain NumPy
    path differs from it exactly on elements that touch a subnormal, and the edge values
    make sure some do (the float32 check below would see a kernel that does not flush)."""
    from xpopt.testing import ftz_mode  # noqa: PLC0415

    cupy = _cupy()
    spec = kernels.SPECS[name]
    cls = kh.optimizer_class(name)
    opt = cls(**kh.HYPER[name])
    rng = numpy.random.default_rng(11)
    edges = kh.edge_values(dtype)
    n = 64 * edges.size
    param = rng.standard_normal(n).astype(dtype)
    param[: edges.size] = edges
    flushes = dtype == numpy.float32
    twin = {"param": param, **{s: numpy.zeros(n, dtype) for s in cls.slots}}
    plain = {k: v.copy() for k, v in twin.items()}
    dev = {k: cupy.asarray(v) for k, v in twin.items()}
    a, b = numpy.empty(n, dtype), numpy.empty(n, dtype)
    plain_differs = False
    with numpy.errstate(all="ignore"):
        for t in range(1, 9):
            grad = numpy.concatenate(
                [numpy.tile(edges, 4), rng.standard_normal(n - 4 * edges.size).astype(dtype)]
            )
            grad = grad[rng.permutation(n)]
            if t == 1:  # the edge parameters (subnormals among them) meet a zero gradient
                grad[: edges.size] = 0
            scalars = opt.scalars(opt.learning_rate, t)
            with ftz_mode() if flushes else contextlib.nullcontext():
                cls.rule(numpy, twin["param"], grad, *[twin[s] for s in cls.slots], a, b, **scalars)
            cls.rule(numpy, plain["param"], grad, *[plain[s] for s in cls.slots], a, b, **scalars)
            kernels.launch(spec, {"grad": cupy.asarray(grad), **dev}, scalars)
            for key in twin:
                got = cupy.asnumpy(dev[key])
                kh.assert_bitwise_equal(got, twin[key], f"{name} t={t} {key}: GPU vs twin")
                plain_differs |= not numpy.array_equal(got, plain[key], equal_nan=True)
                plain[key][...] = got  # the next step compares one step's arithmetic only
    assert plain_differs == flushes, (
        "float32 edge values must touch a subnormal somewhere (and float64 never flushes)"
    )


# ------------------------------------------------------------------ one group, one launch
def _named(xp, packed: bool, dtype=numpy.float64):
    param0 = numpy.arange(N, dtype=dtype)
    params = kh.split(param0, LAYOUT, packed=packed, xp=xp)
    grads = kh.split(param0, LAYOUT, prefix="d", packed=packed, xp=xp)
    v = kh.split(param0 * 0, LAYOUT, prefix="d", packed=packed, xp=xp)
    return params, {"grads": grads, "v": v}


def test_packed_flatdicts_update_as_one_group(xp):
    """Packed FlatDicts of one layout form ONE group over the whole buffers (on CuPy with
    ``fused``: one kernel launch for the model); anything else, one group per array."""
    params, named = _named(xp, packed=True)
    assert base._packed_together(params, named) is True
    roles = {"param": params, "grad": named["grads"], "v": named["v"]}
    groups = base._groups(params, {"grad": named["grads"], "v": named["v"]}, True)
    assert len(groups) == 1
    for role, d in roles.items():
        assert groups[0][role] is d.flat, role  # the buffer itself, not a copy

    plain_params, plain_named = _named(xp, packed=False)
    assert base._packed_together(plain_params, plain_named) is False
    groups = base._groups(
        plain_params, {"grad": plain_named["grads"], "v": plain_named["v"]}, False
    )
    assert [id(g["param"]) for g in groups] == [id(plain_params[k]) for k, _ in LAYOUT]
    for g, (k, _) in zip(groups, LAYOUT, strict=True):
        assert g["grad"] is plain_named["grads"]["d" + k] and g["v"] is plain_named["v"]["d" + k]

    # A packed FlatDict beside plain dicts, or one whose key was rebound, is not one group.
    assert base._packed_together(params, {"grads": plain_named["grads"], "v": named["v"]}) is False
    params["W1"] = params["W1"] * 1  # the course's way of writing: rebinding unpacks
    assert not params.packed
    assert base._packed_together(params, named) is False
