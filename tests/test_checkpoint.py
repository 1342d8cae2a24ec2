"""Checkpoints: exact resumption, refusal of bad or foreign files, atomic saves."""

from __future__ import annotations

import functools
import json
import os

import numpy as np
import pytest

import course_reference as course
import xpopt
from xpopt import checkpoint as ckpt
from xpopt.checkpoint import CheckpointError

LAYERS = [2, 5, 2, 1]
EPOCHS = 300


@functools.lru_cache(maxsize=None)
def moons():
    X, Y = xpopt.load_moons()
    X.setflags(write=False)
    Y.setflags(write=False)
    return X, Y


OPTIMIZERS = {
    "adam": lambda: xpopt.Adam(0.0007),
    "momentum": lambda: xpopt.Momentum(0.0007, 0.9),
    "rmsprop": lambda: xpopt.RMSprop(0.0007),
    "gd": lambda: xpopt.GD(0.0007),
    "adam-decay": lambda: xpopt.Adam(0.01),
    "gd-decay": lambda: xpopt.GD(0.1),
}
DECAY = {"adam-decay": dict(decay=xpopt.schedule_lr_decay, decay_rate=1),
         "gd-decay": dict(decay=xpopt.update_lr, decay_rate=0.05)}


def train(kind: str, **kw):
    X, Y = moons()
    return xpopt.train(X, Y, LAYERS, OPTIMIZERS[kind](), num_epochs=EPOCHS,
                       **DECAY.get(kind, {}), **kw)


@functools.lru_cache(maxsize=None)
def uninterrupted(kind: str):
    return train(kind)


def assert_same_run(got, want) -> None:
    assert got.epochs == want.epochs
    assert np.array_equal(got.parameters.flat, want.parameters.flat)
    assert got.costs == want.costs
    assert got.learning_rates == want.learning_rates
    assert got.state.t == want.state.t
    for slot in ("v", "s"):
        a, b = getattr(got.state, slot), getattr(want.state, slot)
        assert (a is None) == (b is None)
        if a is not None:
            assert np.array_equal(a.flat, b.flat), f"state {slot} differs"


def good_checkpoint(tmp_path, kind="adam", epochs=50):
    path = tmp_path / "run.npz"
    X, Y = moons()
    xpopt.train(X, Y, LAYERS, OPTIMIZERS[kind](), num_epochs=epochs, checkpoint=path,
                checkpoint_every=epochs)
    return path


# ---------------------------------------------------------------------------- resume
@pytest.mark.parametrize("kind", list(OPTIMIZERS))
def test_resume_equals_uninterrupted_run(kind, tmp_path):
    """Stopping after 120 epochs (checkpoints at 50, 100 and the stop) and resuming gives
    exactly the uninterrupted run: parameters, costs, learning rates (decay included),
    optimizer state and Adam's t; the uninterrupted run itself equals the course's model."""
    path = tmp_path / "run.npz"
    first = train(kind, checkpoint=path, checkpoint_every=50, stop_after=120)
    assert first.epochs == 120 and path.exists()
    assert ckpt.load(path).epoch == 120
    resumed = train(kind, checkpoint=path, checkpoint_every=50, resume=True)
    whole = uninterrupted(kind)
    assert_same_run(resumed, whole)
    assert ckpt.load(path).epoch == EPOCHS
    if kind in ("adam", "momentum"):  # anchor the uninterrupted run to the course's code
        ref_params, ref_costs = _course_model(kind)
        assert whole.costs == ref_costs
        for k in ref_params:
            assert np.array_equal(whole.parameters[k], ref_params[k])


@functools.lru_cache(maxsize=None)
def _course_model(kind):
    import contextlib
    import io

    X, Y = moons()
    with contextlib.redirect_stdout(io.StringIO()):
        params, costs = course.model(np.array(X), np.array(Y), LAYERS, kind, num_epochs=EPOCHS)
    return params, [float(c) for c in costs]


def test_resume_after_crash_between_checkpoints(tmp_path):
    """A run that dies at epoch 129 (last checkpoint at 100, decaying learning rate) and is
    resumed redoes epochs 100..129 and ends exactly as the uninterrupted run."""
    path = tmp_path / "run.npz"
    calls = []

    def crashing(lr0, epoch, rate):
        calls.append(epoch)
        if epoch == 129 and len(calls) == 130:
            raise KeyboardInterrupt("simulated crash")
        return xpopt.schedule_lr_decay(lr0, epoch, rate)

    X, Y = moons()
    with pytest.raises(KeyboardInterrupt):
        xpopt.train(X, Y, LAYERS, xpopt.Adam(0.01), num_epochs=EPOCHS, decay=crashing,
                    checkpoint=path, checkpoint_every=50)
    saved = ckpt.load(path)
    assert saved.epoch == 100 and len(saved.learning_rates) == 100
    resumed = xpopt.train(X, Y, LAYERS, xpopt.Adam(0.01), num_epochs=EPOCHS, decay=crashing,
                          checkpoint=path, checkpoint_every=50, resume=True)
    assert calls[130] == 100, "the resumed run must restart at epoch 100"
    assert_same_run(resumed, uninterrupted("adam-decay"))


def test_resume_without_file_starts_fresh(tmp_path):
    """resume=True with no checkpoint yet trains from the start (and writes one)."""
    path = tmp_path / "new.npz"
    result = train("adam", checkpoint=path, resume=True)
    assert_same_run(result, uninterrupted("adam"))
    assert ckpt.load(path).epoch == EPOCHS


def test_resume_finished_run_changes_nothing(tmp_path):
    """Resuming a checkpoint of a finished run returns its parameters without training."""
    path = tmp_path / "run.npz"
    train("momentum", checkpoint=path, checkpoint_every=100)
    before = path.read_bytes()
    again = train("momentum", checkpoint=path, resume=True)
    assert np.array_equal(again.parameters.flat, uninterrupted("momentum").parameters.flat)
    assert again.costs == uninterrupted("momentum").costs
    assert path.read_bytes() == before


def test_resume_extends_a_finished_run(tmp_path):
    """A finished 300-epoch checkpoint resumed with num_epochs=400 equals an uninterrupted
    400-epoch run (training continued, not restarted)."""
    path = tmp_path / "run.npz"
    X, Y = moons()
    train("adam", checkpoint=path)
    longer = xpopt.train(X, Y, LAYERS, xpopt.Adam(0.0007), num_epochs=400, checkpoint=path,
                         resume=True)
    assert_same_run(longer, xpopt.train(X, Y, LAYERS, xpopt.Adam(0.0007), num_epochs=400))


def test_resume_beyond_num_epochs_refused(tmp_path):
    """A checkpoint that has done more epochs than this run's num_epochs is refused
    (returning its later parameters as a shorter run's would be wrong)."""
    path = tmp_path / "run.npz"
    train("adam", checkpoint=path)
    X, Y = moons()
    with pytest.raises(CheckpointError, match="300"):
        xpopt.train(X, Y, LAYERS, xpopt.Adam(0.0007), num_epochs=100, checkpoint=path,
                    resume=True)


@pytest.mark.parametrize("kind", ["adam", "adam-decay"])
def test_resume_with_another_learning_rate_refused(tmp_path, kind):
    """Resuming with another initial learning rate than the checkpoint's run is a mismatch:
    CheckpointError naming the learning rate (not a run that silently keeps the saved rate,
    or mixes two schedules)."""
    path = tmp_path / "run.npz"
    train(kind, checkpoint=path, stop_after=100)
    before = path.read_bytes()
    X, Y = moons()
    other = OPTIMIZERS[kind]()
    other.learning_rate = other.learning_rate * 2
    with pytest.raises(CheckpointError, match="learning.rate"):
        xpopt.train(X, Y, LAYERS, other, num_epochs=EPOCHS, checkpoint=path, resume=True,
                    **DECAY.get(kind, {}))
    assert path.read_bytes() == before


@pytest.mark.parametrize("resume_with", [
    {},  # no decay at all
    {"decay": xpopt.schedule_lr_decay, "decay_rate": 0.3},  # another schedule
    {"decay": xpopt.update_lr, "decay_rate": 0.7},  # the same schedule, another rate
])
def test_resume_with_another_schedule_refused(tmp_path, resume_with):
    """A run with update_lr (decay_rate 0.3) cannot be resumed under another schedule or
    rate: CheckpointError naming the schedule, and the file is left as it was."""
    path = tmp_path / "run.npz"
    X, Y = moons()
    opt = OPTIMIZERS["adam"]()
    xpopt.train(X, Y, LAYERS, opt, num_epochs=EPOCHS, checkpoint=path, stop_after=100,
                decay=xpopt.update_lr, decay_rate=0.3)
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match="schedule"):
        xpopt.train(X, Y, LAYERS, OPTIMIZERS["adam"](), num_epochs=EPOCHS, checkpoint=path,
                    resume=True, **resume_with)
    assert path.read_bytes() == before


def test_saved_content(tmp_path):
    """A checkpoint holds the run's epoch, t, seed, costs and arrays (checked against the run)."""
    path = tmp_path / "run.npz"
    result = train("adam", checkpoint=path, checkpoint_every=1000)
    saved = ckpt.load(path)
    assert saved.epoch == EPOCHS and saved.t == result.state.t == EPOCHS * 5
    assert saved.meta["seed"] == 10 and saved.meta["mini_batch_size"] == 64
    assert saved.costs == result.costs
    assert np.array_equal(saved.parameters, result.parameters.flat)
    assert np.array_equal(saved.slots["v"], result.state.v.flat)
    assert np.array_equal(saved.slots["s"], result.state.s.flat)


# ------------------------------------------------------------------------ bad files
def test_truncated_file(tmp_path):
    """The first half of a valid checkpoint: CheckpointError saying it is unreadable, from
    load() and from a resuming train()."""
    good = good_checkpoint(tmp_path)
    data = good.read_bytes()
    bad = tmp_path / "half.npz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"half\.npz.*(truncated|corrupt)"):
        ckpt.load(bad)
    with pytest.raises(CheckpointError, match="truncated|corrupt"):
        train("adam", checkpoint=bad, resume=True)


@pytest.mark.parametrize("content", [b"", b"not a zip file at all", b"PK\x03\x04" + b"\0" * 40])
def test_garbage_file(tmp_path, content):
    """Empty or garbage bytes: CheckpointError, not a raw zipfile/pickle error."""
    bad = tmp_path / "bad.npz"
    bad.write_bytes(content)
    with pytest.raises(CheckpointError):
        ckpt.load(bad)


def test_foreign_npz(tmp_path):
    """An .npz of other arrays: CheckpointError saying it is not an xpopt checkpoint."""
    path = tmp_path / "other.npz"
    np.savez(path, weights=np.arange(5.0), bias=np.zeros(2))
    with pytest.raises(CheckpointError, match="not an xpopt checkpoint"):
        ckpt.load(path)


def _rewrite(src, dst, meta_changes=None, arrays=None):
    """A copy of checkpoint ``src`` at ``dst`` with some meta fields or arrays replaced."""
    with np.load(src, allow_pickle=False) as data:
        content = {k: data[k] for k in data.files}
    meta = json.loads(str(content["meta"][()]))
    meta.update(meta_changes or {})
    content["meta"] = np.array(json.dumps(meta))
    content.update(arrays or {})
    np.savez(dst, **content)
    return dst


def test_foreign_format_and_bad_arrays(tmp_path):
    """Right array names but another format tag, or arrays of the wrong size or dtype:
    CheckpointError naming the problem."""
    good = good_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="format"):
        ckpt.load(_rewrite(good, tmp_path / "fmt.npz", {"format": "other/1"}))
    n = ckpt.load(good).parameters.size
    with pytest.raises(CheckpointError, match="'parameters'.*shape"):
        ckpt.load(_rewrite(good, tmp_path / "short.npz", arrays={"parameters": np.zeros(n - 1)}))
    with pytest.raises(CheckpointError, match="'v'.*float32"):
        ckpt.load(_rewrite(good, tmp_path / "f32.npz", arrays={"v": np.zeros(n, np.float32)}))
    path = tmp_path / "notjson.npz"
    np.savez(path, meta=np.array("{not json"), parameters=np.zeros(n))
    with pytest.raises(CheckpointError):
        ckpt.load(path)


@pytest.mark.parametrize("drop", ["layout", "dtype", "optimizer", "seed", "t", "learning_rates"])
def test_incomplete_metadata(tmp_path, drop):
    """A file with the right format tag but a metadata field missing is a corrupt checkpoint:
    CheckpointError naming the field, from load() or at the latest when resuming (not a raw
    KeyError from inside xpopt)."""
    good = good_checkpoint(tmp_path)
    with np.load(good, allow_pickle=False) as data:
        content = {k: data[k] for k in data.files}
    meta = json.loads(str(content["meta"][()]))
    del meta[drop]
    content["meta"] = np.array(json.dumps(meta))
    path = tmp_path / "partial.npz"
    np.savez(path, **content)
    with pytest.raises(CheckpointError, match=drop):
        train("adam", checkpoint=path, resume=True)


def test_missing_state_array(tmp_path):
    """An Adam checkpoint without its second-moment array 's' is refused, naming 's'."""
    good = good_checkpoint(tmp_path)
    with np.load(good, allow_pickle=False) as data:
        content = {k: data[k] for k in data.files if k != "s"}
    path = tmp_path / "no_s.npz"
    np.savez(path, **content)
    with pytest.raises(CheckpointError, match="'s'"):
        train("adam", checkpoint=path, resume=True)


class _Payload:
    """Unpickling this records that it happened (it must never be)."""

    unpickled = []

    def __reduce__(self):
        return (_record_unpickle, ("ran",))


def _record_unpickle(tag):
    _Payload.unpickled.append(tag)
    return tag


def test_object_arrays_are_never_unpickled(tmp_path):
    """An .npz whose meta is an object array is refused with CheckpointError and the object
    is not unpickled (the file is read with allow_pickle=False)."""
    path = tmp_path / "evil.npz"
    meta = np.empty((), dtype=object)
    meta[()] = _Payload()
    np.savez(path, meta=meta, parameters=np.zeros(3))
    _Payload.unpickled.clear()
    with pytest.raises(CheckpointError):
        ckpt.load(path)
    with pytest.raises(CheckpointError):
        train("adam", checkpoint=path, resume=True)
    assert _Payload.unpickled == []
    with np.load(path, allow_pickle=True) as data:   # control: the payload is live
        data["meta"]
    assert _Payload.unpickled == ["ran"]


MISMATCHES = [
    # id, train() arguments that differ from the checkpoint's run, message regex
    ("optimizer", dict(optimizer=lambda: xpopt.Momentum(0.0007)), r"optimizer Adam != Momentum"),
    ("hyperparameters", dict(optimizer=lambda: xpopt.Adam(0.0007, beta1=0.8)), r"hyperparameters.*beta1"),
    ("layout", dict(layers=[2, 4, 2, 1]), r"layout"),
    ("seed", dict(seed=11), r"seed 10 != 11"),
    ("mini_batch_size", dict(mini_batch_size=32), r"mini_batch_size 64 != 32"),
    ("dtype", dict(dtype=np.float32), r"dtype float64 != float32"),
]


@pytest.mark.parametrize("kw,pattern", [m[1:] for m in MISMATCHES], ids=[m[0] for m in MISMATCHES])
def test_checkpoint_of_another_run_is_refused(tmp_path, kw, pattern):
    """Resuming from a checkpoint of another optimizer, hyperparameters, network layout,
    seed, mini-batch size or dtype: CheckpointError naming the mismatch; the file is kept."""
    path = good_checkpoint(tmp_path)
    before = path.read_bytes()
    X, Y = moons() if "dtype" not in kw else xpopt.load_moons(dtype=kw["dtype"])
    opt = kw.get("optimizer", lambda: xpopt.Adam(0.0007))()
    with pytest.raises(CheckpointError, match=pattern):
        xpopt.train(X, Y, kw.get("layers", LAYERS), opt, num_epochs=100, checkpoint=path,
                    resume=True, seed=kw.get("seed", 10),
                    mini_batch_size=kw.get("mini_batch_size", 64))
    assert path.read_bytes() == before


# --------------------------------------------------------------------- atomic saves
@pytest.mark.parametrize("error", [OSError("No space left on device"), KeyboardInterrupt()],
                         ids=["disk-full", "interrupted"])
def test_failed_save_keeps_last_good_checkpoint(tmp_path, monkeypatch, error):
    """A save that dies half-way (savez writes some bytes, then raises) leaves the previous
    checkpoint byte for byte and no temporary file in the folder; the error propagates."""
    path = good_checkpoint(tmp_path)
    before = path.read_bytes()
    listing = sorted(os.listdir(tmp_path))
    real_savez = np.savez
    calls = []

    def broken_savez(file, *args, **kwds):
        calls.append(file)
        file.write(b"PK\x03\x04 partial bytes")
        raise error

    monkeypatch.setattr(ckpt.numpy, "savez", broken_savez)
    with pytest.raises(type(error)):
        train("adam", checkpoint=path, resume=True, checkpoint_every=10)
    monkeypatch.setattr(ckpt.numpy, "savez", real_savez)
    assert calls, "the save was not attempted"
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == listing
    assert ckpt.load(path).epoch == 50
    # and the kept checkpoint still resumes to the uninterrupted run
    assert_same_run(train("adam", checkpoint=path, resume=True), uninterrupted("adam"))
