"""The CuPy stand-in of :mod:`xpopt.testing`: as strict as CuPy, counting what a GPU pays.

Each test states a CuPy behaviour (or a GPU cost) and checks the stand-in reproduces it;
the kernel tests run xpopt's own kernel specs through the host build and compare them
with NumPy bit for bit (float32 with CuPy's flush-to-zero).
"""

from __future__ import annotations

import re
import sys
import warnings

import numpy
import pytest

import xpopt
from xpopt import backend, kernels
from xpopt.flat import FlatDict
from xpopt.testing import _hostbuild, _kernel, cupy_standin, flush_subnormals, ftz_mode, is_standin

TINY32 = numpy.float32(1e-40)  # subnormal in float32
TINY64 = 1e-310  # subnormal in float64


@pytest.fixture
def cp():
    with cupy_standin() as module:
        yield module


def _device(cp, a):
    return cp.asarray(numpy.asarray(a))


# ---------------------------------------------------------------- conversions refused
def test_implicit_conversion_to_numpy_is_refused(cp):
    x = _device(cp, [1.0, 2.0])
    with pytest.raises(
        TypeError,
        match=re.escape("Implicit conversion to a NumPy array is not allowed. Please use `.get()`"),
    ):
        numpy.asarray(x)
    with pytest.raises(TypeError, match="Implicit conversion"):
        numpy.array(x)


def test_numpy_ufunc_mixing_host_and_device_is_refused(cp):
    x = _device(cp, [1.0, 2.0])
    with pytest.raises(TypeError, match=re.escape("Unsupported type <class 'numpy.ndarray'>")):
        numpy.add(x, numpy.ones(2))
    with pytest.raises(TypeError):
        x + numpy.ones(2)
    with pytest.raises(TypeError):
        numpy.ones(2) * x


def test_device_ufunc_refuses_host_arrays_and_host_out(cp):
    x, y = _device(cp, [1.0, 2.0]), _device(cp, [3.0, 4.0])
    with pytest.raises(TypeError, match=re.escape("Unsupported type <class 'numpy.ndarray'>")):
        cp.add(x, numpy.ones(2))
    with pytest.raises(TypeError, match=re.escape("Unsupported type <class 'numpy.ndarray'>")):
        cp.multiply(x, y, out=numpy.empty(2))
    with pytest.raises(TypeError, match="Unsupported type <class 'list'>"):
        cp.add(x, [1.0, 2.0])


def test_numpy_functions_on_device_arrays(cp):
    x, y = _device(cp, [1.0, 2.0]), _device(cp, [3.0])
    got = numpy.concatenate([x, y])  # dispatched to the device's concatenate
    assert isinstance(got, cp.ndarray) and got.get().tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(TypeError):
        numpy.concatenate([x, numpy.ones(1)])
    with pytest.raises(TypeError):  # no such function in the stand-in: no silent host path
        numpy.linalg.norm(x)
    assert isinstance(numpy.add(x, x), cp.ndarray)


def test_numpy_scalars_are_scalars_and_nep50_promotion_holds(cp):
    x = cp.ones(3, dtype=cp.float32)
    assert (x * 2.0).dtype == numpy.float32  # Python float: weak
    assert (x * numpy.float64(2.0)).dtype == numpy.float64  # NumPy scalar: strong
    assert cp.add(x, numpy.float32(1)).dtype == numpy.float32


# ------------------------------------------------------------------------- counters
def test_counters_host_to_device(cp):
    host = numpy.arange(5.0)
    with cp.counting() as c:
        x = cp.asarray(host)
    assert (c.h2d, c.h2d_bytes, c.allocations, c.launches) == (1, 40, 1, 0)
    with cp.counting() as c:
        assert cp.asarray(x) is x  # already on the device: no copy
    assert c.h2d == c.allocations == c.launches == 0
    with cp.counting() as c:
        x[1:3] = numpy.array([7.0, 8.0])  # host data into device memory: a transfer
        cp.array([1, 2, 3])
    assert (c.h2d, c.h2d_bytes) == (2, 16 + 24)


@pytest.mark.parametrize(
    "read",
    [
        lambda a: a.get(),
        lambda a: float(a[0]),
        lambda a: int(a[0]),
        lambda a: a[0].item(),
        lambda a: bool(a[0]),
        lambda a: a.tolist(),
        repr,
        str,
        lambda a: a.__array_namespace__ if False else format(a[0], "f"),
    ],
)
def test_counters_device_to_host(cp, read):
    x = _device(cp, [1.5, 2.5])
    with cp.counting() as c:
        read(x)
    assert c.d2h == 1 and c.syncs == 1 and c.d2h_bytes > 0


def test_asnumpy_is_a_counted_read_and_synchronize_is_counted(cp):
    x = _device(cp, numpy.zeros(4, numpy.float32))
    with cp.counting() as c:
        h = cp.asnumpy(x)
        cp.cuda.get_current_stream().synchronize()
        cp.cuda.Device().synchronize()
        cp.cuda.runtime.deviceSynchronize()
        backend.synchronize()  # xpopt's own call, once the probe found the stand-in
    assert isinstance(h, numpy.ndarray)
    assert (c.d2h, c.d2h_bytes) == (1, 16)
    assert c.syncs == 1 + 3 + (1 if backend._probe_result is not None else 0)


def test_counters_ufunc_and_operator_launches_by_name(cp):
    x = cp.ones((2, 3))
    cp.counters.reset()
    y = x * 2.0
    y += x
    cp.exp(y, out=y)
    z = -y
    s = z.sum()
    snap = cp.counters.snapshot()
    assert snap.launches == 5
    assert dict(snap.kernel_launches) == {
        "multiply": 1,
        "add": 1,
        "exp": 1,
        "negative": 1,
        "sum": 1,
    }
    assert snap.allocations == 3  # y, z, s: in place and out= allocate nothing
    assert s.shape == () and isinstance(s, cp.ndarray)  # a 0-d device array, not a scalar
    with pytest.raises((TypeError, AttributeError)):
        snap.kernel_launches["multiply"] = 0  # the snapshot is immutable
    cp.counters.reset()
    assert cp.counters.launches == 0 and not cp.counters.kernel_launches


def test_counting_yields_deltas_after_the_block(cp):
    x = cp.zeros(3)
    with cp.counting() as c:
        x + 1.0
    x + 1.0  # after the block: not in the deltas
    assert c.launches == 1 and c.kernel_launches == {"add": 1}


# ----------------------------------------------------------------------- views
def test_views_share_memory_flatdict_pattern(cp):
    flat = cp.zeros(10)
    W = flat[0:6].reshape(2, 3)
    b = flat[6:10].reshape(4, 1)
    cp.multiply(cp.ones((2, 3)), 3.0, out=W)
    b[...] = 2.0
    assert flat.get().tolist() == [3.0] * 6 + [2.0] * 4
    fd = FlatDict(cp.zeros(10), (("W1", (2, 3)), ("b1", (4, 1))))
    fd["W1"] += 1.0
    assert fd.packed and fd.flat.get()[:6].tolist() == [1.0] * 6
    assert flat[2:4].T.reshape(2).flags.c_contiguous


def test_indexing_gives_device_views_and_iteration_gives_device_arrays(cp):
    x = _device(cp, numpy.arange(6.0).reshape(2, 3))
    row = x[1]
    row[0] = 10.0
    assert x.get()[1, 0] == 10.0
    assert isinstance(x[0, 0], cp.ndarray) and x[0, 0].shape == ()
    rows = list(x)
    assert len(rows) == len(x) == 2 and all(isinstance(r, cp.ndarray) for r in rows)
    picked = x[:, _device(cp, [2, 0])]  # advanced indexing: a gather into a new array
    assert picked.get().tolist() == [[2.0, 0.0], [5.0, 10.0]]
    with pytest.raises(ValueError, match="truth value"):
        bool(x)
    with pytest.raises(TypeError):
        len(x[0, 0])


def test_take_with_axis_and_out(cp):
    X = _device(cp, numpy.arange(8.0).reshape(2, 4))
    out, order = cp.empty((2, 4)), _device(cp, [3, 2, 1, 0])
    with cp.counting() as c:
        cp.take(X, order, axis=1, out=out)
    assert out.get().tolist() == [[3, 2, 1, 0], [7, 6, 5, 4]]
    assert c.kernel_launches == {"take": 1} and c.allocations == 0
    with pytest.raises(TypeError):
        cp.take(X, [0], axis=1, out=numpy.empty((2, 1)))


def test_dot_with_out_and_reductions(cp):
    A = _device(cp, numpy.arange(6.0).reshape(2, 3))
    B = _device(cp, numpy.arange(3.0).reshape(3, 1))
    out = cp.empty((2, 1))
    assert cp.dot(A, B, out=out) is out
    assert out.get().tolist() == [[5.0], [14.0]]
    assert (A @ B).get().tolist() == [[5.0], [14.0]]
    row = cp.empty((2, 1))
    cp.sum(A, axis=1, keepdims=True, out=row)
    assert row.get().tolist() == [[3.0], [12.0]]
    assert float(cp.cumsum(A.ravel())[-1]) == 15.0
    assert float(A.mean()) == 2.5 and float(A.max()) == 5.0 and float(cp.min(A)) == 0.0
    assert bool(cp.allclose(A, A)) and bool(cp.array_equal(A, A))


# ----------------------------------------------------------- ElementwiseKernel: specs
def _rich_values(dtype, n=4096, seed=0):
    """Normal values mixed with subnormals, signed zeros, infinities, NaN and extremes."""
    rng = numpy.random.default_rng(seed)
    info = numpy.finfo(dtype)
    specials = numpy.array(
        [
            0.0,
            -0.0,
            numpy.inf,
            -numpy.inf,
            numpy.nan,
            info.max,
            -info.max,
            info.tiny,
            -info.tiny,
            info.smallest_subnormal,
            -info.smallest_subnormal,
            info.tiny / 3,
            -info.tiny / 7,
        ],
        dtype,
    )
    a = rng.standard_normal(n).astype(dtype) * dtype(10) ** rng.integers(-3, 3, n).astype(dtype)
    sub = rng.random(n) < 0.25
    a[sub] = (rng.random(sub.sum()) * float(info.tiny)).astype(dtype) * rng.choice(
        [-1, 1], sub.sum()
    )
    pick = rng.random(n) < 0.05
    a[pick] = rng.choice(specials, pick.sum())
    return a


SCALARS = {
    "lr": 0.01,
    "beta": 0.9,
    "one_minus_beta": 1 - 0.9,
    "beta1": 0.9,
    "one_minus_beta1": 1 - 0.9,
    "beta2": 0.999,
    "one_minus_beta2": 1 - 0.999,
    "bias1": 1 - 0.9**3,
    "bias2": 1 - 0.999**3,
    "eps": 1e-8,
}


def _numpy_twin(spec, arrays, scalars):
    """The spec's operation text evaluated by NumPy, statement by statement (C and Python
    share the precedence of + - * /), on copies of the arrays."""
    env = {name: a.copy() for name, a in arrays.items()}
    env.update(scalars)
    env["sqrt"] = numpy.sqrt
    with numpy.errstate(all="ignore"):  # inf and NaN inputs are the point
        for statement in spec.operation.split(";"):
            statement = statement.strip().replace("const T ", "")
            if statement:
                exec(statement, {}, env)  # noqa: S102 (our own spec text)
    return {name: env[name] for name in arrays}


def _bits_equal(got, want):
    got, want = numpy.asarray(got), numpy.asarray(want)
    nan = numpy.isnan(want)
    assert numpy.array_equal(numpy.isnan(got), nan), "NaN positions differ"
    uint = {4: numpy.uint32, 8: numpy.uint64}[got.dtype.itemsize]
    bad = numpy.flatnonzero(got[~nan].view(uint) != want[~nan].view(uint))
    assert bad.size == 0, (
        f"{bad.size} values differ, first {got[~nan][bad[:3]]} vs {want[~nan][bad[:3]]}"
    )


@pytest.mark.parametrize("dtype", [numpy.float64, numpy.float32])
@pytest.mark.parametrize("name", sorted(kernels.SPECS))
def test_xpopt_kernel_specs_equal_numpy_bit_for_bit(cp, name, dtype):
    spec = kernels.SPECS[name]
    kernel = cp.ElementwiseKernel(
        spec.in_params,
        spec.out_params,
        spec.operation,
        spec.name,
        options=spec.options,
        no_return=True,
    )
    names = [n for role, _, n in spec.params if role != "scalar"]
    host = {n: _rich_values(dtype, seed=k) for k, n in enumerate(names)}
    if "s" in host:
        host["s"] = numpy.abs(host["s"])  # a second moment: mostly non-negative, NaN kept
    device = {n: cp.asarray(a) for n, a in host.items()}
    scalars = {n: numpy.dtype(dtype).type(SCALARS[n]) for n in spec.scalars}
    args = [scalars[n] if role == "scalar" else device[n] for role, _, n in spec.params]
    with cp.counting() as c:
        assert kernel(*args) is None
    assert c.kernel_launches == {spec.name: 1} and c.h2d == c.d2h == 0
    if dtype is numpy.float32:
        with ftz_mode():
            want = _numpy_twin(spec, host, scalars)
    else:
        want = _numpy_twin(spec, host, scalars)
    for role, _, n in spec.params:
        if role == "out":
            got = device[n].get()
            _bits_equal(flush_subnormals(got) if dtype is numpy.float32 else got, want[n])
    assert kernel.options == spec.options and kernel.no_return and kernel.name == spec.name
    assert cp.kernels_built[-1] is kernel
    assert (kernel.in_params, kernel.out_params, kernel.operation) == (
        spec.in_params,
        spec.out_params,
        spec.operation,
    )


def test_xpopt_launch_goes_through_the_standin(cp):
    p = cp.ones(5, dtype=cp.float32)
    g = cp.full(5, 2.0, dtype=cp.float32)
    with cp.counting() as c:
        kernels.launch(kernels.GD, {"grad": g, "param": p}, {"lr": 0.25})
    assert p.get().tolist() == [0.5] * 5
    assert c.kernel_launches == {"xpopt_gd": 1}


# --------------------------------------------------------- ElementwiseKernel: rules
@pytest.fixture
def axpy(cp):
    return cp.ElementwiseKernel("T x, T a", "T y", "y = a * x", "axpy")


def test_kernel_numpy_scalar_of_another_dtype_is_cast_as_cupy_does(cp, axpy):
    # CuPy 14 never deduces T from a scalar: it converts the scalar to T (CScalar.apply_dtype)
    x = cp.ones(3, dtype=cp.float32)
    y = axpy(x, numpy.float64(1 / 3))
    assert y.dtype == numpy.float32
    assert y.get().tolist() == [float(numpy.float32(1 / 3))] * 3
    assert axpy(x, 2.0).get().tolist() == [2.0] * 3  # Python float: weak, cast to T


def test_kernel_strict_scalars_refuses_a_numpy_scalar_of_another_dtype():
    with cupy_standin(strict_scalars=True) as cp:
        k = cp.ElementwiseKernel("T x, T a", "T y", "y = a * x", "axpy")
        x = cp.ones(3, dtype=cp.float32)
        with pytest.raises(TypeError, match="Type is mismatched. a float64 float32"):
            k(x, numpy.float64(2.0))
        assert k(x, numpy.float32(2.0)).get().tolist() == [2.0] * 3
        assert k(x, 2.0).get().tolist() == [2.0] * 3


def test_kernel_array_of_another_dtype_is_mismatched(cp, axpy):
    x = cp.ones(3, dtype=cp.float32)
    with pytest.raises(TypeError, match=re.escape("Type is mismatched. a float64 float32 T")):
        axpy(x, cp.ones(3))
    with pytest.raises(TypeError, match=re.escape("Type is mismatched. x float32 float64 T")):
        axpy(x, 2.0, cp.empty(3))  # the output fixes T first, as in CuPy


def test_kernel_placeholder_used_only_by_scalars_cannot_be_deduced(cp):
    k = cp.ElementwiseKernel("T x, U a", "T y", "y = x * a", "mixed")
    with pytest.raises(KeyError, match="U"):
        k(cp.ones(3), 2.0)


def test_kernel_refuses_host_arrays_and_wrong_argument_counts(cp, axpy):
    with pytest.raises(TypeError, match=re.escape("Unsupported type <class 'numpy.ndarray'>")):
        axpy(numpy.ones(3), 2.0)
    with pytest.raises(TypeError, match=re.escape("Unsupported type <class 'numpy.ndarray'>")):
        axpy(cp.ones(3), 2.0, numpy.empty(3))
    with pytest.raises(
        TypeError,
        match="Wrong number of arguments for 'axpy'. It must be "
        "either 2 or 3 \\(with outputs\\), but given 1.",
    ):
        axpy(cp.ones(3))
    with pytest.raises(TypeError, match="Wrong arguments"):
        axpy(cp.ones(3), 2.0, bogus=1)


def test_kernel_output_shape_must_be_the_broadcast_shape(cp, axpy):
    with pytest.raises(ValueError, match="Out shape is mismatched"):
        axpy(cp.ones((2, 3)), 2.0, cp.empty((1, 3)))  # a smaller output is not broadcast up
    with pytest.raises(ValueError):
        axpy(cp.ones((2, 3)), 2.0, cp.empty(6))
    y = cp.empty((2, 3))
    assert axpy(cp.ones(3), 2.0, y) is y  # inputs broadcast to the output
    assert y.get().tolist() == [[2.0] * 3] * 2


def test_kernel_constructor_checks(cp):
    with pytest.raises(ValueError, match="Invalid kernel name"):
        cp.ElementwiseKernel("T x", "T y", "y = x", "not a name")
    with pytest.raises(ValueError, match="Can not use 'i'"):
        cp.ElementwiseKernel("T i", "T y", "y = i", "k")


def test_kernel_strided_output_raw_input_index_and_zero_size(cp):
    flip = cp.ElementwiseKernel("raw T x", "T y", "y = x[_ind.size() - 1 - i] + T(i)", "flip")
    x = _device(cp, [1.0, 2.0, 3.0])
    buf = cp.zeros(6)
    flip(x, buf[::2])  # a strided output: results written back through the view
    assert buf.get().tolist() == [3.0, 0.0, 3.0, 0.0, 3.0, 0.0]
    with cp.counting() as c:
        flip(x, cp.empty(0))
    assert c.launches == 0  # CuPy launches nothing for an empty loop


def test_kernel_concrete_types_and_ints(cp):
    k = cp.ElementwiseKernel("float32 x, int32 n", "int64 y", "y = (long long)(x * n)", "conv")
    got = k(cp.full(3, 2.5, dtype=cp.float32), 3)
    assert got.dtype == numpy.int64 and got.get().tolist() == [7, 7, 7]
    with pytest.raises(TypeError, match="Type is mismatched. x float64 float32"):
        k(cp.ones(3), 3)


# ------------------------------------------------------------------- flush to zero
def test_flush_to_zero_in_float32_kernels_not_float64(cp):
    scale = cp.ElementwiseKernel("T x, T a", "T y", "y = x * a", "scale")
    x32 = cp.asarray(numpy.array([TINY32, -TINY32, 1.0], numpy.float32))
    got = scale(x32, 1.0).get()
    assert got.tolist() == [0.0, 0.0, 1.0] and numpy.signbit(got[1])
    x64 = cp.asarray(numpy.array([TINY64, 1.0]))
    assert scale(x64, 1.0).get().tolist() == [TINY64, 1.0]


def test_flush_to_zero_in_float32_ufuncs_and_reductions(cp):
    x32 = cp.asarray(numpy.full(4, TINY32, numpy.float32))
    assert (x32 * 1.5).get().tolist() == [0.0] * 4
    assert float(x32.sum()) == 0.0  # subnormal inputs read as zero
    assert bool((x32 > 0).any()) is False
    x64 = cp.asarray(numpy.full(4, TINY64))
    assert float((x64 * 1.0).sum()) == 4 * TINY64
    assert cp.asarray(numpy.array([1e-39])).astype(cp.float32).get()[0] == 0.0


def test_ftz_mode_and_flush_subnormals_on_the_host():
    a = numpy.array([TINY32, -TINY32, 1.0, numpy.nan], numpy.float32)
    with ftz_mode():
        inside = a * numpy.float32(1.5)
    outside = a * numpy.float32(1.5)
    assert inside[:3].tolist() == [0.0, 0.0, 1.5] and numpy.signbit(inside[1])
    assert outside[0] != 0  # restored after the block
    flushed = flush_subnormals(a)
    assert flushed[:3].tolist() == [0.0, 0.0, 1.0] and numpy.signbit(flushed[1])
    assert numpy.isnan(flushed[3]) and a[0] == TINY32  # a copy


def test_float32_kernels_refuse_to_run_without_ftz_emulation(cp, monkeypatch):
    monkeypatch.setattr(_kernel, "is_x86_64", lambda: False)
    k = cp.ElementwiseKernel("T x", "T y", "y = x", "ident")
    with pytest.raises(NotImplementedError, match="x86-64"):
        k(cp.ones(2, dtype=cp.float32))
    assert k(cp.ones(2)).get().tolist() == [1.0, 1.0]  # float64 needs no emulation


# -------------------------------------------------------------------- host build
def test_missing_compiler_is_named(monkeypatch):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setenv("PATH", "")
    with pytest.raises(RuntimeError, match="g\\+\\+"):
        _hostbuild.find_compiler()


def test_libraries_are_cached_in_the_configured_directory(cp, tmp_path, monkeypatch):
    monkeypatch.setenv("XPOPT_STANDIN_CACHE", str(tmp_path))
    k = cp.ElementwiseKernel("T x", "T y", f"y = x + T(1); /* {tmp_path.name} */", "cached")
    assert k(cp.zeros(2)).get().tolist() == [1.0, 1.0]
    built = list(tmp_path.glob("cached-*.so"))
    assert len(built) == 1 and not list(tmp_path.glob("*.cpp"))


# ------------------------------------------------------------- the context manager
def test_standin_replaces_and_restores_sys_modules_and_the_backend():
    real_reason = backend.cuda_unavailable_reason()
    before = {k: v for k, v in sys.modules.items() if k == "cupy" or k.startswith("cupy.")}
    sys.modules["cupyx"] = sentinel = type(sys)("cupyx")
    try:
        with cupy_standin() as cp:
            assert sys.modules["cupy"] is cp and is_standin(cp)
            assert "cupyx" not in sys.modules
            assert (
                sys.modules["cupy.cuda"] is cp.cuda
                and sys.modules["cupy.cuda.runtime"] is cp.cuda.runtime
            )
            assert backend.cuda_unavailable_reason() is None
            assert cp.__version__.endswith("+xpopt.standin") and cp.is_available()
            with pytest.raises(RuntimeError, match="already active"):
                with cupy_standin():
                    pass
        after = {k: v for k, v in sys.modules.items() if k == "cupy" or k.startswith("cupy.")}
        assert after == before and sys.modules["cupyx"] is sentinel
        assert backend.cuda_unavailable_reason() == real_reason
    finally:
        del sys.modules["cupyx"]
    assert not is_standin(sys.modules.get("cupy"))


def test_arrays_of_an_earlier_session_are_not_device_arrays():
    with cupy_standin() as cp:
        old = cp.ones(2)
    with cupy_standin() as cp:
        assert not backend.is_cupy_array(old)
        assert backend.is_cupy_array(cp.ones(2))


def test_xpopt_sees_a_gpu_under_the_standin(cp):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert xpopt.set_backend("cuda") == "cuda"
    info = backend.device_info()
    assert info["device"] == "xpopt CuPy stand-in (host)"
    assert info["cupy"] == cp.__version__ and info["compute_capability"] == "9.0"
    X = xpopt.to_device(numpy.ones((2, 3)))
    assert isinstance(X, cp.ndarray) and backend.get_xp(X) is cp


def test_train_on_the_standin_equals_numpy_bit_for_bit(cp):
    X, Y = xpopt.load_moons(dtype=numpy.float64)  # host arrays: the default backend
    want = xpopt.train(X, Y, [2, 5, 2, 1], xpopt.Adam(0.01), num_epochs=3)
    dX, dY = xpopt.to_device(X, "cuda"), xpopt.to_device(Y, "cuda")
    with cp.counting() as c:
        got = xpopt.train(dX, dY, [2, 5, 2, 1], xpopt.Adam(0.01), num_epochs=3)
    assert isinstance(got.parameters.flat, cp.ndarray)
    numpy.testing.assert_array_equal(got.parameters.flat.get(), want.parameters.flat)
    assert got.costs == want.costs
    steps = 3 * -(-X.shape[1] // 64)
    assert c.kernel_launches["xpopt_adam"] == steps  # one fused launch per step


# ------------------------------------------------------------------- more CuPy habits
def test_denormals_are_zero_on_float32_kernel_inputs(cp):
    add = cp.ElementwiseKernel("T x, T a", "T y", "y = x + a", "addk")
    tiny = numpy.finfo(numpy.float32).tiny  # the least normal float32
    got = add(cp.asarray(numpy.array([TINY32], numpy.float32)), tiny).get()
    assert got[0] == tiny  # the subnormal input read as zero (plain IEEE: tiny + 1e-40)
    assert numpy.float32(TINY32) + tiny != tiny


def test_launch_counts_of_names_never_launched_are_zero(cp):
    with cp.counting() as c:
        cp.ones(2) + 1.0
    assert c.kernel_launches["xpopt_adam"] == 0 and "xpopt_adam" not in c.kernel_launches
    assert c.kernel_launches == {"fill": 1, "add": 1}


def test_device_work_raises_no_floating_point_warnings(cp):
    x = cp.asarray(numpy.array([0.0, -1.0, 1e308]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a GPU sets no floating-point flags
        cp.log(x), x * 10.0, x / 0.0, x.astype(cp.float32)


def test_numpy_scalars_and_numpy_methods_dispatch_to_the_device(cp):
    x = _device(cp, [1.0, 2.0])
    assert isinstance(numpy.float64(2.0) * x, cp.ndarray)
    assert float(numpy.sum(x)) == 3.0 and float(numpy.add.reduce(x)) == 3.0
    assert numpy.cumsum(x).get().tolist() == [1.0, 3.0]
    assert cp.get_array_module(x) is cp and cp.get_array_module(numpy.ones(1)) is numpy


def test_check_dataset_path_functions(cp):
    Y = _device(cp, [[0.0, 1.0, 1.0, 3.0]])
    assert cp.unique(Y).get().tolist() == [0.0, 1.0, 3.0]
    assert int(cp.count_nonzero(Y)) == 3
    assert cp.broadcast_to(_device(cp, [1.0]), (2, 3)).shape == (2, 3)
    with pytest.raises(ValueError, match="labels must be in"):
        xpopt.data.check_dataset(_device(cp, numpy.zeros((2, 4))), Y)


def test_concurrent_processes_share_one_cached_build(tmp_path):
    """Two processes compiling the same kernel at once both load a complete library."""
    import subprocess  # noqa: PLC0415

    code = (
        "import numpy, xpopt.testing as t\n"
        "with t.cupy_standin() as cp:\n"
        "    k = cp.ElementwiseKernel('T x', 'T y',\n"
        f"                            'y = x * T(2); /* {tmp_path.name} */', 'race')\n"
        "    assert k(cp.ones(3)).get().tolist() == [2.0] * 3\n"
    )
    env = {**__import__("os").environ, "XPOPT_STANDIN_CACHE": str(tmp_path)}
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()
    assert len(list(tmp_path.glob("race-*.so"))) == 1 and not list(tmp_path.glob("*.cpp"))


def test_data_dependent_sizes_and_pickling_read_back(cp):
    import pickle  # noqa: PLC0415

    x = _device(cp, [1.0, -2.0, 3.0])
    with cp.counting() as c:
        pos = x[x > 0]
    assert pos.get().tolist() == [1.0, 3.0]
    assert c.d2h == 1 and c.syncs == 1  # the mask's count is read before allocating
    with cp.counting() as c:
        back = pickle.loads(pickle.dumps(x))
    assert isinstance(back, cp.ndarray) and back.get().tolist() == [1.0, -2.0, 3.0]
    assert c.d2h == 1 and c.h2d == 1
    assert cp.shares_memory(x[1:], x) and not cp.shares_memory(back, x)


def test_events_time_on_the_host_and_the_pool_refuses_to_invent_figures(cp):
    """What bench/ uses: events (host times, a counted sync) and the memory pool, whose
    byte counts the stand-in cannot know."""
    start, end = cp.cuda.Event(), cp.cuda.Event()
    with pytest.raises(RuntimeError, match="recorded"):
        cp.cuda.get_elapsed_time(start, end)
    start.record()
    end.record()
    with cp.counting() as c:
        end.synchronize()
    assert c.syncs == 1
    assert cp.cuda.get_elapsed_time(start, end) >= 0.0
    pool = cp.get_default_memory_pool()
    pool.free_all_blocks()
    with pytest.raises(NotImplementedError, match="allocated_bytes"):
        pool.used_bytes()
