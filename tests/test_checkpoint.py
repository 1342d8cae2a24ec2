"""Checkpoints: exact resumption, refusal of bad or foreign files, atomic saves."""

from __future__ import annotations

import functools
import json
import os
import stat
import time

import numpy as np
import pytest

import course_reference as course
import xpopt
from xpopt import checkpoint as ckpt
from xpopt.checkpoint import CheckpointError

LAYERS = [2, 5, 2, 1]
EPOCHS = 300


@functools.cache
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
DECAY = {
    "adam-decay": dict(decay=xpopt.schedule_lr_decay, decay_rate=1),
    "gd-decay": dict(decay=xpopt.update_lr, decay_rate=0.05),
}


def train(kind: str, **kw):
    X, Y = moons()
    return xpopt.train(
        X, Y, LAYERS, OPTIMIZERS[kind](), num_epochs=EPOCHS, **DECAY.get(kind, {}), **kw
    )


@functools.cache
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
    xpopt.train(
        X,
        Y,
        LAYERS,
        OPTIMIZERS[kind](),
        num_epochs=epochs,
        checkpoint=path,
        checkpoint_every=epochs,
    )
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


@functools.cache
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
        xpopt.train(
            X,
            Y,
            LAYERS,
            xpopt.Adam(0.01),
            num_epochs=EPOCHS,
            decay=crashing,
            checkpoint=path,
            checkpoint_every=50,
        )
    saved = ckpt.load(path)
    assert saved.epoch == 100 and len(saved.learning_rates) == 100
    resumed = xpopt.train(
        X,
        Y,
        LAYERS,
        xpopt.Adam(0.01),
        num_epochs=EPOCHS,
        decay=crashing,
        checkpoint=path,
        checkpoint_every=50,
        resume=True,
    )
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
    longer = xpopt.train(
        X, Y, LAYERS, xpopt.Adam(0.0007), num_epochs=400, checkpoint=path, resume=True
    )
    assert_same_run(longer, xpopt.train(X, Y, LAYERS, xpopt.Adam(0.0007), num_epochs=400))


def test_resume_beyond_num_epochs_refused(tmp_path):
    """A checkpoint that has done more epochs than this run's num_epochs is refused
    (returning its later parameters as a shorter run's would be wrong)."""
    path = tmp_path / "run.npz"
    train("adam", checkpoint=path)
    X, Y = moons()
    with pytest.raises(CheckpointError, match="300"):
        xpopt.train(X, Y, LAYERS, xpopt.Adam(0.0007), num_epochs=100, checkpoint=path, resume=True)


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
        xpopt.train(
            X,
            Y,
            LAYERS,
            other,
            num_epochs=EPOCHS,
            checkpoint=path,
            resume=True,
            **DECAY.get(kind, {}),
        )
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    "resume_with",
    [
        {},  # no decay at all
        {"decay": xpopt.schedule_lr_decay, "decay_rate": 0.3},  # another schedule
        {"decay": xpopt.update_lr, "decay_rate": 0.7},  # the same schedule, another rate
    ],
)
def test_resume_with_another_schedule_refused(tmp_path, resume_with):
    """A run with update_lr (decay_rate 0.3) cannot be resumed under another schedule or
    rate: CheckpointError naming the schedule, and the file is left as it was."""
    path = tmp_path / "run.npz"
    X, Y = moons()
    opt = OPTIMIZERS["adam"]()
    xpopt.train(
        X,
        Y,
        LAYERS,
        opt,
        num_epochs=EPOCHS,
        checkpoint=path,
        stop_after=100,
        decay=xpopt.update_lr,
        decay_rate=0.3,
    )
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match="schedule"):
        xpopt.train(
            X,
            Y,
            LAYERS,
            OPTIMIZERS["adam"](),
            num_epochs=EPOCHS,
            checkpoint=path,
            resume=True,
            **resume_with,
        )
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
    with np.load(path, allow_pickle=True) as data:  # control: the payload is live
        data["meta"]
    assert _Payload.unpickled == ["ran"]


MISMATCHES = [
    # id, train() arguments that differ from the checkpoint's run, message regex
    ("optimizer", dict(optimizer=lambda: xpopt.Momentum(0.0007)), r"optimizer Adam != Momentum"),
    (
        "hyperparameters",
        dict(optimizer=lambda: xpopt.Adam(0.0007, beta1=0.8)),
        r"hyperparameters.*beta1",
    ),
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
        xpopt.train(
            X,
            Y,
            kw.get("layers", LAYERS),
            opt,
            num_epochs=100,
            checkpoint=path,
            resume=True,
            seed=kw.get("seed", 10),
            mini_batch_size=kw.get("mini_batch_size", 64),
        )
    assert path.read_bytes() == before


# --------------------------------------------------------------------- atomic saves
@pytest.mark.parametrize(
    "error",
    [OSError("No space left on device"), KeyboardInterrupt()],
    ids=["disk-full", "interrupted"],
)
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


# ============================================================ issue 11: by key (item 4)
STEP_OPTIMIZERS = {
    "gd": lambda lr: xpopt.GD(lr),
    "momentum": lambda lr: xpopt.Momentum(lr, 0.9),
    "rmsprop": lambda lr: xpopt.RMSprop(lr),
    "adam": lambda lr: xpopt.Adam(lr),
}


def _styled(style: str):
    """The course's initial parameters as a packed FlatDict, a FlatDict whose keys were
    rebound the course's way, or a plain dict in another key order than the layout."""
    p = xpopt.initialize_parameters(LAYERS)
    if style == "packed":
        return p
    if style == "rebound":
        for k in list(p):
            p[k] = p[k] - 0
        assert not p.packed
        return p
    return {k: np.array(p[k]) for k in reversed(list(p))}  # b3, W3, ..., W1


def _styled_state(opt, params, style: str):
    """The optimizer's state: its own (init), or plain dicts in a third key order."""
    state = opt.init(params)
    if style == "plain":
        keys = ["d" + k for k in params]
        keys = keys[1::2] + keys[::2]  # neither the layout's order nor the parameters'
        for slot in opt.slots:
            setattr(state, slot, {k: np.zeros_like(params[k[1:]]) for k in keys})
    return state


def _epochs(params, state, opt, lr0, first, last, decay):
    """The course's loop, by hand, with the optimizer API on these dicts: epochs
    first..last-1 (mini-batches of 64, seed 10 + i + 1), the course's decay after each
    (update_lr at rate 0.3, or schedule_lr_decay at rate 0.5 every 2 epochs)."""
    X, Y = moons()
    for i in range(first, last):
        for bx, by in xpopt.random_mini_batches(X, Y, 64, 10 + i + 1):
            AL, caches = xpopt.forward_propagation(bx, params)
            grads = xpopt.backward_propagation(bx, by, caches)
            opt.update(params, grads, state)
            if isinstance(params, xpopt.FlatDict) and not params.packed:
                for k in list(params):  # the course's rebinding, every step
                    params[k] = params[k] - 0
        if decay == "update_lr":
            opt.learning_rate = course.update_lr(lr0, i, 0.3)
        elif decay == "schedule_lr_decay":
            opt.learning_rate = course.schedule_lr_decay(lr0, i, 0.5, time_interval=2)


def _by_key_equal(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for k in a:
        assert np.array_equal(np.asarray(a[k]), np.asarray(b[k])), f"{k} differs"


@pytest.mark.parametrize("decay", [None, "update_lr", "schedule_lr_decay"])
@pytest.mark.parametrize("style", ["packed", "rebound", "plain"])
@pytest.mark.parametrize("name", list(STEP_OPTIMIZERS))
def test_save_and_restore_by_key_resume_exactly(tmp_path, name, style, decay):
    """The checkpoint API on the caller's own dicts: packed FlatDicts, FlatDicts rebound the
    course's way, plain dicts (parameters and state in different key orders). Saved after 3
    epochs, restored into FRESH dicts of the same style and continued for 3 more: bit for
    bit the uninterrupted 6 epochs (parameters and moments by key, t). Restoring used to
    fill a packed copy (rebound: nothing restored), scramble plain-dict states, or raise
    AttributeError on plain-dict parameters."""
    lr0 = 0.01
    whole_p = _styled(style)
    whole_opt = STEP_OPTIMIZERS[name](lr0)
    whole_s = _styled_state(whole_opt, whole_p, style)
    _epochs(whole_p, whole_s, whole_opt, lr0, 0, 6, decay)

    p = _styled(style)
    opt = STEP_OPTIMIZERS[name](lr0)
    s = _styled_state(opt, p, style)
    _epochs(p, s, opt, lr0, 0, 3, decay)
    path = tmp_path / "manual.npz"
    ckpt.save(
        path,
        parameters=p,
        state=s,
        epoch=3,
        seed=10,
        learning_rate=opt.learning_rate,
        learning_rates=[],
        costs=[],
        optimizer=opt,
        mini_batch_size=64,
    )

    p2 = _styled(style)
    opt2 = STEP_OPTIMIZERS[name](lr0)
    s2 = _styled_state(opt2, p2, style)
    held = {k: p2[k] for k in p2}  # the arrays the caller's dict holds: restored in place
    saved = ckpt.load(path)
    saved.restore_into(p2, s2, optimizer=opt2, seed=10, mini_batch_size=64)
    assert all(p2[k] is held[k] for k in held)
    _by_key_equal(p2, p)
    for slot in opt.slots:
        _by_key_equal(getattr(s2, slot), getattr(s, slot))
    assert s2.t == s.t == 3 * 5
    opt2.learning_rate = saved.learning_rate
    _epochs(p2, s2, opt2, lr0, 3, 6, decay)
    _by_key_equal(p2, whole_p)
    for slot in opt.slots:
        _by_key_equal(getattr(s2, slot), getattr(whole_s, slot))
    assert s2.t == whole_s.t


def test_restore_into_plain_dicts_of_another_key_order(tmp_path):
    """Saved from a packed run, restored into plain dicts whose keys run in another order:
    every array lands under its own key (checked against the packed source by key)."""
    path = good_checkpoint(tmp_path)
    saved = ckpt.load(path)
    src = xpopt.initialize_parameters(LAYERS)
    offsets, at = {}, 0
    for k, shape in src.layout:  # independent of the code under test: the layout's offsets
        n = int(np.prod(shape))
        offsets[k] = (at, at + n, shape)
        at += n
    params = {k: np.full(src[k].shape, -7.0) for k in ["b2", "W3", "W1", "b3", "b1", "W2"]}
    state = xpopt.OptimizerState(
        v={"d" + k: np.zeros_like(params[k]) for k in sorted(params)},
        s={"d" + k: np.zeros_like(params[k]) for k in params},
    )
    saved.restore_into(
        params,
        state,
        optimizer=xpopt.Adam(0.0007),
        seed=10,
        mini_batch_size=64,
        record_every=100,
        data=ckpt.data_fingerprint(*moons()),
    )
    for k, (lo, hi, shape) in offsets.items():
        assert np.array_equal(params[k], saved.parameters[lo:hi].reshape(shape))
        assert np.array_equal(state.v["d" + k], saved.slots["v"][lo:hi].reshape(shape))
        assert np.array_equal(state.s["d" + k], saved.slots["s"][lo:hi].reshape(shape))


@pytest.mark.parametrize(
    "fault",
    ["missing-key", "extra-key", "wrong-shape", "read-only", "float32-state", "state-missing-key"],
)
def test_refused_restore_changes_nothing(tmp_path, fault):
    """A restore that does not fit (a key missing or extra, a shape, a read-only array, a
    state of another dtype) raises CheckpointError and leaves every array as it was."""
    saved = ckpt.load(good_checkpoint(tmp_path))
    params = {k: np.array(v) for k, v in xpopt.initialize_parameters(LAYERS).items()}
    state = xpopt.Adam(0.0007).init(params)
    if fault == "missing-key":
        del params["b3"]
        state = xpopt.OptimizerState(
            v={"d" + k: np.zeros_like(a) for k, a in params.items()},
            s={"d" + k: np.zeros_like(a) for k, a in params.items()},
        )
    elif fault == "extra-key":
        params["W4"] = np.zeros((1, 1))
    elif fault == "wrong-shape":
        params["b1"] = np.zeros((5, 2))
    elif fault == "read-only":
        params["W3"].setflags(write=False)
    elif fault == "float32-state":
        state.s["dW2"] = state.s["dW2"].astype(np.float32)
    elif fault == "state-missing-key":
        del state.v["db2"]
    before = {k: a.copy() for k, a in params.items()}
    before_state = {slot: {k: a.copy() for k, a in getattr(state, slot).items()} for slot in "vs"}
    with pytest.raises(CheckpointError):
        saved.restore_into(
            params,
            state,
            optimizer=xpopt.Adam(0.0007),
            seed=10,
            mini_batch_size=64,
            record_every=100,
            data=ckpt.data_fingerprint(*moons()),
        )
    _by_key_equal(params, before)
    for slot in "vs":
        _by_key_equal(getattr(state, slot), before_state[slot])
    assert state.t == 0


def test_save_reads_plain_dict_state_by_key(tmp_path):
    """A plain-dict state in another key order than the parameters is saved by key: the
    saved 'v' holds dW1's values where the layout puts W1 (used to be the dict's order)."""
    params = xpopt.initialize_parameters(LAYERS)
    v = {"d" + k: np.full(params[k].shape, float(i)) for i, k in enumerate(params)}
    v = dict(reversed(list(v.items())))
    state = xpopt.OptimizerState(t=1, v=v)
    path = tmp_path / "v.npz"
    ckpt.save(
        path,
        parameters=params,
        state=state,
        epoch=1,
        seed=10,
        learning_rate=0.1,
        learning_rates=[0.1],
        costs=[],
        optimizer=xpopt.Momentum(0.1),
        mini_batch_size=64,
    )
    want = np.concatenate(
        [np.full(int(np.prod(s)), float(i)) for i, (_, s) in enumerate(params.layout)]
    )
    assert np.array_equal(ckpt.load(path).slots["v"], want)


# ================================================ resume: every optimizer, decay, style
RESUME_OPTS = {
    "gd": lambda: xpopt.GD(0.05),
    "momentum": lambda: xpopt.Momentum(0.05),
    "rmsprop": lambda: xpopt.RMSprop(0.005),
    "adam": lambda: xpopt.Adam(0.01),
}
RESUME_DECAYS = {
    "none": {},
    "update_lr": dict(decay=xpopt.update_lr, decay_rate=0.2),
    "schedule_lr_decay": dict(
        decay=functools.partial(xpopt.schedule_lr_decay, time_interval=7), decay_rate=0.5
    ),
}


@functools.cache
def _whole(name, decay):
    X, Y = moons()
    return xpopt.train(
        X, Y, LAYERS, RESUME_OPTS[name](), num_epochs=30, record_every=4, **RESUME_DECAYS[decay]
    )


@pytest.mark.parametrize("style", ["packed", "rebound", "plain"])
@pytest.mark.parametrize("decay", list(RESUME_DECAYS))
@pytest.mark.parametrize("name", list(RESUME_OPTS))
def test_resume_matrix_bit_for_bit(tmp_path, name, decay, style):
    """Every optimizer, with and without decay (update_lr, schedule_lr_decay every 7 epochs),
    from packed, rebound or plain-dict initial parameters: stopped after 13 epochs (saves at
    5, 10 and the stop), resumed to 30, equals the uninterrupted run bit for bit; the
    caller's initial parameters are left as they were when they are not a packed FlatDict."""
    X, Y = moons()
    path = tmp_path / "run.npz"
    kw = dict(
        num_epochs=30, record_every=4, checkpoint=path, checkpoint_every=5, **RESUME_DECAYS[decay]
    )
    first_p = _styled(style)
    xpopt.train(X, Y, first_p, RESUME_OPTS[name](), stop_after=13, **kw)
    assert ckpt.load(path).epoch == 13
    again = _styled(style)
    before = {k: np.array(a) for k, a in again.items()}
    resumed = xpopt.train(X, Y, again, RESUME_OPTS[name](), resume=True, **kw)
    whole = _whole(name, decay)
    for k in whole.parameters:
        assert np.array_equal(resumed.parameters[k], whole.parameters[k]), k
    assert resumed.costs == whole.costs and len(whole.costs) == 8
    assert resumed.learning_rates == whole.learning_rates
    assert resumed.learning_rate == whole.learning_rate
    assert resumed.state.t == whole.state.t == 30 * 5
    for slot in ("v", "s"):
        a, b = getattr(resumed.state, slot), getattr(whole.state, slot)
        assert (a is None) == (b is None)
        if a is not None:
            _by_key_equal(a, b)
    if style != "packed":
        _by_key_equal(again, before)


# ================================================ record_every and the data (item 9)
def test_resume_with_another_record_every_is_refused(tmp_path):
    """record_every was not in the checkpoint: a resume with another one mixed two record
    grids. Now CheckpointError naming it; the file and the given parameters unchanged."""
    X, Y = moons()
    path = tmp_path / "run.npz"
    xpopt.train(
        X,
        Y,
        LAYERS,
        xpopt.Adam(0.01),
        num_epochs=60,
        record_every=10,
        checkpoint=path,
        stop_after=30,
    )
    before = path.read_bytes()
    params = xpopt.initialize_parameters(LAYERS)
    flat = params.flat.copy()
    with pytest.raises(CheckpointError, match="record_every 10 != 20"):
        xpopt.train(
            X,
            Y,
            params,
            xpopt.Adam(0.01),
            num_epochs=60,
            record_every=20,
            checkpoint=path,
            resume=True,
        )
    assert path.read_bytes() == before and np.array_equal(params.flat, flat)


@pytest.mark.parametrize("change", ["one-value", "fewer-examples", "labels"])
def test_resume_on_other_data_is_refused(tmp_path, change):
    """Resuming on other data went unnoticed; the checkpoint now holds the data's shapes,
    dtypes and hash, and a resume on anything else is refused, the file unchanged."""
    X, Y = moons()
    path = tmp_path / "run.npz"
    xpopt.train(X, Y, LAYERS, xpopt.Adam(0.01), num_epochs=40, checkpoint=path, stop_after=20)
    before = path.read_bytes()
    X2, Y2 = np.array(X), np.array(Y)
    if change == "one-value":
        X2[1, 123] = np.nextafter(X2[1, 123], np.inf)
    elif change == "fewer-examples":
        X2, Y2 = X2[:, :299], Y2[:, :299]
    else:
        Y2[0, 5] = 1 - Y2[0, 5]
    with pytest.raises(CheckpointError, match="other data"):
        xpopt.train(X2, Y2, LAYERS, xpopt.Adam(0.01), num_epochs=40, checkpoint=path, resume=True)
    assert path.read_bytes() == before


def test_the_data_fingerprint_is_computed_once_per_call(tmp_path, monkeypatch):
    calls = []
    real = ckpt.data_fingerprint
    monkeypatch.setattr(ckpt, "data_fingerprint", lambda X, Y: calls.append(1) or real(X, Y))
    X, Y = moons()
    xpopt.train(
        X,
        Y,
        LAYERS,
        xpopt.Adam(0.01),
        num_epochs=6,
        checkpoint=tmp_path / "r.npz",
        checkpoint_every=1,
    )
    assert len(calls) == 1


# ================================================= corrupt and crafted files (item 11)
def _central_entry_offset(data: bytes, name: bytes) -> int:
    """Offset of member ``name``'s central-directory entry (the zip format, not xpopt)."""
    i = data.find(b"PK\x01\x02")
    while i >= 0:
        n = int.from_bytes(data[i + 28 : i + 30], "little")
        if data[i + 46 : i + 46 + n] == name:
            return i
        i = data.find(b"PK\x01\x02", i + 1)
    raise AssertionError(f"no member {name!r}")


@pytest.mark.parametrize("member", [b"parameters.npy", b"meta.npy", b"v.npy"])
def test_flipped_compression_method_is_a_checkpoint_error(tmp_path, member):
    """A flipped byte in a member's compression method gave NotImplementedError."""
    data = bytearray(good_checkpoint(tmp_path).read_bytes())
    at = _central_entry_offset(bytes(data), member) + 10  # the compression method
    data[at] ^= 0x63
    bad = tmp_path / "method.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt"):
        ckpt.load(bad)


@pytest.mark.parametrize("extra", ["x", "v2", "vs"])
def test_an_extra_array_is_a_checkpoint_error(tmp_path, extra):
    """An extra array in the npz reached restore_into (AttributeError/TypeError)."""
    good = good_checkpoint(tmp_path)
    n = ckpt.load(good).parameters.size
    bad = _rewrite(good, tmp_path / "extra.npz", arrays={extra: np.zeros(n)})
    with pytest.raises(CheckpointError, match="unexpected arrays"):
        ckpt.load(bad)
    with pytest.raises(CheckpointError, match="unexpected arrays"):
        train("adam", checkpoint=bad, resume=True)


def _meta_of(path):
    with np.load(path, allow_pickle=False) as data:
        return json.loads(str(data["meta"][()]))


CRAFTED = [
    ("negative-epoch", lambda m: {"epoch": -1}),
    ("negative-t", lambda m: {"t": -5}),
    ("t-zero-with-moments", lambda m: {"t": 0}),
    ("costs-too-long", lambda m: {"costs": m["costs"] + [0.5]}),
    ("lrs-too-long", lambda m: {"learning_rates": m["learning_rates"] + [0.0007]}),
    ("lr-nan", lambda m: {"learning_rate": float("nan")}),
    ("lr-inf", lambda m: {"learning_rate": float("inf")}),
    ("lr-negative", lambda m: {"learning_rate": -0.1}),
    ("lrs-nan", lambda m: {"learning_rates": [float("nan")] * m["epoch"]}),
    ("lr-string", lambda m: {"learning_rate": "0.1"}),
    ("cost-bool", lambda m: {"costs": [True]}),
    ("seed-out-of-range", lambda m: {"seed": 2**32 - 10}),
    ("seed-negative", lambda m: {"seed": -3}),
    ("mini-batch-0", lambda m: {"mini_batch_size": 0}),
    ("record-every-0", lambda m: {"record_every": 0}),
    ("dtype-int", lambda m: {"dtype": "int64"}),
    ("dtype-junk", lambda m: {"dtype": "not a dtype"}),
    ("duplicate-key", lambda m: {"layout": m["layout"][:-1] + [["W1", m["layout"][-1][1]]]}),
    ("hyper-nan", lambda m: {"hyperparameters": {**m["hyperparameters"], "beta1": float("nan")}}),
    ("epoch-float", lambda m: {"epoch": 50.0}),
    ("data-junk", lambda m: {"data": {"sha256": 3}}),
]


@pytest.mark.parametrize("change", [c[1] for c in CRAFTED], ids=[c[0] for c in CRAFTED])
def test_crafted_metadata_is_refused(tmp_path, change):
    """Metadata that no run writes (negative counts, t = 0 with moments, more costs or
    learning rates than the epochs allow, non-finite rates, seeds NumPy refuses, ...):
    CheckpointError from load() and from a resuming train(), which changes nothing."""
    good = good_checkpoint(tmp_path)
    bad = _rewrite(good, tmp_path / "crafted.npz", change(_meta_of(good)))
    with pytest.raises(CheckpointError):
        ckpt.load(bad)
    before = bad.read_bytes()
    params = xpopt.initialize_parameters(LAYERS)
    flat = params.flat.copy()
    with pytest.raises(CheckpointError):
        xpopt.train(
            *moons(), params, xpopt.Adam(0.0007), num_epochs=100, checkpoint=bad, resume=True
        )
    assert bad.read_bytes() == before and np.array_equal(params.flat, flat)


@pytest.mark.parametrize(
    "change",
    [
        lambda m: {"t": m["t"] + 1},
        lambda m: {"costs": []},
        lambda m: {"learning_rates": m["learning_rates"][:-1]},
    ],
    ids=["t", "costs-missing", "lrs-missing"],
)
def test_train_refuses_counters_that_do_not_add_up(tmp_path, change):
    """Loadable, but not what train() wrote for that many epochs: t other than one step per
    mini-batch, a cost or learning rate missing. train(resume=True) refuses, nothing changes."""
    good = good_checkpoint(tmp_path)
    bad = _rewrite(good, tmp_path / "counters.npz", change(_meta_of(good)))
    params = xpopt.initialize_parameters(LAYERS)
    flat = params.flat.copy()
    with pytest.raises(CheckpointError, match="do not add up"):
        xpopt.train(
            *moons(), params, xpopt.Adam(0.0007), num_epochs=100, checkpoint=bad, resume=True
        )
    assert np.array_equal(params.flat, flat)


def test_a_checkpoint_of_the_previous_format_is_refused_clearly(tmp_path):
    good = good_checkpoint(tmp_path)
    old = _meta_of(good)
    old["format"] = "xpopt-checkpoint/1"
    del old["record_every"], old["data"]
    bad = _rewrite(good, tmp_path / "old.npz", old)
    with pytest.raises(CheckpointError, match="older xpopt"):
        ckpt.load(bad)


# ===================================================== files on disk (items 12, 13)
def test_stale_temporary_files_of_ours_are_removed_at_save(tmp_path):
    """A save killed half-way leaves '.xpopt-*.npz.tmp': the next save in that folder
    removes OUR temporary files older than the limit, and nothing else."""
    old = time.time() - ckpt.STALE_TMP_SECONDS - 60
    names = {
        ".xpopt-abcd1234.npz.tmp": old,
        ".xpopt-k_9Zq2x1y0.npz.tmp": old,
        ".xpopt-fresh123.npz.tmp": None,
        ".other-abcd1234.npz.tmp": old,
        ".xpopt-abcd1234.npz": old,
        "notes.txt": old,
        ".xpopt-.npz.tmp": old,
    }
    for name, mtime in names.items():
        (tmp_path / name).write_bytes(b"partial")
        if mtime is not None:
            os.utime(tmp_path / name, (mtime, mtime))
    good_checkpoint(tmp_path)
    left = set(os.listdir(tmp_path))
    assert ".xpopt-abcd1234.npz.tmp" not in left and ".xpopt-k_9Zq2x1y0.npz.tmp" not in left
    assert left == set(names) - {".xpopt-abcd1234.npz.tmp", ".xpopt-k_9Zq2x1y0.npz.tmp"} | {
        "run.npz"
    }


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_checkpoint_mode_follows_the_umask(tmp_path, umask):
    """Checkpoints were 0600 whatever the umask (mkstemp): now 0666 & ~umask, as any file."""
    previous = os.umask(umask)
    try:
        path = good_checkpoint(tmp_path)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask
