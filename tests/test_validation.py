"""Nothing silently wrong (issue 11): every entry point of an update refuses what it cannot
update correctly, with a clear error and nothing changed, before it touches any array.

The entry points: the course-named ``update_parameters_with_*`` functions, the optimizer
objects' ``update`` and ``bind`` (fused: the compiled CPU kernel where built; unfused: the
NumPy twin). The faults: read-only parameters or state (the compiled kernel wrote through
them, or crashed on a read-only memory map), non-native byte order (the native kernel read
``1.0`` as ``4.7e-30``), hyperparameters that are fine in double but not in the arrays'
dtype, float16, the same dict or memory in two roles, and a bound step that kept updating
arrays the dicts no longer held.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import course_reference as course
import xpopt
from xpopt.flat import FlatDict

NAMES = ("gd", "momentum", "rmsprop", "adam")
STATEFUL = ("momentum", "rmsprop", "adam")
SLOTS = {"gd": (), "momentum": ("v",), "rmsprop": ("s",), "adam": ("v", "s")}
LAYERS = [3, 4, 2, 1]
LAST = "b3"
HP = {"learning_rate": 0.05, "beta": 0.8, "beta1": 0.85, "beta2": 0.99, "epsilon": 1e-7}
ENTRIES = ("function", "update", "update-unfused", "bind", "bind-unfused")


# ------------------------------------------------------------------------------ helpers
def make(name: str, style: str = "plain", dtype=np.float64, seed: int = 0):
    """Parameters, gradients and a non-zero state (a tuple of dicts) of ``LAYERS``."""
    rng = np.random.default_rng(seed)
    params = xpopt.initialize_parameters(LAYERS)
    params.flat[...] = rng.standard_normal(params.flat.size)
    grads = params.zeros_like("d")
    grads.flat[...] = rng.standard_normal(grads.flat.size)
    state = []
    for _ in SLOTS[name]:
        d = params.zeros_like("d")
        d.flat[...] = rng.random(d.flat.size)  # >= 0: a valid second moment too
        state.append(d)
    params = FlatDict(params.flat.astype(dtype), params.layout)
    grads = FlatDict(grads.flat.astype(dtype), grads.layout)
    state = [FlatDict(d.flat.astype(dtype), d.layout) for d in state]
    if style == "plain":
        params, grads = plain(params), plain(grads)
        state = [plain(d) for d in state]
    return params, grads, tuple(state)


def plain(d: dict) -> dict:
    return {k: np.array(v, copy=True) for k, v in d.items()}


def optimizer(name: str, fused: bool = True, **hp):
    hp = {**HP, **hp}
    lr = hp["learning_rate"]
    return {
        "gd": lambda: xpopt.GD(lr, fused=fused),
        "momentum": lambda: xpopt.Momentum(lr, hp["beta"], fused=fused),
        "rmsprop": lambda: xpopt.RMSprop(lr, hp["beta2"], hp["epsilon"], fused=fused),
        "adam": lambda: xpopt.Adam(lr, hp["beta1"], hp["beta2"], hp["epsilon"], fused=fused),
    }[name]()


def function_step(name, params, grads, state, t=2, **hp):
    hp = {**HP, **hp}
    lr = hp["learning_rate"]
    if name == "gd":
        return xpopt.update_parameters_with_gd(params, grads, lr)
    if name == "momentum":
        return xpopt.update_parameters_with_momentum(params, grads, state[0], hp["beta"], lr)
    if name == "rmsprop":
        return xpopt.update_parameters_with_rmsprop(
            params, grads, state[0], lr, hp["beta2"], hp["epsilon"]
        )
    return xpopt.update_parameters_with_adam(
        params, grads, state[0], state[1], t, lr, hp["beta1"], hp["beta2"], hp["epsilon"]
    )


def object_state(name, state, t=1):
    return xpopt.OptimizerState(t=t, **dict(zip(SLOTS[name], state, strict=True)))


def run(entry: str, name: str, params, grads, state, **hp):
    """One step through ``entry``; returns the OptimizerState for object entries."""
    if entry == "function":
        function_step(name, params, grads, state, **hp)
        return None
    opt = optimizer(name, fused=not entry.endswith("unfused"), **hp)
    st = object_state(name, state)
    if entry.startswith("update"):
        opt.update(params, grads, st)
    else:
        opt.bind(params, grads, st)()
    return st


def snapshot(*dicts) -> list:
    return [(d, k, a, np.array(a, copy=True)) for d in dicts for k, a in d.items()]


def assert_unchanged(snap) -> None:
    for d, k, a, before in snap:
        assert d[k] is a, f"{k} was rebound"
        assert np.array_equal(a, before, equal_nan=True), f"{k} was modified before the error"


def refused(entry, name, params, grads, state, exc, match, **hp) -> None:
    """``entry`` raises ``exc`` matching ``match`` and changes nothing (and not state.t)."""
    snap = snapshot(params, grads, *state)
    st = object_state(name, state) if entry != "function" else None
    with pytest.raises(exc, match=match):
        if st is None:
            function_step(name, params, grads, state, **hp)
        else:
            opt = optimizer(name, fused=not entry.endswith("unfused"), **hp)
            if entry.startswith("update"):
                opt.update(params, grads, st)
            else:
                opt.bind(params, grads, st)()
    assert_unchanged(snap)
    if st is not None:
        assert st.t == 1


# ------------------------------------------------------------------- read-only arrays
@pytest.mark.parametrize("style", ["plain", "flat"])
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("entry", ENTRIES)
def test_read_only_parameters_refused(entry, name, style):
    """A read-only parameter (the last one of a plain dict; the buffer of a FlatDict):
    ValueError saying so, before any write (the compiled kernel wrote through it; the twin
    raised only after updating the earlier keys)."""
    params, grads, state = make(name, style)
    if style == "plain":
        params[LAST].flags.writeable = False
    else:
        params.flat.flags.writeable = False
    refused(entry, name, params, grads, state, ValueError, r"read-only.*parameters")


@pytest.mark.parametrize("style", ["plain", "flat"])
@pytest.mark.parametrize("name", STATEFUL)
@pytest.mark.parametrize("entry", ENTRIES)
def test_read_only_state_refused(entry, name, style):
    """A read-only optimizer state array (the last one of the last slot): ValueError, and
    neither the parameters nor the other state changed."""
    params, grads, state = make(name, style)
    target = state[-1]
    if style == "plain":
        target["d" + LAST].flags.writeable = False
    else:
        target.flat.flags.writeable = False
    refused(entry, name, params, grads, state, ValueError, r"read-only")


@pytest.mark.parametrize("style", ["plain", "flat"])
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("entry", ENTRIES)
def test_read_only_gradients_are_fine(entry, name, style):
    """Gradients are only read: read-only ones give the same result as writeable ones."""
    params, grads, state = make(name, style)
    ref_params, ref_grads, ref_state = make(name, style)
    for d in [grads] if style == "plain" else []:
        for a in d.values():
            a.flags.writeable = False
    if style == "flat":
        grads.flat.flags.writeable = False
    run(entry, name, params, grads, state)
    run(entry, name, ref_params, ref_grads, ref_state)
    for k in params:
        assert np.array_equal(params[k], ref_params[k]), k
    for got, want in zip(state, ref_state, strict=True):
        for k in want:
            assert np.array_equal(got[k], want[k]), k


@pytest.mark.parametrize("fused", [True, False])
def test_read_only_memory_map_refused_without_crash(tmp_path, fused):
    """Parameters loaded with ``numpy.load(f, mmap_mode="r")``: the compiled kernel wrote
    into the read-only mapping (SIGSEGV). Now a ValueError, in a subprocess to survive a crash."""
    path = tmp_path / "W1.npy"
    np.save(path, np.arange(12.0).reshape(4, 3))
    code = textwrap.dedent(f"""
        import numpy, xpopt
        W = numpy.load({str(path)!r}, mmap_mode="r")
        params = {{"W1": W, "b1": numpy.zeros((4, 1))}}
        grads = {{"dW1": numpy.ones((4, 3)), "db1": numpy.ones((4, 1))}}
        opt = xpopt.GD(0.1, fused={fused})
        try:
            opt.update(params, grads, opt.init(params))
        except ValueError as exc:
            assert "read-only" in str(exc), exc
            assert float(params["b1"][0, 0]) == 0.0
            print("refused")
    """)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
    )
    assert proc.returncode == 0, f"crashed (rc {proc.returncode}): {proc.stderr[-2000:]}"
    assert proc.stdout.strip() == "refused"
    assert np.array_equal(np.load(path), np.arange(12.0).reshape(4, 3))


# ------------------------------------------------------------------------ byte order
@pytest.mark.parametrize("style", ["plain", "flat"])
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("entry", ENTRIES)
def test_non_native_byte_order_refused(entry, name, style):
    """All arrays big-endian (``>f8`` on this little-endian machine): TypeError naming the
    byte order (the compiled kernel read them as native doubles: 1.0 became 4.7e-30)."""
    params, grads, state = make(name, style)
    swapped = np.dtype(np.float64).newbyteorder("S")

    def swap(d):
        if isinstance(d, FlatDict):
            return FlatDict(d.flat.astype(swapped), d.layout)
        return {k: a.astype(swapped) for k, a in d.items()}

    params, grads, state = swap(params), swap(grads), tuple(swap(d) for d in state)
    refused(entry, name, params, grads, state, TypeError, r"byte order")


@pytest.mark.parametrize("name", NAMES)
def test_mixed_byte_order_refused(name):
    """Native parameters with one swapped gradient: one dtype is required, byte order included."""
    params, grads, state = make(name)
    grads["d" + LAST] = grads["d" + LAST].astype(np.dtype(np.float64).newbyteorder("S"))
    refused("function", name, params, grads, state, TypeError, r"dtype|byte order")


# ------------------------------------------------------- scalars in the arrays' dtype
@pytest.mark.parametrize("style", ["plain", "flat"])
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("entry", ENTRIES)
def test_float16_refused(entry, name, style):
    """float16: the kernels are built for float32 and float64 (and the default epsilon is
    0 in float16): TypeError up front."""
    params, grads, state = make(name, style, dtype=np.float16)
    refused(entry, name, params, grads, state, TypeError, r"float16")


BAD_IN_FLOAT32 = [
    # id, optimizers, overrides, regex
    ("eps-underflows", ("rmsprop", "adam"), {"epsilon": 1e-50}, "epsilon"),
    ("eps-overflows", ("rmsprop", "adam"), {"epsilon": 1e300}, "epsilon"),
    ("lr-overflows", NAMES, {"learning_rate": 1e39}, "learning_rate"),
    ("beta-rounds-to-1", ("momentum",), {"beta": 1 - 1e-9}, "beta"),
    ("beta1-rounds-to-1", ("adam",), {"beta1": 1 - 1e-9}, "beta1"),
    ("beta2-rounds-to-1", ("rmsprop", "adam"), {"beta2": 1 - 1e-9}, "beta2"),
]
FLOAT32_CASES = [(n, c) for c in BAD_IN_FLOAT32 for n in c[1]]


@pytest.mark.parametrize("style", ["plain", "flat"])
@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("name,case", FLOAT32_CASES, ids=[f"{n}-{c[0]}" for n, c in FLOAT32_CASES])
def test_hyperparameters_checked_as_cast_to_float32(name, case, entry, style):
    """A hyperparameter valid in double but not once cast to float32 (epsilon 0 or inf,
    learning rate inf, a beta of 1): ValueError naming it; nothing changed. In float64 the
    same values are accepted (where they are valid there)."""
    _, _, overrides, pattern = case
    params, grads, state = make(name, style, dtype=np.float32)
    refused(entry, name, params, grads, state, ValueError, pattern, **overrides)
    params, grads, state = make(name, style, dtype=np.float64)
    run(entry, name, params, grads, state, **overrides)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("how", ["bind", "update"])
@pytest.mark.parametrize("name", NAMES)
def test_learning_rate_changed_later_is_checked_in_dtype(name, how, fused):
    """A learning rate set after the plan was made (a schedule) is checked in the arrays'
    dtype too: the next step raises, changes nothing and leaves t; a valid one then works."""
    params, grads, state = make(name, "flat", dtype=np.float32)
    opt = optimizer(name, fused=fused)
    st = object_state(name, state, t=0)
    step = opt.bind(params, grads, st) if how == "bind" else (lambda: opt.update(params, grads, st))
    step()
    opt.learning_rate = 1e39  # finite in double, inf in float32
    snap = snapshot(params, grads, *state)
    with pytest.raises(ValueError, match="learning_rate"):
        step()
    assert_unchanged(snap)
    assert st.t == 1
    opt.learning_rate = 0.01
    step()
    assert st.t == 2


@pytest.mark.parametrize("name", STATEFUL)
def test_hyperparameter_attributes_are_validated(name):
    """Setting beta/beta1/beta2/epsilon on an optimizer validates like the constructor
    (it was a plain attribute: any value was used as it was)."""
    opt = optimizer(name)
    attrs = {
        "momentum": ["beta"],
        "rmsprop": ["beta2", "epsilon"],
        "adam": ["beta1", "beta2", "epsilon"],
    }[name]
    for attr in attrs:
        before = getattr(opt, attr)
        for bad in (0.0, -1e-8, float("inf")) if attr == "epsilon" else (1.0, -0.5, float("nan")):
            with pytest.raises(ValueError, match=attr):
                setattr(opt, attr, bad)
        assert getattr(opt, attr) == before


@pytest.mark.parametrize("fused", [True, False])
def test_hyperparameter_attribute_changed_after_bind_is_checked_in_dtype(fused):
    """Adam's epsilon set to 1e-50 after bind: valid in double, 0 in float32, so the next
    bound step raises before any write."""
    params, grads, state = make("adam", "flat", dtype=np.float32)
    opt = optimizer("adam", fused=fused)
    st = object_state("adam", state, t=0)
    step = opt.bind(params, grads, st)
    step()
    opt.epsilon = 1e-50
    snap = snapshot(params, grads, *state)
    with pytest.raises(ValueError, match="epsilon"):
        step()
    assert_unchanged(snap)


# ----------------------------------------------------------------------------- aliasing
@pytest.mark.parametrize("style", ["plain", "flat"])
@pytest.mark.parametrize("entry", ENTRIES)
def test_same_dict_as_v_and_s_refused(entry, style):
    """Adam given one dict as both ``v`` and ``s``: ValueError (it was accepted, and the fused
    and unfused paths gave different results)."""
    params, grads, (v, _) = make("adam", style)
    refused(entry, "adam", params, grads, (v, v), ValueError, r"same")


@pytest.mark.parametrize("name", STATEFUL)
@pytest.mark.parametrize("entry", ENTRIES)
def test_state_array_sharing_a_parameter_refused(entry, name):
    """A state array that is (a view of) a parameter array: ValueError naming both."""
    params, grads, state = make(name)
    state[0]["d" + LAST] = params[LAST][...]  # a view: a different object, the same memory
    refused(entry, name, params, grads, state, ValueError, r"memory")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("entry", ENTRIES)
def test_gradient_buffer_sharing_parameter_buffer_refused(entry, name):
    """Packed gradients over the parameters' own buffer: ValueError."""
    params, _, state = make(name, "flat")
    grads = FlatDict(params.flat, tuple(("d" + k, s) for k, s in params.layout))
    refused(entry, name, params, grads, state, ValueError, r"memory")


@pytest.mark.parametrize("entry", ENTRIES)
def test_parameters_overlapping_each_other_refused(entry):
    """Two parameters over the same memory (b3 a view into b2) would be updated twice."""
    params, grads, state = make("momentum")
    params[LAST] = params["b2"][:1]
    refused(entry, "momentum", params, grads, state, ValueError, r"memory")


@pytest.mark.parametrize("entry", ENTRIES)
def test_interleaved_views_of_one_array_are_fine(entry):
    """Two parameters interleaved in one array (rows 0, 2, ... and 1, 3, ...) share no
    element: accepted, and each gets its own update."""
    base = np.random.default_rng(1).standard_normal((8, 3))
    params = {"A": base[0::2], "B": base[1::2]}
    grads = {"dA": np.ones((4, 3)), "dB": np.full((4, 3), 2.0)}
    v = {"dA": np.zeros((4, 3)), "dB": np.zeros((4, 3))}
    want = base.copy()
    run(entry, "momentum", params, grads, (v,))
    want[0::2] -= HP["learning_rate"] * ((1 - HP["beta"]) * 1.0)
    want[1::2] -= HP["learning_rate"] * ((1 - HP["beta"]) * 2.0)
    np.testing.assert_allclose(base, want, rtol=1e-15)


# ------------------------------------------------------------------ bind and rebinding
def course_run(name, params, grads_seq, t0=1):
    """The course's update over plain copies, one step per gradient dict."""
    p = plain(params)
    state = {
        "gd": (),
        "momentum": (course.initialize_velocity(p),),
        "rmsprop": (course.initialize_rmsprop(p),),
        "adam": course.initialize_adam(p),
    }[name]
    state = tuple(state)
    lr = HP["learning_rate"]
    for t, g in enumerate(grads_seq, start=t0):
        g = plain(g)
        if name == "gd":
            p = course.update_parameters_with_gd(p, g, lr)
        elif name == "momentum":
            p, v = course.update_parameters_with_momentum(p, g, state[0], HP["beta"], lr)
            state = (v,)
        elif name == "rmsprop":
            p, s = course.update_parameters_with_rmsprop(
                p, g, state[0], lr, HP["beta2"], HP["epsilon"]
            )
            state = (s,)
        else:
            p, v, s, _, _ = course.update_parameters_with_adam(
                p, g, state[0], state[1], t, lr, HP["beta1"], HP["beta2"], HP["epsilon"]
            )
            state = (v, s)
    return p, state


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("how", ["bind", "update"])
@pytest.mark.parametrize("name", NAMES)
def test_step_follows_rebound_parameters_and_gradients(name, how, fused):
    """After a course-style rebinding (``p["W1"] = p["W1"] - 0``, ``g["dW2"] = new``) the next
    steps update and read what the dicts hold now (a bound step kept updating the orphaned
    buffer and reading the old gradient); the result is the course's."""
    params, grads, _ = make(name, "flat")
    opt = optimizer(name, fused=fused)
    st = opt.init(params)
    step = opt.bind(params, grads, st) if how == "bind" else (lambda: opt.update(params, grads, st))
    seq = []
    start = plain(params)
    step()
    seq.append(plain(grads))
    params["W1"] = params["W1"] - 0
    grads["dW2"] = grads["dW2"] * 3.0
    for _ in range(3):
        step()
        seq.append(plain(grads))
    want, want_state = course_run(name, start, seq)
    for k in want:
        assert np.array_equal(params[k], want[k]), k
    for slot, w in zip(SLOTS[name], want_state, strict=True):
        for k in w:
            assert np.array_equal(getattr(st, slot)[k], w[k]), (slot, k)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("name", STATEFUL)
def test_bound_step_follows_rebound_state(name, fused):
    """State rebound after bind (a key of ``state.v``, or ``state.s`` replaced by a copy):
    the step updates the arrays the state holds now."""
    params, grads, _ = make(name, "flat")
    opt = optimizer(name, fused=fused)
    st = opt.init(params)
    step = opt.bind(params, grads, st)
    start = plain(params)
    step()
    first = SLOTS[name][0]
    getattr(st, first)["dW1"] = getattr(st, first)["dW1"] * 1.0
    setattr(st, SLOTS[name][-1], FlatDict.pack(getattr(st, SLOTS[name][-1])))
    step()
    step()
    want, want_state = course_run(name, start, [plain(grads)] * 3)
    for k in want:
        assert np.array_equal(params[k], want[k]), k
    for slot, w in zip(SLOTS[name], want_state, strict=True):
        for k in w:
            assert np.array_equal(getattr(st, slot)[k], w[k]), (slot, k)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("name", NAMES)
def test_bound_step_rebound_to_a_bad_array_raises(name, fused):
    """A key rebound after bind to an array of the wrong shape: the step raises ValueError
    naming it, changes nothing and leaves t."""
    params, grads, _ = make(name, "flat")
    opt = optimizer(name, fused=fused)
    st = opt.init(params)
    step = opt.bind(params, grads, st)
    step()
    params[LAST] = np.zeros((2, 2))
    snap = snapshot(params, grads, *(getattr(st, s) for s in SLOTS[name]))
    with pytest.raises(ValueError, match=LAST):
        step()
    assert_unchanged(snap)
    assert st.t == 1


@pytest.mark.parametrize("how", ["update-method", "ior", "setdefault-after-pop", "repack"])
def test_bound_step_follows_every_way_of_rebinding_a_flatdict(how):
    """A FlatDict rebound through any dict method (``update``, ``|=``, ``pop`` then
    ``setdefault``, and back with ``repack``) is seen by a bound step, which lands its update
    in the arrays the dict holds."""
    params, grads, _ = make("momentum", "flat")
    opt = optimizer("momentum")
    st = opt.init(params)
    step = opt.bind(params, grads, st)
    start = plain(params)
    step()
    new = params["W2"] * 1.0
    if how == "update-method":
        params.update({"W2": new})
    elif how == "ior":
        params |= {"W2": new}
    elif how == "setdefault-after-pop":
        params.pop("W2")
        params.setdefault("W2", new)
        # (W2 now comes last: the key order changed, the arrays are the dict's)
    else:
        params["W2"] = new
        params.repack()
    step()
    step()
    want, _ = course_run("momentum", start, [plain(grads)] * 3)
    for k in want:
        assert np.array_equal(params[k], want[k]), k
    if how != "repack":
        assert params["W2"] is new


@pytest.mark.parametrize("fused", [True, False])
def test_bound_step_with_a_bad_replacement_state_keeps_refusing(fused):
    """``state.v`` replaced by a dict of the wrong shapes: every step raises (the old plan is
    not used on the old dicts behind the user's back); putting a good dict back works."""
    params, grads, _ = make("momentum", "flat")
    opt = optimizer("momentum", fused=fused)
    st = opt.init(params)
    step = opt.bind(params, grads, st)
    step()
    good = st.v
    st.v = {k: np.zeros((7, 7)) for k in good}
    before = plain(params)
    for _ in range(2):
        with pytest.raises(ValueError, match="shape"):
            step()
        assert st.t == 1
        for k in before:
            assert np.array_equal(params[k], before[k])
    st.v = good
    step()
    assert st.t == 2


def test_bound_step_on_plain_dicts_follows_rebinding():
    """Plain dicts (no rebinding count) are checked by identity at every step."""
    params, grads, state = make("adam")
    opt = optimizer("adam")
    st = object_state("adam", state, t=0)
    step = opt.bind(params, grads, st)
    start, v0, s0 = plain(params), plain(state[0]), plain(state[1])
    step()
    params["W1"] = params["W1"] - 0
    step()
    # the course's Adam from the same non-zero state
    p, v, s = start, v0, s0
    for t in (1, 2):
        p, v, s, _, _ = course.update_parameters_with_adam(
            p, plain(grads), v, s, t, HP["learning_rate"], HP["beta1"], HP["beta2"], HP["epsilon"]
        )
    for k in p:
        assert np.array_equal(params[k], p[k]), k


def test_bound_step_allocates_no_array():
    """A bound step on a 1M-element packed model allocates only bookkeeping (no per-step
    validation or temporaries): under 64 KiB traced after a warm-up step."""
    import tracemalloc

    layout = [("W1", (1000, 999)), ("b1", (1000, 1))]
    params = FlatDict.empty(layout, fill=0.5)
    grads = params.zeros_like("d")
    grads.flat[...] = 1.0
    opt = xpopt.Adam(0.01, fused=False)
    st = opt.init(params)
    step = opt.bind(params, grads, st)
    step()
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        for _ in range(3):
            step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - start < 64 * 1024


@pytest.mark.parametrize("entry", ENTRIES)
def test_read_only_flatdict_buffer_refused_after_rebinding(entry):
    """A FlatDict whose buffer was made read-only stays read-only after a key was rebound
    (its views predate the flag and are still writeable, but the dict is frozen): the same
    ValueError as on the packed path, nothing changed."""
    params, grads, state = make("momentum", "flat")
    params.flat.flags.writeable = False
    params["W1"] = params["W1"] * 1.0  # unpacked: one update per array
    refused(entry, "momentum", params, grads, state, ValueError, r"read-only")


# ------------------------------------------------------------------- on the device too
def on(xp, d):
    """A FlatDict (or plain dict) moved to ``xp``'s device."""
    if isinstance(d, FlatDict):
        return d.map_buffer(xp.asarray)
    return {k: xp.asarray(a) for k, a in d.items()}


def host_copy(d):
    return {k: np.array(xpopt.to_host(a)) for k, a in d.items()}


@pytest.mark.parametrize("fused", [True, False])
def test_device_arrays_refused_the_same_way(xp, fused):
    """On CuPy (and its stand-in) the same layer refuses float16, the same dict as v and s,
    and an epsilon that is 0 in float32, before any launch; nothing changed."""
    cases = [
        ("float16", np.float16, {}, TypeError, "float16"),
        ("v is s", np.float64, {}, ValueError, "same dict"),
        ("epsilon in float32", np.float32, {"epsilon": 1e-50}, ValueError, "epsilon"),
    ]
    for what, dtype, hp, exc, match in cases:
        params, grads, state = make("adam", "flat", dtype=dtype)
        params, grads = on(xp, params), on(xp, grads)
        v, s = on(xp, state[0]), on(xp, state[1])
        if what == "v is s":
            s = v
        before = [host_copy(d) for d in (params, grads, v, s)]
        opt = optimizer("adam", fused=fused, **hp)
        st = xpopt.OptimizerState(t=1, v=v, s=s)
        with pytest.raises(exc, match=match):
            opt.bind(params, grads, st)()
        with pytest.raises(exc, match=match):
            function_step("adam", params, grads, (v, s), **hp)
        for d, b in zip((params, grads, v, s), before, strict=True):
            for k in b:
                assert np.array_equal(host_copy(d)[k], b[k], equal_nan=True), (what, k)
        assert st.t == 1


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("name", NAMES)
def test_device_bound_step_follows_rebinding(xp, name, fused):
    """A bound step on device arrays follows a course-style rebinding, as on NumPy: the
    course's values after every step (float64, exact as on the NumPy path)."""
    params, grads, _ = make(name, "flat")
    start = plain(params)
    dev_params, dev_grads = on(xp, params), on(xp, grads)
    opt = optimizer(name, fused=fused)
    st = opt.init(dev_params)
    step = opt.bind(dev_params, dev_grads, st)
    step()
    dev_params["W1"] = dev_params["W1"] - 0
    step()
    step()
    want, _ = course_run(name, start, [plain(grads)] * 3)
    got = host_copy(dev_params)
    for k in want:
        assert np.array_equal(got[k], want[k]), k


@pytest.mark.gpu
def test_device_validation_reads_host_metadata_only(standin):
    """Validating device arrays (packed, rebound, plain dicts with views into one array, and
    a refused overlap) launches nothing and reads nothing back: shapes, dtypes, flags and
    addresses are on the host already."""
    params, grads, state = make("adam", "flat")
    dev = [on(standin, d) for d in (params, grads, *state)]
    rebound = [d.copy() for d in dev]
    rebound[0]["W1"] = rebound[0]["W1"] * 1.0
    base = standin.zeros((8, 3))
    views = (
        {"A": base[0::2], "B": base[1::2]},
        {"dA": standin.ones((4, 3)), "dB": standin.ones((4, 3))},
        {"dA": standin.zeros((4, 3)), "dB": standin.zeros((4, 3))},
    )
    with standin.counting() as counts:
        for p, g, v, s in (dev, rebound):
            xpopt.Adam(0.01).bind(p, g, xpopt.OptimizerState(v=v, s=s))
        with pytest.raises(ValueError, match="memory"):  # byte ranges overlap: refused
            xpopt.Momentum(0.01).bind(
                views[0], views[1], xpopt.OptimizerState(v={"dA": base[0::2], "dB": views[2]["dB"]})
            )
    assert counts.launches == 0 and counts.d2h == 0 and counts.syncs == 0, counts
