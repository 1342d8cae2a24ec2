"""Issue 11, "nothing silently wrong", for train(): every fault is a clear error raised before
any epoch runs, with nothing changed (the caller's parameters, optimizer and files), or the
right answer. Expected values come from the course's code (tests/course_reference.py) or
from arithmetic done here, never from the code under test."""

from __future__ import annotations

import contextlib
import functools
import io
import os
import sys

import numpy as np
import pytest

import course_reference as course
import xpopt
from xpopt.checkpoint import CheckpointError

LAYERS = [2, 5, 2, 1]
train_module = sys.modules["xpopt.train"]


@functools.cache
def moons():
    X, Y = xpopt.load_moons()
    X.setflags(write=False)
    Y.setflags(write=False)
    return X, Y


@functools.cache
def course_costs(optimizer: str, num_epochs: int, **kw):
    X, Y = moons()
    with contextlib.redirect_stdout(io.StringIO()):
        params, costs = course.model(
            np.array(X), np.array(Y), LAYERS, optimizer, num_epochs=num_epochs, **kw
        )
    return params, [float(c) for c in costs]


class Untouched:
    """Snapshots of what a refused call must leave as it was: parameters (by key and the
    buffer), the optimizer's learning rate and hyperparameters, a folder's listing."""

    def __init__(self, params, opt, folder=None):
        self.params, self.opt, self.folder = params, opt, folder
        self.flat = params.flat.copy()
        self.arrays = {k: np.array(v) for k, v in params.items()}
        self.hyper = opt.hyperparameters()
        self.listing = sorted(os.listdir(folder)) if folder is not None else None

    def check(self):
        assert np.array_equal(self.params.flat, self.flat)
        for k, v in self.arrays.items():
            assert np.array_equal(self.params[k], v)
        assert self.opt.hyperparameters() == self.hyper
        if self.folder is not None:
            assert sorted(os.listdir(self.folder)) == self.listing


def fresh(opt=None):
    return xpopt.initialize_parameters(LAYERS), opt if opt is not None else xpopt.Adam(0.01)


# ------------------------------------------------------------------- bad data (10)
def _bad(kind):
    X, Y = (np.array(a) for a in moons())
    if kind == "labels-2":
        Y[0, 3] = 2.0
    elif kind == "labels-minus1":
        Y[Y == 0] = -1.0
    elif kind == "nan-X":
        X[0, 10] = np.nan
    elif kind == "inf-X":
        X[1, 0] = np.inf
    elif kind == "nan-Y":
        Y[0, 299] = np.nan
    elif kind == "big-endian-X":
        X = X.astype(">f8")
    return X, Y


@pytest.mark.parametrize(
    "kind, error, match",
    [
        ("labels-2", ValueError, r"labels.*\{0, 1\}"),
        ("labels-minus1", ValueError, r"labels.*\{0, 1\}"),
        ("nan-X", ValueError, "X is not finite"),
        ("inf-X", ValueError, "X is not finite"),
        ("nan-Y", ValueError, "Y is not finite"),
        ("big-endian-X", TypeError, "byte order"),
    ],
)
def test_train_refuses_bad_data_before_any_epoch(tmp_path, kind, error, match):
    """Labels outside {0, 1} trained to a negative cross-entropy, NaN/inf to a NaN run: now
    the data is checked first, and nothing changes (parameters, optimizer, no checkpoint)."""
    X, Y = _bad(kind)
    params, opt = fresh()
    keep = Untouched(params, opt, tmp_path)
    with pytest.raises(error, match=match):
        xpopt.train(X, Y, params, opt, num_epochs=3, checkpoint=tmp_path / "run.npz")
    keep.check()


def test_train_checks_the_data_once_per_call(monkeypatch):
    """The dataset check runs once per train() call, not per epoch or step."""
    calls = []
    real = train_module.check_dataset

    def spy(X, Y):
        calls.append(1)
        return real(X, Y)

    monkeypatch.setattr(train_module, "check_dataset", spy)
    X, Y = moons()
    xpopt.train(X, Y, LAYERS, xpopt.Adam(0.01), num_epochs=7)
    assert len(calls) == 1


# -------------------------------------------------------- the caller's optimizer (8)
def test_train_leaves_the_callers_optimizer_as_it_was():
    """A decaying run used to leave the caller's optimizer at the decayed rate, so a second
    train() with the same object started from it. Now both runs are the course's run, the
    optimizer keeps its rate, and the result tells the final rate (the course's update_lr)."""
    X, Y = moons()
    opt = xpopt.GD(0.1)
    first = xpopt.train(X, Y, LAYERS, opt, num_epochs=20, decay=xpopt.update_lr, decay_rate=0.5)
    assert opt.learning_rate == 0.1
    second = xpopt.train(X, Y, LAYERS, opt, num_epochs=20, decay=xpopt.update_lr, decay_rate=0.5)
    assert opt.learning_rate == 0.1
    assert second.learning_rates == first.learning_rates
    assert np.array_equal(second.parameters.flat, first.parameters.flat)
    assert first.learning_rates[0] == 0.1
    assert first.learning_rate == course.update_lr(0.1, 19, 0.5)
    ref_params, _ = course_costs(
        "gd", 20, learning_rate=0.1, decay=course.update_lr, decay_rate=0.5
    )
    for k in ref_params:
        assert np.array_equal(second.parameters[k], ref_params[k])


def test_train_without_decay_reports_the_constant_rate():
    X, Y = moons()
    result = xpopt.train(X, Y, LAYERS, xpopt.Adam(0.003), num_epochs=2)
    assert result.learning_rate == 0.003


def test_a_failing_run_leaves_the_callers_optimizer_as_it_was():
    """A decay that raises at epoch 5: the error propagates, the optimizer keeps its rate."""

    def decay(lr0, epoch, rate):
        if epoch == 5:
            raise RuntimeError("boom")
        return xpopt.update_lr(lr0, epoch, rate)

    X, Y = moons()
    opt = xpopt.Momentum(0.1)
    with pytest.raises(RuntimeError, match="boom"):
        xpopt.train(X, Y, LAYERS, opt, num_epochs=20, decay=decay)
    assert opt.learning_rate == 0.1


# --------------------------------------------------------- up-front checks (12, 13)
@pytest.mark.parametrize("seed, epochs", [(2**32 - 3, 5), (-5, 3), (2**40, 1)])
def test_seed_outside_numpys_range_is_refused_before_any_epoch(tmp_path, seed, epochs):
    """Epoch i shuffles with seed + i + 1, which NumPy accepts in [0, 2**32 - 1]: a seed
    that leaves that range in some epoch used to fail there (after training the earlier
    epochs); now it is refused up front and nothing changes."""
    X, Y = moons()
    params, opt = fresh()
    keep = Untouched(params, opt, tmp_path)
    with pytest.raises(ValueError, match=r"seed .*2\*\*32"):
        xpopt.train(
            X, Y, params, opt, num_epochs=epochs, seed=seed, checkpoint=tmp_path / "run.npz"
        )
    keep.check()


def test_seeds_at_the_edges_of_the_range_train():
    """The extreme seeds that stay in range run (seed -1 shuffles epoch 0 with seed 0)."""
    X, Y = moons()
    xpopt.train(X, Y, LAYERS, xpopt.GD(0.01), num_epochs=2, seed=-1)
    xpopt.train(X, Y, LAYERS, xpopt.GD(0.01), num_epochs=2, seed=2**32 - 3)


@pytest.mark.parametrize("where", ["missing-folder", "a-directory", "parent-is-a-file"])
def test_unusable_checkpoint_path_is_refused_before_any_epoch(tmp_path, where):
    """The Python API had no up-front check of its checkpoint path: a run trained its first
    1000 epochs before failing to save. Now CheckpointError naming the path, nothing changed."""
    if where == "missing-folder":
        path = tmp_path / "no" / "such" / "run.npz"
    elif where == "a-directory":
        path = tmp_path / "adir"
        path.mkdir()
    else:
        (tmp_path / "afile").write_text("x")
        path = tmp_path / "afile" / "run.npz"
    X, Y = moons()
    params, opt = fresh()
    keep = Untouched(params, opt, tmp_path)
    with pytest.raises(CheckpointError, match=str(path.name)):
        xpopt.train(X, Y, params, opt, num_epochs=3, checkpoint=path)
    keep.check()


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders"
)
def test_read_only_checkpoint_folder_is_refused_before_any_epoch(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        X, Y = moons()
        params, opt = fresh()
        keep = Untouched(params, opt, folder)
        with pytest.raises(CheckpointError, match="run.npz"):
            xpopt.train(X, Y, params, opt, num_epochs=3, checkpoint=folder / "run.npz")
        keep.check()
    finally:
        folder.chmod(0o700)


def test_numpy_integers_are_accepted_like_ints():
    """num_epochs=numpy.int64(5) was refused while mini_batch_size accepted it: every count
    accepts numbers.Integral, with the same result as Python ints."""
    X, Y = moons()
    want = xpopt.train(
        X,
        Y,
        LAYERS,
        xpopt.Adam(0.01),
        num_epochs=5,
        mini_batch_size=64,
        record_every=2,
        print_every=3,
        stop_after=4,
        seed=10,
    )
    got = xpopt.train(
        X,
        Y,
        LAYERS,
        xpopt.Adam(0.01),
        num_epochs=np.int64(5),
        mini_batch_size=np.int32(64),
        record_every=np.int64(2),
        print_every=np.uint8(3),
        stop_after=np.int16(4),
        seed=np.int64(10),
    )
    assert np.array_equal(got.parameters.flat, want.parameters.flat)
    assert got.costs == want.costs and got.epochs == 4 and type(got.epochs) is int


@pytest.mark.parametrize(
    "name",
    [
        "num_epochs",
        "record_every",
        "print_every",
        "checkpoint_every",
        "stop_after",
        "seed",
        "mini_batch_size",
    ],
)
@pytest.mark.parametrize("value", [True, 2.0, "3"])
def test_bools_floats_and_strings_are_not_counts(name, value):
    X, Y = moons()
    params, opt = fresh()
    keep = Untouched(params, opt)
    kwargs = {"num_epochs": 3, name: value}
    with pytest.raises((TypeError, ValueError), match=name):
        xpopt.train(X, Y, params, opt, **kwargs)
    keep.check()


# ------------------------------------------------------------- test gap (a): costs
@pytest.mark.parametrize("stop", [100, 101, 200, 1])
def test_costs_of_a_stopped_run_are_the_course_costs_of_its_epochs(stop):
    """A run stopped after `stop` epochs records exactly what the course's model() records
    in `stop` epochs (every 100th epoch), no zero record past a record_every boundary."""
    _, want = course_costs("adam", stop)
    X, Y = moons()
    result = xpopt.train(X, Y, LAYERS, xpopt.Adam(0.0007), num_epochs=300, stop_after=stop)
    assert result.costs == want
    assert len(result.costs) == (stop + 99) // 100
