"""Multi-class training end to end: ``output="softmax"`` through the course-named functions,
train(), model(), predict(), accuracy(), a validation set, and the refusals before any work."""

import numpy
import pytest

import xpopt
from xpopt import softmax as S


def _blobs(xp=numpy, m=240, C=3, n_x=4, seed=0, dtype=numpy.float64):
    """C well-separated Gaussian blobs: examples as columns, integer labels (1, m)."""
    rng = numpy.random.RandomState(seed)
    centres = rng.randn(n_x, C) * 5
    y = numpy.arange(m) % C
    X = (centres[:, y] + rng.randn(n_x, m) * 0.3).astype(dtype)
    Y = y.reshape(1, m).astype(numpy.int64)
    if xp is not numpy:
        return xp.asarray(X), xp.asarray(Y)
    return X, Y


# ---------------------------------------------------------------- course-named calls
def test_the_course_functions_take_output_softmax(xp):
    X, Y = _blobs(xp, m=20)
    params = xpopt.to_device(
        xpopt.initialize_parameters([4, 6, 3]), "cuda" if xp is not numpy else "cpu"
    )
    AL, caches = xpopt.forward_propagation(X, params, output="softmax")
    assert AL.shape == (3, 20)
    numpy.testing.assert_allclose(xpopt.to_host(AL.sum(axis=0)), numpy.ones(20))
    mine, _ = S.forward_propagation(X, params)
    numpy.testing.assert_array_equal(xpopt.to_host(AL), xpopt.to_host(mine))
    cost = xpopt.compute_cost(AL, Y, output="softmax")
    assert float(cost) == float(S.softmax_cost(AL, Y))
    grads = xpopt.backward_propagation(X, Y, caches, output="softmax")
    expected = S.backward_propagation(X, Y, caches)
    for k in expected:
        numpy.testing.assert_array_equal(xpopt.to_host(grads[k]), xpopt.to_host(expected[k]))


def test_gradient_check_passes_for_the_softmax():
    X, Y = _blobs(m=15)
    params = xpopt.initialize_parameters([4, 6, 3])
    params["b1"][...] = 0.1  # off the ReLU kinks
    assert xpopt.gradient_check(params, X, Y, output="softmax") < 1e-7


def test_class_labels_without_output_softmax_get_a_hint():
    X, Y = _blobs(m=10)
    params = xpopt.initialize_parameters([4, 5, 3])
    AL, caches = xpopt.forward_propagation(X, params)
    with pytest.raises(ValueError, match="output='softmax'"):
        xpopt.compute_cost(AL, Y)
    with pytest.raises(ValueError, match="output='softmax'"):
        xpopt.backward_propagation(X, Y, caches)


@pytest.mark.parametrize("call", ["forward", "cost", "backward", "train", "predict"])
def test_an_unknown_output_is_refused(call):
    X, Y = _blobs(m=10)
    params = xpopt.initialize_parameters([4, 5, 3])
    AL, caches = xpopt.forward_propagation(X, params)
    calls = {
        "forward": lambda: xpopt.forward_propagation(X, params, output="tanh"),
        "cost": lambda: xpopt.compute_cost(AL, Y, output="tanh"),
        "backward": lambda: xpopt.backward_propagation(X, Y, caches, output="tanh"),
        "train": lambda: xpopt.train(X, Y, params, xpopt.Adam(), output="tanh", num_epochs=1),
        "predict": lambda: xpopt.predict(X, params, output="tanh"),
    }
    with pytest.raises(ValueError, match="output must be one of"):
        calls[call]()


def test_one_output_unit_cannot_be_a_softmax():
    X, _ = _blobs(m=10)
    with pytest.raises(ValueError, match="at least 2"):
        xpopt.forward_propagation(X, xpopt.initialize_parameters([4, 3, 1]), output="softmax")


# ---------------------------------------------------------------------------- train
@pytest.mark.parametrize("labels", ["classes", "flat", "onehot"])
def test_train_learns_the_blobs(labels):
    X, Y = _blobs()
    if labels == "flat":
        Y = Y.reshape(-1)
    elif labels == "onehot":
        Y = S.one_hot(Y, 3)
    result = xpopt.train(
        X, Y, [4, 8, 3], xpopt.Adam(0.01), output="softmax", num_epochs=30, record_every=10
    )
    assert result.costs[-1] < 0.25 * result.costs[0]
    assert xpopt.accuracy(X, Y, result.parameters, output="softmax") == 1.0
    assert list(result.parameters) == ["W1", "b1", "W2", "b2"]


def test_train_with_class_labels_equals_a_loop_of_the_course_functions():
    X, Y = _blobs(m=50)
    result = xpopt.train(
        X,
        Y,
        [4, 5, 3],
        xpopt.GD(0.1),
        output="softmax",
        num_epochs=3,
        mini_batch_size=16,
        record_every=1,
    )
    params = xpopt.initialize_parameters([4, 5, 3])
    costs = []
    for i in range(3):
        total = 0.0
        for bx, by in xpopt.random_mini_batches(X, Y, 16, seed=10 + i + 1):
            AL, caches = xpopt.forward_propagation(bx, params, output="softmax")
            total += float(xpopt.compute_cost(AL, by, output="softmax"))
            grads = xpopt.backward_propagation(bx, by, caches, output="softmax")
            params = xpopt.update_parameters_with_gd(params, grads, 0.1)
        costs.append(total / 50)
    numpy.testing.assert_allclose(result.costs, costs, rtol=1e-12)
    for k in params:
        numpy.testing.assert_allclose(result.parameters[k], params[k], rtol=1e-12, atol=1e-15)


def test_model_takes_output_softmax(capsys):
    X, Y = _blobs()
    params = xpopt.model(
        X, Y, [4, 8, 3], "adam", learning_rate=0.01, num_epochs=1, output="softmax"
    )
    assert "Cost after epoch 0:" in capsys.readouterr().out
    assert params["W2"].shape == (3, 8)


# --------------------------------------------------------------------------- predict
def test_predict_gives_class_indices_and_probabilities_on_request():
    X, Y = _blobs()
    result = xpopt.train(X, Y, [4, 8, 3], xpopt.Adam(0.01), output="softmax", num_epochs=30)
    p = xpopt.predict(X, result.parameters, output="softmax")
    assert p.shape == (1, 240) and p.dtype == numpy.int64
    numpy.testing.assert_array_equal(p, Y)
    probs = xpopt.predict(X, result.parameters, output="softmax", probabilities=True)
    assert probs.shape == (3, 240)
    numpy.testing.assert_array_equal(probs.argmax(axis=0), p[0])
    sig = xpopt.predict(X, result.parameters, probabilities=True)
    assert ((sig > 0) & (sig < 1)).all()


def test_accuracy_of_several_outputs_is_per_example_not_per_output_unit():
    """Ten sigmoid outputs with one-hot labels: the per-unit figure would flatter; argmax."""
    X, Y = _blobs()
    params = xpopt.initialize_parameters([4, 8, 3])
    onehot = S.one_hot(Y, 3)
    AL, _ = xpopt.forward_propagation(X, params)
    right = (AL.argmax(axis=0) == Y[0]).mean()
    assert xpopt.accuracy(X, onehot, params) == pytest.approx(right)
    assert xpopt.accuracy(X, Y, params) == pytest.approx(right)
    assert xpopt.accuracy(X, Y, params, output="softmax") == pytest.approx(right)
    with pytest.raises(ValueError, match="in 0..2"):
        xpopt.accuracy(X, Y + 5, params)


# ------------------------------------------------------------------------ validation
def test_validation_is_recorded_at_each_recorded_epoch():
    X, Y = _blobs(m=300)
    Xv, Yv = _blobs(m=90, seed=0)
    result = xpopt.train(
        X,
        Y,
        [4, 8, 3],
        xpopt.Adam(0.01),
        output="softmax",
        num_epochs=25,
        record_every=10,
        validation=(Xv, Yv),
    )
    assert result.validation_epochs == [0, 10, 20] == result.record_epochs
    assert len(result.validation_costs) == len(result.validation_accuracies) == 3
    assert result.validation_costs[-1] < result.validation_costs[0]
    assert result.validation_accuracies[-1] == 1.0
    AL, _ = xpopt.forward_propagation(Xv, result.parameters, output="softmax")
    assert all(isinstance(v, float) for v in result.validation_costs)


def test_validation_with_the_sigmoid_on_the_moons():
    X, Y = xpopt.load_moons()
    result = xpopt.train(
        X[:, :200],
        Y[:, :200],
        [2, 5, 2, 1],
        xpopt.Adam(0.01),
        num_epochs=201,
        validation=(X[:, 200:], Y[:, 200:]),
    )
    assert result.validation_epochs == [0, 100, 200]
    final = xpopt.accuracy(X[:, 200:], Y[:, 200:], result.parameters)
    # the last record is epoch 200, after which nothing changed: the same network
    assert result.validation_accuracies[-1] == pytest.approx(final)
    AL, _ = xpopt.forward_propagation(X[:, 200:], result.parameters)
    cost = float(xpopt.compute_cost(AL, Y[:, 200:])) / 100
    assert result.validation_costs[-1] == pytest.approx(cost, rel=1e-12)


def test_without_validation_the_lists_are_empty():
    X, Y = xpopt.load_moons()
    result = xpopt.train(X, Y, [2, 5, 2, 1], xpopt.Adam(), num_epochs=2)
    assert result.validation_costs == result.validation_accuracies == []


# --------------------------------------------------------- refusals, nothing touched
def _bad_cases():
    X, Y = _blobs(m=12)
    return {
        "class too large": (X, Y + 3, None, ValueError, "in 0..2"),
        "negative class": (X, Y - 1, None, ValueError, "in 0..2"),
        "non-integer": (X, Y + 0.5, None, ValueError, "non-integer"),
        "NaN label": (X, numpy.where(Y == 1, numpy.nan, Y), None, ValueError, "not finite"),
        "one-hot not single": (X, numpy.ones((3, 12)), None, ValueError, "exactly one 1"),
        "wrong rows": (X, numpy.ones((2, 12)), None, ValueError, "shape"),
        "sample count": (X, Y[:, :10], None, ValueError, "examples"),
        "NaN in X": (numpy.where(X > 1, numpy.nan, X), Y, None, ValueError, "X is not finite"),
        "validation labels": (X, Y, (X, Y + 7), ValueError, "validation set"),
        "validation features": (X, Y, (X[:3], Y), ValueError, "features"),
        "validation dtype": (X, Y, (X.astype(numpy.float32), Y), TypeError, "validation"),
        "validation count": (X, Y, (X, Y[:, :5]), ValueError, "validation set"),
        "validation not a pair": (X, Y, X, TypeError, "pair"),
    }


@pytest.mark.parametrize("case", list(_bad_cases()))
def test_bad_data_is_refused_before_any_work(case):
    X, Y, validation, error, match = _bad_cases()[case]
    params = xpopt.initialize_parameters([4, 5, 3])
    before = params.flat.copy()
    opt = xpopt.Adam(0.01)
    with pytest.raises(error, match=match):
        xpopt.train(X, Y, params, opt, output="softmax", num_epochs=2, validation=validation)
    numpy.testing.assert_array_equal(params.flat, before)
    assert opt.learning_rate == 0.01


@pytest.mark.parametrize(
    "labels, match",
    [
        (numpy.arange(12).reshape(1, 12) % 10, r"labels must be in \{0, 1\}"),
        (numpy.full((1, 12), numpy.nan), "not finite"),
        (numpy.full((1, 12), -1.0), r"\{0, 1\}"),
    ],
)
def test_binary_labels_stay_validated_for_the_sigmoid(labels, match):
    X = numpy.random.RandomState(0).randn(2, 12)
    params = xpopt.initialize_parameters([2, 3, 1])
    before = params.flat.copy()
    with pytest.raises(ValueError, match=match):
        xpopt.train(X, labels, params, xpopt.Adam(), num_epochs=1)
    numpy.testing.assert_array_equal(params.flat, before)


# ------------------------------------------------------------------------ the device
@pytest.mark.gpu
def test_softmax_training_on_the_device_reads_nothing_per_step(standin):
    X, Y = _blobs(standin, m=256)
    Xv, Yv = _blobs(standin, m=64, seed=1)
    kw = dict(
        output="softmax", num_epochs=4, mini_batch_size=32, record_every=2, validation=(Xv, Yv)
    )
    with standin.counting() as longer:
        xpopt.train(X, Y, [4, 8, 3], xpopt.Adam(0.01), **dict(kw, num_epochs=12))
    with standin.counting() as counts:
        result = xpopt.train(X, Y, [4, 8, 3], xpopt.Adam(0.01), **kw)
    # the checks (training set, validation set: one boolean each), the recorded costs, the
    # two validation series, and nothing per step or per epoch
    assert counts.d2h == longer.d2h == 5, (counts, longer)
    assert isinstance(result.parameters.flat, standin.ndarray)
    host = xpopt.train(
        *xpopt.to_host((X, Y)),
        [4, 8, 3],
        xpopt.Adam(0.01),
        output="softmax",
        num_epochs=4,
        mini_batch_size=32,
        record_every=2,
        validation=xpopt.to_host((Xv, Yv)),
    )
    numpy.testing.assert_allclose(result.costs, host.costs, rtol=1e-12)
    numpy.testing.assert_allclose(result.validation_costs, host.validation_costs, rtol=1e-12)
    assert result.validation_accuracies == host.validation_accuracies
    p = xpopt.predict(X, result.parameters, output="softmax")
    assert isinstance(p, standin.ndarray) and p.dtype == numpy.int64
