"""The training loop: xpopt.model / xpopt.train against the course's model()."""

from __future__ import annotations

import contextlib
import functools
import io
import math

import numpy as np
import pytest

import course_reference as course
import xpopt
from conftest import assert_close
from xpopt.flat import FlatDict

LAYERS = [2, 5, 2, 1]
M = 300
# the course's decay functions for xpopt's (each side uses its own)
COURSE_DECAY = {
    None: None,
    xpopt.update_lr: course.update_lr,
    xpopt.schedule_lr_decay: course.schedule_lr_decay,
}


@functools.cache
def moons(dtype=np.float64):
    X, Y = xpopt.load_moons(dtype=dtype)
    X.setflags(write=False)
    Y.setflags(write=False)
    return X, Y


@functools.cache
def run_course(optimizer: str, **kw):
    """The course's model() on the moons (float labels, taken as they are): (parameters,
    recorded costs, printed text). Cached: several tests compare against the same run."""
    X, Y = moons()
    kw = dict(kw)
    kw["decay"] = COURSE_DECAY[kw.get("decay")]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        params, costs = course.model(np.array(X), np.array(Y), LAYERS, optimizer, **kw)
    return params, [float(c) for c in costs], out.getvalue()


def honest(costs: list, params: dict) -> None:
    """The reference run itself trained: finite parameters and, when more than one cost was
    recorded, a final cost below the first (no divergence being compared with divergence)."""
    assert all(np.isfinite(p).all() for p in params.values())
    assert all(math.isfinite(c) for c in costs)
    if len(costs) > 1:
        assert costs[-1] < costs[0]


MODEL_CASES = [
    # id, optimizer, keyword arguments of model()
    ("gd", "gd", dict(num_epochs=1001)),
    ("momentum", "momentum", dict(num_epochs=1001)),
    ("adam", "adam", dict(num_epochs=1001)),
    ("rmsprop", "rmsprop", dict(num_epochs=1001)),
    (
        "adam-odd-hyper",
        "adam",
        dict(num_epochs=300, learning_rate=0.002, beta1=0.8, beta2=0.99, epsilon=1e-6),
    ),
    ("momentum-beta0.5", "momentum", dict(num_epochs=300, learning_rate=0.01, beta=0.5)),
    # decay, as in the notebook: lr0 = 0.1 for gd and momentum, 0.01 for adam and rmsprop
    # (rmsprop with 0.1 diverges: its epoch-0 cost is inf)
    ("gd-update_lr", "gd", dict(num_epochs=1001, learning_rate=0.1, decay=xpopt.update_lr)),
    ("gd-schedule", "gd", dict(num_epochs=1001, learning_rate=0.1, decay=xpopt.schedule_lr_decay)),
    (
        "momentum-schedule",
        "momentum",
        dict(num_epochs=1001, learning_rate=0.1, decay=xpopt.schedule_lr_decay),
    ),
    (
        "adam-schedule-0.3",
        "adam",
        dict(num_epochs=1001, learning_rate=0.01, decay=xpopt.schedule_lr_decay, decay_rate=0.3),
    ),
    (
        "rmsprop-schedule",
        "rmsprop",
        dict(num_epochs=1001, learning_rate=0.01, decay=xpopt.schedule_lr_decay),
    ),
    (
        "adam-update_lr",
        "adam",
        dict(num_epochs=300, learning_rate=0.01, decay=xpopt.update_lr, decay_rate=0.01),
    ),
    # batch gradient descent: one batch of m = 300 per epoch
    ("batch-gd", "gd", dict(num_epochs=1001, mini_batch_size=M, learning_rate=0.05)),
    ("batch-adam", "adam", dict(num_epochs=1001, mini_batch_size=M, learning_rate=0.01)),
    # stochastic gradient descent: 300 batches of one example per epoch
    ("sgd", "gd", dict(num_epochs=3, mini_batch_size=1, learning_rate=0.01)),
    ("sgd-adam", "adam", dict(num_epochs=3, mini_batch_size=1, learning_rate=0.001)),
    ("mbs-128", "momentum", dict(num_epochs=300, mini_batch_size=128, learning_rate=0.01)),
]


@pytest.mark.parametrize(
    "optimizer,kw", [c[1:] for c in MODEL_CASES], ids=[c[0] for c in MODEL_CASES]
)
def test_model_equals_course_bit_for_bit(optimizer, kw, capsys):
    """xpopt.model returns the course's parameters bit for bit (float64, NumPy) and prints
    exactly the course's lines (costs every 1000 epochs, and the learning rate when decaying)."""
    ref_params, ref_costs, ref_printed = run_course(optimizer, **kw)
    honest(ref_costs, ref_params)
    X, Y = moons()
    capsys.readouterr()
    params = xpopt.model(X, Y, LAYERS, optimizer, **kw)
    printed = capsys.readouterr().out
    assert printed == ref_printed
    assert isinstance(params, FlatDict) and isinstance(params.flat, np.ndarray)
    assert list(params) == list(ref_params)
    for k in ref_params:
        assert params[k].dtype == np.float64
        assert np.array_equal(params[k], ref_params[k]), f"{k} differs from the course's"


def test_model_prints_epoch_1000_lines():
    """Guard on the cases above: the 1001-epoch runs print epoch 0 and epoch 1000 lines (and
    the decayed learning rate), so the printed comparison covers more than the first line."""
    _, _, printed = run_course("gd", num_epochs=1001, learning_rate=0.1, decay=xpopt.update_lr)
    lines = printed.splitlines()
    assert lines[0].startswith("Cost after epoch 0: ")
    assert lines[2].startswith("Cost after epoch 1000: ")
    assert lines[3] == "learning rate after epoch 1000: 0.000100"  # 0.1 / (1 + 1000)


def test_full_5000_epoch_adam_run(capsys):
    """The notebook's Adam experiment, all 5000 epochs (defaults: lr 0.0007, mini-batches of
    64): the same five printed lines and the same final parameters, bit for bit."""
    ref_params, ref_costs, ref_printed = run_course("adam")
    honest(ref_costs, ref_params)
    assert len(ref_printed.splitlines()) == 5
    X, Y = moons()
    capsys.readouterr()
    params = xpopt.model(X, Y, LAYERS, "adam")
    assert capsys.readouterr().out == ref_printed
    for k in ref_params:
        assert np.array_equal(params[k], ref_params[k]), f"{k} differs from the course's"


TRAIN_CASES = [
    ("adam", "adam", dict(num_epochs=1001)),
    ("gd-update_lr", "gd", dict(num_epochs=1001, learning_rate=0.1, decay=xpopt.update_lr)),
    (
        "adam-schedule-0.3",
        "adam",
        dict(num_epochs=1001, learning_rate=0.01, decay=xpopt.schedule_lr_decay, decay_rate=0.3),
    ),
    ("sgd-adam", "adam", dict(num_epochs=3, mini_batch_size=1, learning_rate=0.001)),
]


@pytest.mark.parametrize(
    "optimizer,kw", [c[1:] for c in TRAIN_CASES], ids=[c[0] for c in TRAIN_CASES]
)
def test_train_result_equals_course(optimizer, kw):
    """xpopt.train records the course's costs (every 100 epochs), the learning rate in force
    during each epoch (lr0, then decay(lr0, i - 1, rate) as the course updates it after epoch
    i - 1), a positive wall time, the epoch count, and Adam's t = epochs * batches per epoch."""
    ref_params, ref_costs, _ = run_course(optimizer, **kw)
    X, Y = moons()
    kw = dict(kw)
    lr0 = kw.pop("learning_rate", 0.0007)
    num_epochs = kw.pop("num_epochs")
    mbs = kw.pop("mini_batch_size", 64)
    decay, rate = kw.pop("decay", None), kw.pop("decay_rate", 1)
    assert not kw
    opt = xpopt.make_optimizer(optimizer, lr0)
    result = xpopt.train(
        X, Y, LAYERS, opt, mini_batch_size=mbs, num_epochs=num_epochs, decay=decay, decay_rate=rate
    )
    assert result.costs == ref_costs
    assert all(type(c) is float for c in result.costs)
    assert result.record_epochs == list(range(0, num_epochs, 100))
    expected_lrs = [lr0] + (
        [COURSE_DECAY[decay](lr0, i, rate) for i in range(num_epochs - 1)]
        if decay
        else [lr0] * (num_epochs - 1)
    )
    assert result.learning_rates == expected_lrs
    assert result.wall_time > 0
    assert result.epochs == num_epochs
    batches = math.ceil(M / mbs)
    assert result.state.t == num_epochs * batches
    for k in ref_params:
        assert np.array_equal(result.parameters[k], ref_params[k])


def test_train_accepts_initial_parameters_and_updates_them_in_place():
    """Given a packed FlatDict of initial parameters, train updates that very dict and gives
    the same result as when given the layer sizes."""
    X, Y = moons()
    ref_params, _, _ = run_course("adam", num_epochs=300)
    params = xpopt.initialize_parameters(LAYERS)
    result = xpopt.train(X, Y, params, xpopt.Adam(0.0007), num_epochs=300)
    assert result.parameters is params
    for k in ref_params:
        assert np.array_equal(params[k], ref_params[k])


@pytest.mark.parametrize("optimizer", ["gd", "momentum", "rmsprop", "adam"])
def test_float32_training_stays_float32(optimizer):
    """With float32 data, parameters, gradients' state and recorded costs stay float32 (costs
    as floats of float32 values) and follow the float64 course run closely."""
    X, Y = moons(np.float32)
    assert X.dtype == Y.dtype == np.float32
    ref_params, ref_costs, _ = run_course(optimizer, num_epochs=300)
    result = xpopt.train(X, Y, LAYERS, xpopt.make_optimizer(optimizer, 0.0007), num_epochs=300)
    assert result.parameters.flat.dtype == np.float32
    for slot in ("v", "s"):
        d = getattr(result.state, slot)
        if d is not None:
            assert all(a.dtype == np.float32 for a in d.values())
    assert all(float(np.float32(c)) == c for c in result.costs)
    np.testing.assert_allclose(result.costs, ref_costs, rtol=1e-5)
    for k in ref_params:
        assert result.parameters[k].dtype == np.float32
        np.testing.assert_allclose(result.parameters[k], ref_params[k], rtol=0, atol=1e-4)


def test_dtype_mismatch_between_data_and_parameters():
    """float32 data with float64 initial parameters: TypeError naming both, parameters untouched."""
    X, Y = moons(np.float32)
    params = xpopt.initialize_parameters(LAYERS)
    before = params.flat.copy()
    with pytest.raises(TypeError, match="float32.*float64"):
        xpopt.train(X, Y, params, xpopt.Adam(), num_epochs=2)
    assert np.array_equal(params.flat, before)


def test_bad_arguments():
    """An unknown optimizer name or a non-Optimizer object, and a bad epoch count, are refused."""
    X, Y = moons()
    with pytest.raises(ValueError, match="optimizer"):
        xpopt.model(X, Y, LAYERS, "sgd", num_epochs=1, print_cost=False)
    with pytest.raises(TypeError, match="Optimizer"):
        xpopt.train(X, Y, LAYERS, "adam", num_epochs=1)
    with pytest.raises(ValueError, match="num_epochs"):
        xpopt.train(X, Y, LAYERS, xpopt.Adam(), num_epochs=-1)


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_train_on_xp_equals_numpy(xp, optimizer):
    """Training on CuPy arrays gives the NumPy (course) results: same printed-cost history
    and parameters within a few ulps of accumulated matmul reordering (exact on NumPy);
    the parameters stay on the data's device."""
    ref_params, ref_costs, _ = run_course(optimizer, num_epochs=300)
    X, Y = moons()
    result = xpopt.train(
        xp.asarray(X),
        xp.asarray(Y),
        LAYERS,
        xpopt.make_optimizer(optimizer, 0.0007),
        num_epochs=300,
    )
    assert type(result.parameters.flat) is type(xp.asarray(X))
    exact = xp is np
    tol = {} if exact else {"rtol": 1e-8, "atol": 1e-10}
    assert_close(np.array(result.costs), np.array(ref_costs), exact=exact, **tol)
    for k in ref_params:
        assert_close(result.parameters[k], ref_params[k], exact=exact, **tol)
