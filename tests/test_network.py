"""The MLP against the course transcription: init, forward, cost, backward, predict, gradient
check."""

from __future__ import annotations

import numpy
import pytest

import course_reference as ref
import xpopt
from conftest import assert_close
from xpopt import (
    FlatDict,
    accuracy,
    backward_propagation,
    compute_cost,
    forward_propagation,
    gradient_check,
    initialize_parameters,
    load_moons,
    network,
    predict,
    to_device,
    to_host,
)

F64, F32 = numpy.float64, numpy.float32


def on(xp, obj):
    """obj moved to xp's device (NumPy: unchanged)."""
    return obj if xp is numpy else to_device(obj, "cuda")


def perturbed(dims, seed=0, dtype=F64, scale=0.1) -> FlatDict:
    """He init with small random non-zero biases (no ReLU input lands exactly on the kink)."""
    p = initialize_parameters(dims)
    rng = numpy.random.RandomState(seed)
    for key in p:
        if key.startswith("b"):
            p[key][...] = scale * rng.randn(*p[key].shape)
    return FlatDict(p.flat.astype(dtype), p.layout)


def as_plain(p) -> dict:
    """A plain dict of separate NumPy arrays (what the course passes around)."""
    return {k: numpy.array(to_host(v)) for k, v in p.items()}


def grad_keys(L):
    return [f"d{p}{l}" for l in range(1, L + 1) for p in ("W", "b")]


# ------------------------------------------------------------------- initialisation
@pytest.mark.parametrize("dims", [[2, 5, 2, 1], [3, 4], [5, 7, 6, 4, 1]])
def test_initialize_parameters_equals_course(dims):
    """He init with the course's draws, bit for bit, as one packed FlatDict."""
    ours = initialize_parameters(dims)
    theirs = ref.initialize_parameters(dims)
    assert isinstance(ours, FlatDict) and ours.packed and ours.dtype == F64
    assert list(ours) == [f"{p}{l}" for l in range(1, len(dims)) for p in ("W", "b")]
    for key, value in theirs.items():
        assert ours[key].shape == value.shape
        assert numpy.array_equal(ours[key], value), key


@pytest.mark.parametrize("dims", [[2, 5, 2, 1], [3, 4], [5, 7, 6, 4, 1]])
def test_initialize_parameters_float32_is_the_float64_draw_cast(dims):
    """dtype=float32 gives exactly the float64 draws cast to float32."""
    ours = initialize_parameters(dims, dtype=F32)
    assert ours.dtype == F32
    for key, value in ref.initialize_parameters(dims).items():
        assert ours[key].dtype == F32
        assert numpy.array_equal(ours[key], value.astype(F32)), key


def test_initialize_parameters_leaves_global_random_state_alone():
    """The course seeds the global stream; xpopt draws from a local RandomState."""
    numpy.random.seed(99)
    expected = numpy.random.rand()
    numpy.random.seed(99)
    initialize_parameters([2, 5, 2, 1])
    assert numpy.random.rand() == expected


@pytest.mark.parametrize("dims", [[2], [2, 0], [2, 2.5], [2, True], "21"])
def test_initialize_parameters_rejects_bad_dims(dims):
    """layer_dims must be at least two positive integers."""
    with pytest.raises(ValueError, match="layer_dims"):
        initialize_parameters(dims)


def test_initialize_parameters_on_backend(xp):
    """Under the GPU backend the same parameters are born on the device."""
    with xpopt.use_backend("cpu" if xp is numpy else "cuda"):
        p = initialize_parameters([2, 5, 2, 1])
    assert isinstance(p.flat, xp.ndarray) and p.packed
    for key, value in ref.initialize_parameters([2, 5, 2, 1]).items():
        assert numpy.array_equal(to_host(p[key]), value)


# ------------------------------------------------------ forward / cost / backward
def assert_pass_equals_course(X, Y, params, *, exact=True):
    """Our forward, cost and backward against the course's, on the host."""
    theirs = as_plain(params)
    AL, caches = forward_propagation(X, params)
    a_ref, cache_ref = ref.forward_propagation(to_host(X), theirs)
    check = (lambda a, d: assert_close(a, d, exact=True)) if exact else assert_close
    assert len(caches.activations) == len(cache_ref)
    for ours_a, ref_a in zip(caches.activations, cache_ref, strict=True):
        check(ours_a, ref_a)
    check(AL, a_ref)

    cost = compute_cost(AL, Y)
    check(cost, numpy.asarray(ref.compute_cost(a_ref, to_host(Y))))

    grads = backward_propagation(X, Y, caches)
    g_ref = ref.backward_propagation(to_host(X), to_host(Y), cache_ref, theirs)
    L = len(theirs) // 2
    assert isinstance(grads, FlatDict) and list(grads) == grad_keys(L)
    for key in grad_keys(L):
        check(grads[key], g_ref[key])
    return grads


@pytest.mark.parametrize("biases", ["zero", "random"])
def test_full_batch_pass_equals_course_bit_for_bit(biases):
    """[2, 5, 2, 1] on the moons data: activations, cost and gradients equal the course's."""
    X, Y = load_moons()
    params = initialize_parameters([2, 5, 2, 1]) if biases == "zero" else perturbed([2, 5, 2, 1])
    assert_pass_equals_course(X, Y, params)


def test_minibatch_passes_equal_course_bit_for_bit():
    """The same on every mini-batch of two epochs (batches of 64 and the last of 44)."""
    X, Y = load_moons()
    params = perturbed([2, 5, 2, 1], seed=4)
    for seed in (11, 12):
        batches = ref.random_mini_batches(X, Y, 64, seed)
        assert [b[0].shape[1] for b in batches] == [64, 64, 64, 64, 44]
        for bx, by in batches:
            assert_pass_equals_course(bx, by, params)


def test_deeper_network_pass_equals_course_bit_for_bit():
    """A deeper, wider network ([2, 7, 6, 4, 1]) still matches the course's L-layer code."""
    X, Y = load_moons(120, 0.3, seed=5)
    assert_pass_equals_course(X, Y, perturbed([2, 7, 6, 4, 1], seed=2))


def test_float32_stays_float32(xp):
    """float32 in, float32 out: activations, cost, gradients (and close to the float64 run)."""
    X64, Y64 = load_moons()
    p64 = perturbed([2, 5, 2, 1])
    X, Y = on(xp, X64.astype(F32)), on(xp, Y64.astype(F32))
    p = on(xp, FlatDict(p64.flat.astype(F32), p64.layout))
    AL, caches = forward_propagation(X, p)
    assert all(a.dtype == F32 for a in caches.activations)
    cost = compute_cost(AL, Y)
    assert cost.dtype == F32 and isinstance(cost, xp.ndarray)
    grads = backward_propagation(X, Y, caches)
    assert grads.dtype == F32 and all(g.dtype == F32 for g in grads.values())

    AL64, caches64 = forward_propagation(X64, p64)
    grads64 = backward_propagation(X64, Y64, caches64)
    assert_close(AL, AL64.astype(F32), rtol=1e-5, atol=1e-6)
    assert_close(cost, compute_cost(AL64, Y64).astype(F32), rtol=1e-5)
    for key in grads64:
        assert_close(grads[key], grads64[key].astype(F32), rtol=1e-4, atol=1e-6)
    labels = predict(X, p)
    assert labels.dtype.kind == "i" and isinstance(labels, xp.ndarray)


def test_mixed_dtypes_raise_type_error():
    """X in float32 with float64 parameters (or the reverse) is refused, not promoted."""
    X, _ = load_moons()
    p64 = initialize_parameters([2, 5, 2, 1])
    p32 = initialize_parameters([2, 5, 2, 1], dtype=F32)
    with pytest.raises(TypeError, match="float32"):
        forward_propagation(X.astype(F32), p64)
    with pytest.raises(TypeError, match="float32"):
        forward_propagation(X, p32)


# ------------------------------------------------------------------------- cost
@pytest.mark.parametrize("dtype", [F64, F32])
def test_compute_cost_is_zero_d_and_equals_course_inside_0_1(xp, dtype):
    """A 0-d array on the device; for normal AL in (0, 1), exactly the course's sum."""
    rng = numpy.random.RandomState(3)
    info = numpy.finfo(dtype)
    AL = numpy.concatenate([rng.rand(50), [info.tiny, 1e-30, 0.5, 1 - info.epsneg, 0.999]])
    AL = AL.astype(dtype).reshape(1, -1)
    Y = (rng.rand(1, AL.shape[1]) > 0.5).astype(dtype)
    Y[0, -5:] = [1, 1, 0, 0, 1]  # the extremes paired with their costly label
    cost = compute_cost(on(xp, AL), on(xp, Y))
    assert isinstance(cost, xp.ndarray) and cost.shape == () and cost.dtype == dtype
    expected = ref.compute_cost(AL, Y)
    if xp is numpy:
        assert float(cost) == float(expected)
    else:  # a device reduction sums in another order
        assert_close(cost, numpy.asarray(expected, dtype))


@pytest.mark.parametrize("dtype", [F64, F32])
def test_compute_cost_equals_course_for_subnormal_al(dtype):
    """AL strictly inside (0, 1) but subnormal (a sigmoid of z < -708 in float64, < -87 in
    float32) is still a valid probability: the course's formula gives a finite cost, and
    ours must equal it exactly."""
    sub = numpy.finfo(dtype).tiny / 4
    AL = numpy.array([[sub, 0.25]], dtype)
    Y = numpy.array([[1, 0]], dtype)
    expected = ref.compute_cost(AL, Y)
    assert numpy.isfinite(expected)
    assert float(compute_cost(AL, Y)) == float(expected)


@pytest.mark.parametrize("dtype", [F64, F32])
def test_compute_cost_finite_when_saturated(xp, dtype):
    """AL exactly 0 or 1 costs a large finite amount when wrong, about nothing when right."""
    with numpy.errstate(divide="ignore", invalid="ignore"):
        assert not numpy.isfinite(
            ref.compute_cost(numpy.array([[0.0]], dtype), numpy.array([[1.0]], dtype))
        )
    for a, y, wrong in [(0, 1, True), (1, 0, True), (0, 0, False), (1, 1, False)]:
        cost = compute_cost(on(xp, numpy.array([[a]], dtype)), on(xp, numpy.array([[y]], dtype)))
        value = float(cost)
        assert numpy.isfinite(value), (a, y)
        assert (value > 10) if wrong else (0 <= value < 1e-6), (a, y, value)
    AL = numpy.array([[0, 1, 0.5, 0, 1]], dtype)
    Y = numpy.array([[1, 0, 1, 0, 1]], dtype)
    total = compute_cost(on(xp, AL), on(xp, Y))
    assert total.dtype == dtype and numpy.isfinite(float(total))


def test_compute_cost_shape_mismatch():
    """AL and Y of different shapes are a ValueError."""
    with pytest.raises(ValueError, match="shape"):
        compute_cost(numpy.full((1, 3), 0.5), numpy.zeros((1, 4)))


# --------------------------------------------------------------------- backward
def test_backward_reuses_given_grads():
    """A packed grads FlatDict passed in is written and returned (same object), correct values."""
    X, Y = load_moons()
    params = perturbed([2, 5, 2, 1], seed=1)
    batches = ref.random_mini_batches(X, Y, 64, 11)
    _, caches = forward_propagation(batches[0][0], params)
    grads = backward_propagation(batches[0][0], batches[0][1], caches)
    flat = grads.flat
    for bx, by in batches[1:]:  # including the last, smaller batch
        _, caches = forward_propagation(bx, params)
        out = backward_propagation(bx, by, caches, grads)
        assert out is grads and out.flat is flat and out.packed
        _, cache_ref = ref.forward_propagation(bx, as_plain(params))
        g_ref = ref.backward_propagation(bx, by, cache_ref, as_plain(params))
        for key in g_ref:
            assert numpy.array_equal(out[key], g_ref[key]), key


def test_course_style_rebinding_still_works():
    """Plain dicts of separate arrays and FlatDicts with rebound keys give the course's results."""
    X, Y = load_moons()
    params = perturbed([2, 5, 2, 1], seed=2)
    plain = as_plain(params)
    a, cache = ref.forward_propagation(X, plain)
    plain = ref.update_parameters_with_gd(plain, ref.backward_propagation(X, Y, cache, plain), 0.5)
    assert_pass_equals_course(X, Y, plain)  # a plain dict (course's update rebinding every key)

    grads = backward_propagation(X, Y, forward_propagation(X, params)[1])
    for key in list(params):  # the course's update, on a FlatDict
        params[key] = params[key] - 0.5 * grads["d" + key]
    assert not params.packed
    for key in plain:
        assert numpy.array_equal(params[key], plain[key])
    assert_pass_equals_course(X, Y, params)


# ------------------------------------------------------------ workspaces, epoch cost
def test_workspace_passes_equal_course_bit_for_bit():
    """Passes through reused Workspaces (widths 64 and 44, one shared grads) equal the course's."""
    X, Y = load_moons()
    params = perturbed([2, 5, 2, 1], seed=6)
    plain = as_plain(params)
    full = network.Workspace(params, 64)
    rest = network.Workspace(params, 44, grads=full.grads)
    assert rest.grads is full.grads
    for seed in (11, 12):
        for bx, by in ref.random_mini_batches(X, Y, 64, seed):
            ws = full if bx.shape[1] == 64 else rest
            AL, caches = forward_propagation(bx, params, ws)
            grads = backward_propagation(bx, by, caches)
            assert grads is full.grads
            a_ref, cache_ref = ref.forward_propagation(bx, plain)
            assert numpy.array_equal(AL, a_ref)
            for ours_a, ref_a in zip(caches.activations, cache_ref, strict=True):
                assert numpy.array_equal(ours_a, ref_a)
            g_ref = ref.backward_propagation(bx, by, cache_ref, plain)
            for key in g_ref:
                assert numpy.array_equal(grads[key], g_ref[key]), key


def test_workspace_rejects_misuse():
    """A workspace is for its own packed parameters and its own batch width."""
    params = perturbed([2, 5, 2, 1])
    ws = network.Workspace(params, 8)
    with pytest.raises(ValueError, match="width"):
        forward_propagation(numpy.zeros((2, 9)), params, ws)
    with pytest.raises(ValueError, match="parameters"):
        forward_propagation(numpy.zeros((2, 8)), params.copy(), ws)
    params["W1"] = params["W1"] * 2  # rebound: no longer packed
    with pytest.raises(TypeError, match="packed"):
        network.Workspace(params, 8)


@pytest.mark.parametrize(
    "m, mbs", [(300, 64), (256, 64), (300, 300), (300, 1000), (37, 1), (10, 3)]
)
def test_epoch_cost_equals_course_running_total(m, mbs):
    """epoch_cost over an epoch's outputs = the course's `total += compute_cost(a, y)`, bit for
    bit."""
    X, Y = load_moons(m, 0.2, seed=4)
    plain = as_plain(perturbed([2, 5, 2, 1], seed=8))
    total, outs, labels = 0, [], []
    for bx, by in ref.random_mini_batches(X, Y, mbs, 11):
        a, _ = ref.forward_propagation(bx, plain)
        total += ref.compute_cost(a, by)
        outs.append(a)
        labels.append(by)
    got = network.epoch_cost(
        numpy.concatenate(outs, axis=1), numpy.concatenate(labels, axis=1), mbs
    )
    assert numpy.shape(got) == () and float(got) == float(total)


def test_epoch_cost_parity_across_backends(xp):
    """On xp's device epoch_cost stays there and agrees with the course's total."""
    X, Y = load_moons()
    plain = as_plain(perturbed([2, 5, 2, 1], seed=8))
    a, _ = ref.forward_propagation(X, plain)
    expected = sum(ref.compute_cost(a[:, k : k + 64], Y[:, k : k + 64]) for k in range(0, 300, 64))
    got = network.epoch_cost(on(xp, a), on(xp, Y), 64)
    assert isinstance(got, xp.ndarray)
    assert_close(got, numpy.asarray(expected))


# ----------------------------------------------------------------------- predict
def test_predict_threshold_is_strict():
    """Labels are int 0/1, and an output of exactly 0.5 is 0."""
    params = {"W1": numpy.array([[1.0]]), "b1": numpy.array([[0.0]])}
    X = numpy.array([[-3.0, -1e-3, 0.0, 1e-3, 3.0]])
    AL, _ = forward_propagation(X, params)
    assert AL[0, 2] == 0.5  # sigmoid(0) is exactly one half
    p = predict(X, params)
    assert p.dtype.kind == "i" and p.shape == (1, 5)
    assert p.tolist() == [[0, 0, 0, 1, 1]]
    p_ref, _ = ref.predict(X, numpy.zeros((1, 5)), params)
    assert numpy.array_equal(p, p_ref)


@pytest.mark.parametrize("which", ["init", "perturbed", "trained"])
def test_predict_and_accuracy_equal_course(which):
    """predict and accuracy (a Python float) equal the course's predict on the moons."""
    X, Y = load_moons()
    if which == "init":
        params = initialize_parameters([2, 5, 2, 1])
    else:
        params = perturbed([2, 5, 2, 1], seed=7, scale=0.5)
        if which == "trained":  # a few full-batch GD steps, the course's way
            plain = as_plain(params)
            for _ in range(30):
                a, cache = ref.forward_propagation(X, plain)
                grads = ref.backward_propagation(X, Y, cache, plain)
                plain = ref.update_parameters_with_gd(plain, grads, 0.5)
            params = FlatDict.pack(plain)
    p_ref, acc_ref = ref.predict(X, Y, as_plain(params))
    assert numpy.array_equal(predict(X, params), p_ref)
    acc = accuracy(X, Y, params)
    assert type(acc) is float and acc == float(acc_ref)
    assert 0.0 < acc < 1.0


# --------------------------------------------------------------------- GPU parity
def test_pass_parity_across_backends(xp):
    """Forward, cost, backward and predict on xp's device match the course (NumPy) closely."""
    X, Y = load_moons()
    params = perturbed([2, 5, 2, 1], seed=3)
    Xd, Yd, pd = on(xp, X), on(xp, Y), on(xp, params)
    grads = assert_pass_equals_course(Xd, Yd, pd, exact=xp is numpy)
    assert isinstance(grads.flat, xp.ndarray)
    p_ref, acc_ref = ref.predict(X, Y, as_plain(params))
    labels = predict(Xd, pd)
    assert isinstance(labels, xp.ndarray)
    assert numpy.array_equal(to_host(labels), p_ref)
    assert accuracy(Xd, Yd, pd) == float(acc_ref)


# ------------------------------------------------------------------ gradient check
DEPTHS = {1: [3, 1], 2: [3, 4, 1], 3: [2, 5, 2, 1], 4: [3, 5, 4, 3, 1]}
# Measured worst over 30 random setups per depth (ours, Nov 2026): float64 3.9e-8, float32
# 1.5e-7. The float32 error is the backward pass's own rounding (the differences are taken
# in float64 on the host).
BOUNDS = {F64: 1e-7, F32: 1e-6}


def check_problem(L, dtype, seed=0, m=12):
    rng = numpy.random.RandomState(100 + seed)
    dims = DEPTHS[L]
    params = perturbed(dims, seed=seed, dtype=dtype)
    X = rng.randn(dims[0], m).astype(dtype)
    Y = (rng.rand(1, m) > 0.5).astype(dtype)
    return params, X, Y


@pytest.mark.parametrize("dtype", [F64, F32], ids=["float64", "float32"])
@pytest.mark.parametrize("L", [1, 2, 3, 4])
def test_gradient_check_small(xp, L, dtype):
    """Backward's gradients agree with centred differences at every depth, in both dtypes."""
    for seed in (0, 1):
        params, X, Y = check_problem(L, dtype, seed)
        diff = gradient_check(on(xp, params), on(xp, X), on(xp, Y))
        assert isinstance(diff, float)
        assert 0 <= diff < BOUNDS[dtype], (L, dtype, seed, diff)


def test_gradient_check_detects_a_wrong_backward(monkeypatch):
    """A backward pass off by 1 % in one gradient makes gradient_check report a large difference.

    gradient_check takes its gradients from network.backward_propagation; here that function
    is replaced by one that returns the correct gradients with dW1 scaled by 1.01 (the kind of
    bug it exists to find). The reference differences do not use backward, so this is honest.
    """
    params, X, Y = check_problem(3, F64)
    assert gradient_check(params, X, Y) < BOUNDS[F64]
    real = network.backward_propagation

    def broken(*args, **kwargs):
        grads = real(*args, **kwargs)
        grads["dW1"] *= 1.01
        return grads

    monkeypatch.setattr(network, "backward_propagation", broken)
    assert gradient_check(params, X, Y) > 1e-4


def test_gradient_check_sees_relu_kink_with_zero_biases():
    """Why the checks above use non-zero biases: with b = 0 and an all-zero example, every
    first-layer z is exactly 0, where centred differences see half the ReLU slope and the
    backward pass (relu'(0) = 0) none, so the check reports a large difference."""
    dims = [3, 4, 1]
    params = initialize_parameters(dims)  # zero biases
    rng = numpy.random.RandomState(5)
    X = rng.randn(3, 6)
    X[:, 2] = 0.0
    Y = numpy.array([[1.0, 0, 1, 0, 1, 0]])
    assert gradient_check(params, X, Y) > 1e-3
    params["b1"][...] = 0.1 * rng.randn(4, 1)  # off the kink: the check passes again
    assert gradient_check(params, X, Y) < BOUNDS[F64]


def test_gradient_check_rejects_bad_epsilon():
    """epsilon must be a positive number."""
    params, X, Y = check_problem(1, F64)
    for eps in (0, -1e-7, "1e-7"):
        with pytest.raises(ValueError, match="epsilon"):
            gradient_check(params, X, Y, epsilon=eps)


# ---------------------------------------------------- nothing silently wrong (issue 11)
@pytest.mark.parametrize(
    "change", ["missing-last-b", "missing-last-W", "extra-layer-W", "extra-key", "missing-middle"]
)
def test_parameters_must_hold_every_layer(change):
    """Parameters missing a layer's key (e.g. b3) or holding extra ones: KeyError naming the
    keys, from every pass (it used to run a smaller network: the layer count was len // 2)."""
    X, Y = load_moons()
    params = as_plain(perturbed([2, 5, 2, 1]))
    if change == "missing-last-b":
        del params["b3"]
    elif change == "missing-last-W":
        del params["W3"]
    elif change == "extra-layer-W":
        params["W4"] = numpy.ones((1, 1))
    elif change == "extra-key":
        params["gamma"] = numpy.ones((1, 1))
    else:
        del params["W2"], params["b2"]
    pattern = {
        "missing-last-b": "b3",
        "missing-last-W": "W3",
        "extra-layer-W": "b4",
        "extra-key": "gamma",
        "missing-middle": "W2",
    }[change]
    with pytest.raises(KeyError, match=pattern):
        forward_propagation(X, params)
    with pytest.raises(KeyError, match=pattern):
        predict(X, params)
    with pytest.raises(KeyError, match=pattern):
        accuracy(X, Y, params)
    with pytest.raises(KeyError, match=pattern):
        network.Workspace(FlatDict.pack(params), 8)


@pytest.mark.parametrize(
    "key,shape", [("b1", (1, 1)), ("b2", (2,)), ("b3", (2, 1)), ("W2", (2, 4))]
)
def test_parameter_shapes_must_chain(key, shape):
    """A bias that would broadcast ((1, 1) or (n,) instead of (n, 1)) or a weight that does not
    chain: ValueError naming the key, not a silently different network."""
    X, _ = load_moons()
    params = as_plain(perturbed([2, 5, 2, 1]))
    params[key] = numpy.ones(shape)
    with pytest.raises(ValueError, match=key):
        forward_propagation(X[:, :5], params)  # m = 5: (n,)-shaped biases would broadcast
    with pytest.raises(ValueError, match=key):
        network.Workspace(FlatDict.pack(params), 5)


@pytest.mark.parametrize("shape", [(300,), (300, 1), (1, 1), (1, 299), (2, 300)])
def test_accuracy_rejects_labels_of_another_shape(shape):
    """Y must have the predictions' shape (1, m): a (m,), (m, 1), (1, 1) or (1, m') Y was
    broadcast into a meaningless fraction."""
    X, Y = load_moons()
    params = perturbed([2, 5, 2, 1])
    bad = numpy.resize(Y, shape)
    with pytest.raises(ValueError, match=r"\(1, 300\)"):
        accuracy(X, bad, params)


@pytest.mark.parametrize("order", ["sorted", "reversed", "shuffled"])
@pytest.mark.parametrize("container", ["plain", "flat"])
def test_gradient_check_any_key_order(order, container):
    """gradient_check pairs gradients and parameters by key: any key order of the parameters
    (plain dict, or a FlatDict of another layout order) gives the right answer (sorted keys
    gave 0.51 for a correct backward)."""
    params, X, Y = check_problem(3, F64)
    keys = list(params)
    keys = {
        "sorted": sorted(keys),
        "reversed": keys[::-1],
        "shuffled": [keys[i] for i in numpy.random.RandomState(0).permutation(len(keys))],
    }[order]
    assert keys != list(params)
    reordered = (
        {k: numpy.array(params[k]) for k in keys}
        if container == "plain"
        else FlatDict.pack(params, keys)
    )
    assert gradient_check(reordered, X, Y) < BOUNDS[F64]


# ------------------------------------------------- plain calls reuse what they can
def test_plain_calls_see_a_rebound_or_reshaped_parameter():
    """A call without a workspace reuses what it found in the previous call's parameters
    only while the dict holds the same arrays: rebinding a key (the course's update) or
    passing another dict gives the result of a fresh dict."""
    X, Y = numpy.random.default_rng(0).standard_normal((2, 9)), numpy.ones((1, 9))
    params = initialize_parameters([2, 4, 1])
    first, _ = forward_propagation(X, params)
    params["W1"] = params["W1"] * 2.0  # rebound: no longer the array the plan holds
    again, caches = forward_propagation(X, params)
    fresh = {k: numpy.array(v) for k, v in params.items()}
    want, want_caches = forward_propagation(X, fresh)
    assert numpy.array_equal(again, want) and not numpy.array_equal(again, first)
    got = backward_propagation(X, Y, caches)
    ref = backward_propagation(X, Y, want_caches)
    for key in ref:
        assert numpy.array_equal(got[key], ref[key])
    params["b1"] = numpy.zeros((4,))  # a bias that would broadcast: refused, not reused
    with pytest.raises(ValueError, match="b1"):
        forward_propagation(X, params)


def test_plain_backward_returns_a_new_packed_buffer_each_call():
    """The course's loop may keep a step's gradients: each call returns its own FlatDict,
    packed in the parameters' buffer order, never a buffer an earlier call returned."""
    X, Y = numpy.random.default_rng(1).standard_normal((2, 6)), numpy.ones((1, 6))
    params = FlatDict.pack({k: v for k, v in reversed(initialize_parameters([2, 3, 1]).items())})
    _, caches = forward_propagation(X, params)
    a, b = backward_propagation(X, Y, caches), backward_propagation(X, Y, caches)
    assert a.flat is not b.flat and a.packed and b.packed
    assert a.layout == tuple(("d" + k, s) for k, s in params.layout)
    assert numpy.array_equal(a.flat, b.flat)


def test_gradients_built_from_the_plan_are_ordinary_flatdicts():
    """backward builds its gradient FlatDict from slices worked out once (not through the
    constructor): it must behave as FlatDict.empty's in every way FlatDict offers."""
    import pickle

    X, Y = numpy.random.default_rng(2).standard_normal((2, 5)), numpy.zeros((1, 5))
    params = initialize_parameters([2, 3, 2, 1])
    grads = backward_propagation(X, Y, forward_propagation(X, params)[1])
    built = FlatDict(grads.flat.copy(), grads.layout)
    assert type(grads) is FlatDict and list(grads) == list(built) and grads.layout == built.layout
    assert grads.packed and all(numpy.shares_memory(grads[k], grads.flat) for k in grads)
    for other in (grads.copy(), pickle.loads(pickle.dumps(grads)), grads.zeros_like()):
        assert other.packed and other.layout == grads.layout
    grads["dW1"] = grads["dW1"] + 1.0  # rebinding, then repacking, as on any FlatDict
    assert not grads.packed and grads.repack().packed
    assert numpy.array_equal(grads["dW1"], built["dW1"] + 1.0)
