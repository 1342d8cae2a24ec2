"""The softmax output with categorical cross-entropy (xpopt.softmax), on NumPy and CuPy.

The gradients are checked against centred finite differences written here, in float64 on
the host; costs against a naive transcription on moderate logits; stability on huge ones.
"""

import numpy
import pytest

import xpopt
from conftest import assert_close
from xpopt import softmax as S


def _problem(xp, dims=(5, 7, 4), m=9, seed=0, dtype=numpy.float64):
    rng = numpy.random.RandomState(seed)
    params = {}
    for l in range(1, len(dims)):
        params[f"W{l}"] = rng.randn(dims[l], dims[l - 1]) * 0.7
        # biases away from 0: no ReLU sits on its kink, where differences see half a slope
        sign = rng.choice([-1, 1], (dims[l], 1))
        params[f"b{l}"] = rng.uniform(0.1, 0.5, size=(dims[l], 1)) * sign
    X = rng.randn(dims[0], m)
    labels = rng.randint(0, dims[-1], size=(1, m))
    to = (lambda a: xp.asarray(a.astype(dtype))) if xp is not numpy else (lambda a: a.astype(dtype))
    return {k: to(v) for k, v in params.items()}, to(X), xp.asarray(labels)


def _naive_softmax(Z):
    e = numpy.exp(Z)
    return e / e.sum(axis=0, keepdims=True)


# ------------------------------------------------------------------------ activation
def test_softmax_columns_sum_to_one_and_match_the_naive_formula(xp):
    Z = numpy.random.RandomState(1).randn(4, 6)
    A = S.softmax(xp.asarray(Z) if xp is not numpy else Z)
    assert_close(A, _naive_softmax(Z))
    assert_close(A.sum(axis=0), numpy.ones(6))


def test_softmax_is_stable_for_huge_logits(xp):
    Z = numpy.array([[1000.0, -1000.0, 800.0], [999.0, -1001.0, -800.0], [0.0, -999.0, 0.0]])
    A = xpopt.to_host(S.softmax(xp.asarray(Z) if xp is not numpy else Z))
    assert numpy.isfinite(A).all()
    expected = _naive_softmax(Z - Z.max(axis=0, keepdims=True))
    numpy.testing.assert_allclose(A, expected, rtol=1e-12)
    cost = float(
        S.softmax_cost(
            xp.asarray(A) if xp is not numpy else A, xp.asarray(numpy.array([[2, 0, 1]]))
        )
    )
    assert numpy.isfinite(cost) and cost > 1000  # a confident wrong answer: large, finite


def test_softmax_in_place_and_float32(xp):
    Z = numpy.random.RandomState(2).randn(3, 5).astype(numpy.float32)
    dZ = xp.asarray(Z) if xp is not numpy else Z.copy()
    out = S.softmax(dZ, out=dZ)
    assert out is dZ and out.dtype == numpy.float32
    assert_close(out, _naive_softmax(Z.astype(numpy.float64)).astype(numpy.float32), rtol=1e-6)


# ------------------------------------------------------------------------------ cost
def test_cost_is_the_summed_cross_entropy(xp):
    params, X, Y = _problem(xp)
    AL, _ = S.forward_propagation(X, params)
    A = xpopt.to_host(AL)
    y = xpopt.to_host(Y)[0]
    naive = -numpy.sum(numpy.log(A[y, numpy.arange(A.shape[1])]))
    assert float(S.softmax_cost(AL, Y)) == pytest.approx(naive, rel=1e-13)
    assert S.softmax_cost(AL, Y).shape == ()


def test_the_three_label_forms_give_the_same_cost_and_gradients(xp):
    params, X, Y = _problem(xp)
    AL, caches = S.forward_propagation(X, params)
    onehot = S.one_hot(Y, 4)
    forms = [Y, Y.reshape(-1), onehot, Y.astype(numpy.float64)]
    costs = [float(S.softmax_cost(AL, y)) for y in forms]
    assert costs == [costs[0]] * 4
    grads = [xpopt.to_host(dict(S.backward_propagation(X, y, caches))) for y in forms]
    for g in grads[1:]:
        for k in g:
            numpy.testing.assert_array_equal(g[k], grads[0][k])


def test_a_vanished_probability_of_another_class_costs_nothing(xp):
    A = numpy.array([[1.0, 0.5], [0.0, 0.5]])
    A = xp.asarray(A) if xp is not numpy else A
    cost = S.softmax_cost(A, xp.asarray(numpy.array([[0, 1]])))
    assert float(cost) == pytest.approx(numpy.log(2))


# ------------------------------------------------------------------------- gradients
def _finite_differences(params, X, Y, eps=1e-6):
    host = {k: xpopt.to_host(v).astype(numpy.float64) for k, v in params.items()}
    X64 = xpopt.to_host(X).astype(numpy.float64)
    Y64 = xpopt.to_host(Y)
    m = X64.shape[1]

    def J():
        return float(S.softmax_cost(S.forward_propagation(X64, host)[0], Y64)) / m

    approx = {}
    for k, a in host.items():
        g = numpy.empty_like(a)
        for i in numpy.ndindex(a.shape):
            keep = a[i]
            a[i] = keep + eps
            plus = J()
            a[i] = keep - eps
            minus = J()
            a[i] = keep
            g[i] = (plus - minus) / (2 * eps)
        approx["d" + k] = g
    return approx


@pytest.mark.parametrize("dims", [(5, 7, 4), (3, 6, 5, 10), (4, 2)])
def test_backward_matches_finite_differences_float64(xp, dims):
    params, X, Y = _problem(xp, dims=dims, m=11, seed=len(dims))
    AL, caches = S.forward_propagation(X, params)
    grads = xpopt.to_host(dict(S.backward_propagation(X, Y, caches)))
    approx = _finite_differences(params, X, Y)
    g = numpy.concatenate([grads[k].ravel() for k in sorted(approx)])
    a = numpy.concatenate([approx[k].ravel() for k in sorted(approx)])
    difference = numpy.linalg.norm(g - a) / (numpy.linalg.norm(g) + numpy.linalg.norm(a))
    assert difference < 1e-7, difference


def test_output_gradient_is_probabilities_minus_onehot_over_m(xp):
    params, X, Y = _problem(xp)
    AL, _ = S.forward_propagation(X, params)
    dZ = S.softmax_output_gradient(AL, S.one_hot(Y, 4), X.shape[1])
    expected = (xpopt.to_host(AL) - xpopt.to_host(S.one_hot(Y, 4))) / X.shape[1]
    assert_close(dZ, expected)


# ---------------------------------------------------------------------------- labels
def test_one_hot_and_class_labels_round_trip(xp):
    y = numpy.array([[2, 0, 1, 2]])
    Y = xp.asarray(y)
    onehot = S.one_hot(Y, 3)
    assert_close(onehot, numpy.eye(3)[:, y[0]])
    assert_close(S.class_labels(onehot), y.astype(numpy.int64), exact=True)
    assert_close(S.class_labels(Y.reshape(-1), 3), y.astype(numpy.int64), exact=True)
    assert S.one_hot(onehot, 3) is onehot


BAD_LABELS = [
    (numpy.array([[0, 1, 3, 1]]), ValueError, "in 0..2"),
    (numpy.array([[0, -1, 2, 1]]), ValueError, "in 0..2"),
    (numpy.array([[0, 1.5, 2, 1]]), ValueError, "non-integer"),
    (numpy.array([[0, numpy.nan, 2, 1]]), ValueError, "not finite"),
    (numpy.array([[0, numpy.inf, 2, 1]]), ValueError, "not finite"),
    (numpy.array([[True, False, True, True]]), TypeError, "booleans"),
    (numpy.eye(3)[:, [0, 1, 2, 1]] * 2, ValueError, "0 or 1"),
    (numpy.ones((3, 4)), ValueError, "exactly one 1"),
    (numpy.zeros((3, 4)), ValueError, "exactly one 1"),
    (numpy.ones((2, 4)), ValueError, "shape"),
    (numpy.ones((3, 4, 1)), ValueError, "shape"),
    (numpy.array([[0, 1, 2]]), ValueError, "3 examples but the data has 4"),
    (numpy.array([["a", "b", "c", "d"]]), TypeError, "numeric"),
]


@pytest.mark.parametrize("labels, error, match", BAD_LABELS)
def test_bad_labels_raise_a_clear_error(xp, labels, error, match):
    Y = labels if xp is numpy or labels.dtype.kind == "U" else xp.asarray(labels)
    with pytest.raises(error, match=match):
        S.check_labels(Y, 3, 4)


def test_bad_labels_leave_the_gradient_buffer_untouched(xp):
    params, X, _ = _problem(xp, dims=(5, 7, 3), m=4)
    AL, caches = S.forward_propagation(X, params)
    good = S.backward_propagation(X, xp.asarray(numpy.array([[0, 1, 2, 1]])), caches)
    before = xpopt.to_host(good.flat).copy()
    with pytest.raises(ValueError):
        S.backward_propagation(X, xp.asarray(numpy.array([[0, 1, 7, 1]])), caches, good)
    numpy.testing.assert_array_equal(xpopt.to_host(good.flat), before)


def test_one_output_unit_is_refused():
    with pytest.raises(ValueError, match="at least 2"):
        S.check_labels(numpy.zeros((1, 4)), 1)
    params = {"W1": numpy.ones((1, 2)), "b1": numpy.zeros((1, 1))}
    with pytest.raises(ValueError, match="at least 2 output units"):
        S.forward_propagation(numpy.ones((2, 3)), params)


def test_predict_classes_is_the_argmax():
    A = numpy.array([[0.1, 0.7, 0.3], [0.8, 0.2, 0.3], [0.1, 0.1, 0.4]])
    numpy.testing.assert_array_equal(S.predict_classes(A), [[1, 0, 2]])


# ------------------------------------------------------------------------ the device
@pytest.mark.gpu
def test_on_the_device_only_the_validation_boolean_is_read(standin):
    params, X, Y = _problem(standin)
    AL, caches = S.forward_propagation(X, params)
    assert isinstance(AL, standin.ndarray)
    with standin.counting() as counts:
        S.check_labels(Y, 4, X.shape[1])
    assert counts.d2h == 1 and counts.h2d == 0
    with standin.counting() as counts:
        cost = S.softmax_cost(AL, Y)
        grads = S.backward_propagation(X, Y, caches)
    assert counts.d2h == 2 and counts.h2d == 0  # one check each, nothing else
    assert isinstance(cost, standin.ndarray) and isinstance(grads["dW1"], standin.ndarray)
    with standin.counting() as counts:
        S.softmax(AL)
        S.forward_propagation(X, params)
        S.one_hot(Y, 4, checked=True)
    assert counts.d2h == 0 and counts.h2d == 0


# --------------------------------------------------------------------- training data
def test_check_dataset_accepts_the_label_forms_with_one_read(xp):
    X = xp.asarray(numpy.random.RandomState(0).rand(5, 4))
    forms = (numpy.array([[0, 1, 2, 1]]), numpy.array([0, 1, 2, 1]), numpy.eye(3)[:, [0, 1, 2, 1]])
    for Y in forms:
        assert S.check_dataset(X, xp.asarray(Y), 3) == 4


@pytest.mark.parametrize(
    "X, Y, error, match",
    [
        (numpy.full((5, 4), numpy.nan), numpy.array([[0, 1, 2, 1]]), ValueError, "X is not finite"),
        (numpy.ones((5, 4), numpy.int64), numpy.array([[0, 1, 2, 1]]), TypeError, "floating"),
        (numpy.ones((5, 4)), numpy.array([[0, 1, 2]]), ValueError, "examples"),
        (numpy.ones((5, 4)), numpy.array([[0, 1, 5, 1]]), ValueError, "in 0..2"),
        (numpy.ones((5, 4)), numpy.ones((2, 4)), ValueError, "shape"),
        (numpy.ones((5, 4)).astype(">f8"), numpy.array([[0, 1, 2, 1]]), TypeError, "byte order"),
    ],
)
def test_check_dataset_refuses(xp, X, Y, error, match):
    if xp is not numpy and X.dtype.isnative:
        X, Y = xp.asarray(X), xp.asarray(Y)
    with pytest.raises(error, match=match):
        S.check_dataset(X, Y, 3)


@pytest.mark.gpu
def test_check_dataset_reads_one_boolean(standin):
    X = standin.asarray(numpy.random.RandomState(0).rand(5, 4))
    Y = standin.asarray(numpy.array([[0, 1, 2, 1]]))
    with standin.counting() as counts:
        S.check_dataset(X, Y, 3)
    assert counts.d2h == 1 and counts.h2d == 0
