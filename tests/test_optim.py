"""The update rules against the course's code (tests/course_reference.py).

xpopt updates in place; the course returns new arrays. Every comparison runs the course on
copies of the same inputs and checks xpopt's arrays against it bit for bit in float64.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import course_reference as course
import xpopt
from conftest import assert_close, require_gpu
from xpopt.flat import FlatDict
from xpopt.optim import base as optim_base
from xpopt.optim.base import CHUNK

# From this many elements the NumPy path splits its chunks among threads (1 << 20 where the
# constant is absent: the size tested below then still exercises a large buffer).
THREADED_MIN = getattr(optim_base, "THREADED_MIN", 1 << 20)

NAMES = ("gd", "momentum", "rmsprop", "adam")
LAYERS = [3, 4, 2, 1]  # keys W1, b1, W2, b2, W3, b3: the last key is b3 / db3
LAST = "b3"
DEFAULTS = {"learning_rate": 0.01, "beta": 0.9, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}
# Non-default values: a rule that hard-codes a default cannot pass with these.
ODD = {"learning_rate": 0.05, "beta": 0.8, "beta1": 0.85, "beta2": 0.99, "epsilon": 1e-7}
STEPS = 5


# ------------------------------------------------------------------------------ helpers
def plain(d: dict) -> dict:
    """A plain dict of fresh, separate, C-contiguous copies (the course's style)."""
    return {k: np.array(v, copy=True) for k, v in d.items()}


def make_params(style: str, layers=LAYERS, dtype=np.float64) -> dict:
    """He-initialised parameters, then perturbed so that every b is non-zero."""
    params = xpopt.initialize_parameters(layers, dtype=dtype)
    rng = np.random.default_rng(7)
    params.flat[...] += rng.standard_normal(params.flat.size).astype(dtype) * 0.1
    return params if style in ("flat", "mixed") else plain(params)


def make_grads(params: dict, style: str, seed: int) -> dict:
    """Random gradients keyed dW1, db1, ...: a packed FlatDict for 'flat', else plain arrays."""
    rng = np.random.default_rng(seed)
    if style == "flat":
        grads = params.zeros_like("d")
        grads.flat[...] = rng.standard_normal(grads.flat.size).astype(grads.flat.dtype)
        return grads
    dtype = next(iter(params.values())).dtype
    return {"d" + k: rng.standard_normal(p.shape).astype(dtype) for k, p in params.items()}


def init_state(mod, name: str, params: dict) -> tuple:
    """The optimizer's state from ``mod`` (xpopt or the course), as a tuple of dicts."""
    if name == "gd":
        return ()
    if name == "momentum":
        return (mod.initialize_velocity(params),)
    if name == "rmsprop":
        return (mod.initialize_rmsprop(params),)
    return tuple(mod.initialize_adam(params))


def step(mod, name: str, params: dict, grads: dict, state: tuple, t: int, hp: dict):
    """One course-named update from ``mod``: returns (parameters, state, extras)."""
    lr = hp["learning_rate"]
    if name == "gd":
        return mod.update_parameters_with_gd(params, grads, lr), (), ()
    if name == "momentum":
        p, v = mod.update_parameters_with_momentum(params, grads, state[0], hp["beta"], lr)
        return p, (v,), ()
    if name == "rmsprop":
        p, s = mod.update_parameters_with_rmsprop(
            params, grads, state[0], lr, hp["beta2"], hp["epsilon"]
        )
        return p, (s,), ()
    p, v, s, vc, sc = mod.update_parameters_with_adam(
        params, grads, state[0], state[1], t, lr, hp["beta1"], hp["beta2"], hp["epsilon"]
    )
    return p, (v, s), (vc, sc)


def assert_dicts_equal(actual: dict, desired: dict, what: str) -> None:
    assert set(actual) == set(desired), f"{what}: keys {sorted(actual)} != {sorted(desired)}"
    for k in desired:
        a, d = np.asarray(actual[k]), np.asarray(desired[k])
        assert a.dtype == d.dtype and a.shape == d.shape, (
            f"{what}[{k}]: {a.dtype}{a.shape} != {d.dtype}{d.shape}"
        )
        assert np.array_equal(a, d), f"{what}[{k!r}] differs from the course's"


def arrays_of(*dicts) -> list:
    return [a for d in dicts for a in d.values()]


# ------------------------------------------------------------------ course-named functions
@pytest.mark.parametrize("hp", [DEFAULTS, ODD], ids=["defaults", "odd"])
@pytest.mark.parametrize("style", ["flat", "plain", "mixed"])
@pytest.mark.parametrize("name", NAMES)
def test_functions_equal_course_bit_for_bit(name, style, hp):
    """Several steps of each course-named update equal the course's, in float64, bit for bit:
    parameters, state (and Adam's v_corrected / s_corrected) after every step; xpopt works in
    place (same dicts, same array objects), leaves the gradients alone and keeps FlatDicts packed.
    'mixed' is a packed FlatDict of parameters with plain-dict gradients (per-array path)."""
    params = make_params(style)
    ref_params = plain(params)
    state = init_state(xpopt, name, params)
    ref_state = init_state(course, name, ref_params)
    for got, want in zip(state, ref_state, strict=True):
        assert_dicts_equal(got, want, "initial state")
        if style != "plain":
            assert isinstance(got, FlatDict) and got.packed
    held = {k: params[k] for k in params}
    for t in range(1, STEPS + 1):
        grads = make_grads(params, style, seed=t)
        grads_before = plain(grads)
        out_params, out_state, extras = step(xpopt, name, params, grads, state, t, hp)
        ref_params, ref_state, ref_extras = step(
            course, name, ref_params, plain(grads), ref_state, t, hp
        )
        assert out_params is params
        assert all(a is b for a, b in zip(out_state, state, strict=True))
        assert all(params[k] is held[k] for k in params), (
            "an array was rebound, not updated in place"
        )
        assert_dicts_equal(params, ref_params, f"step {t} parameters")
        for i, (got, want) in enumerate(zip(state, ref_state, strict=True)):
            assert_dicts_equal(got, want, f"step {t} state {i}")
        for got, want in zip(extras, ref_extras, strict=True):
            assert_dicts_equal(got, want, f"step {t} bias-corrected moment")
        assert_dicts_equal(grads, grads_before, "gradients (must not change)")
        if isinstance(params, FlatDict):
            assert params.packed
    assert not np.array_equal(params[LAST], make_params(style)[LAST]), "the test updated nothing"


@pytest.mark.parametrize("style", ["flat", "plain"])
@pytest.mark.parametrize("name", NAMES)
def test_float32_stays_float32_and_matches_float64_reference(name, style):
    """float32 inputs give float32 parameters and state (no promotion by the Python-float
    hyperparameters), within float32 tolerance of the course run in float64 on the same values."""
    params = make_params(style, dtype=np.float32)
    ref_params = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    state = init_state(xpopt, name, params)
    ref_state = init_state(course, name, ref_params)
    for t in range(1, STEPS + 1):
        grads = make_grads(params, style, seed=10 + t)
        assert all(g.dtype == np.float32 for g in grads.values())
        _, _, extras = step(xpopt, name, params, grads, state, t, ODD)
        ref_params, ref_state, ref_extras = step(
            course,
            name,
            ref_params,
            {k: g.astype(np.float64) for k, g in grads.items()},
            ref_state,
            t,
            ODD,
        )
    for k in params:
        assert_close(params[k], ref_params[k].astype(np.float32), rtol=2e-5, atol=1e-6)
    for got, want in zip(state + extras, ref_state + ref_extras, strict=True):
        for k in want:
            assert got[k].dtype == np.float32, f"{k} was promoted to {got[k].dtype}"
            assert_close(got[k], want[k].astype(np.float32), rtol=2e-5, atol=1e-7)


# ---------------------------------------------------------------------------- objects
def make_optimizer(name: str, hp: dict, **kw):
    lr = hp["learning_rate"]
    return {
        "gd": lambda: xpopt.GD(lr, **kw),
        "momentum": lambda: xpopt.Momentum(lr, hp["beta"], **kw),
        "rmsprop": lambda: xpopt.RMSprop(lr, hp["beta2"], hp["epsilon"], **kw),
        "adam": lambda: xpopt.Adam(lr, hp["beta1"], hp["beta2"], hp["epsilon"], **kw),
    }[name]()


def object_state(name: str, state) -> tuple:
    return {"gd": (), "momentum": (state.v,), "rmsprop": (state.s,), "adam": (state.v, state.s)}[
        name
    ]


# learning rate of each step and how it is set: "attr" (opt.learning_rate = x, persists),
# "call" (update(..., learning_rate=x), this step only), None (whatever is in force)
LR_PLAN = [(None, None), ("attr", 0.02), (None, None), ("call", 0.003), (None, None), ("attr", 0.0)]


@pytest.mark.parametrize("style", ["flat", "plain"])
@pytest.mark.parametrize("name", NAMES)
def test_objects_equal_course_with_changing_learning_rate(name, style):
    """GD/Momentum/RMSprop/Adam objects give the course's results bit for bit while the
    learning rate changes between steps (attribute: persists; keyword: one step only), and
    state.t counts the steps (Adam's bias correction uses it)."""
    params = make_params(style)
    ref_params = plain(params)
    opt = make_optimizer(name, ODD)
    state = opt.init(params)
    assert state.t == 0
    ref_state = init_state(course, name, ref_params)
    lr = ODD["learning_rate"]
    for t, (how, value) in enumerate(LR_PLAN, start=1):
        grads = make_grads(params, style, seed=100 + t)
        if how == "attr":
            opt.learning_rate = value
            lr = value
            opt.update(params, grads, state)
            step_lr = lr
        elif how == "call":
            opt.update(params, grads, state, learning_rate=value)
            step_lr = value
            assert opt.learning_rate == lr, "a per-call learning rate must not persist"
        else:
            opt.update(params, grads, state)
            step_lr = lr
        assert state.t == t
        ref_params, ref_state, _ = step(
            course, name, ref_params, grads, ref_state, t, {**ODD, "learning_rate": step_lr}
        )
        assert_dicts_equal(params, ref_params, f"step {t} parameters")
        for got, want in zip(object_state(name, state), ref_state, strict=True):
            assert_dicts_equal(got, want, f"step {t} state")


@pytest.mark.parametrize("name", NAMES)
def test_objects_reusing_the_same_dicts(name):
    """The training-loop pattern: the SAME gradient FlatDict refilled in place every step
    (update() may keep a plan for these dicts), the learning rate changed between steps, then
    a course-style rebinding of a parameter (the dict is no longer packed), then bind()'s step
    function: all equal the course step for step, and the rebound array is the one updated."""
    params = make_params("flat")
    ref_params = plain(params)
    opt = make_optimizer(name, ODD)
    state = opt.init(params)
    ref_state = init_state(course, name, ref_params)
    grads = params.zeros_like("d")
    rng = np.random.default_rng(500)
    lr = ODD["learning_rate"]

    def check_step(t, do_step):
        grads.flat[...] = rng.standard_normal(grads.flat.size)
        do_step()
        assert state.t == t
        nonlocal ref_params, ref_state
        ref_params, ref_state, _ = step(
            course, name, ref_params, grads, ref_state, t, {**ODD, "learning_rate": lr}
        )
        assert_dicts_equal(params, ref_params, f"step {t} parameters")
        for got, want in zip(object_state(name, state), ref_state, strict=True):
            assert_dicts_equal(got, want, f"step {t} state")

    for t in range(1, 4):
        check_step(t, lambda: opt.update(params, grads, state))
        lr = lr / 2
        opt.learning_rate = lr
    params["W1"] = params["W1"] * 1.0  # course style: a new array, the dict unpacked
    rebound = params["W1"]
    assert not params.packed
    check_step(4, lambda: opt.update(params, grads, state))
    assert params["W1"] is rebound
    params.repack()
    run = opt.bind(params, grads, state)
    for t in range(5, 8):
        check_step(t, run)
        lr = lr * 3
        opt.learning_rate = lr


@pytest.mark.parametrize("name", NAMES)
def test_objects_equal_functions(name):
    """An optimizer object and the course-named function give identical arrays."""
    a, b = make_params("flat"), make_params("flat")
    opt = make_optimizer(name, ODD)
    state = opt.init(a)
    fstate = init_state(xpopt, name, b)
    for t in range(1, STEPS + 1):
        grads = make_grads(a, "flat", seed=200 + t)
        opt.update(a, grads, state)
        _, fstate, _ = step(xpopt, name, b, grads, fstate, t, ODD)
    assert_dicts_equal(a, b, "parameters")
    for got, want in zip(object_state(name, state), fstate, strict=True):
        assert_dicts_equal(got, want, "state")


@pytest.mark.parametrize("name", NAMES)
def test_float32_object_state_is_float32(name):
    """An optimizer's state for float32 parameters is float32 and stays so after steps."""
    params = make_params("flat", dtype=np.float32)
    opt = make_optimizer(name, ODD)
    state = opt.init(params)
    for t in range(3):
        opt.update(params, make_grads(params, "flat", seed=t), state)
    assert params.flat.dtype == np.float32
    for d in object_state(name, state):
        assert all(v.dtype == np.float32 for v in d.values())


# ---------------------------------------------------------------------- large and strided
@pytest.mark.parametrize("style", ["flat", "plain"])
@pytest.mark.parametrize("name", NAMES)
def test_large_buffers_chunked_path_bit_identical(name, style):
    """Arrays bigger than CHUNK elements (several chunks and a ragged last one) give the
    course's values bit for bit, in the functions and in the objects (reused scratch)."""
    layers = [300, 333, 1]
    params = make_params(style, layers=layers)
    total = sum(v.size for v in params.values())
    assert params["W1"].size > 3 * CHUNK and params["W1"].size % CHUNK != 0
    assert total % CHUNK != 0
    if style == "flat":
        assert params.flat.size == total
    obj_params = make_params(style, layers=layers)
    ref_params = plain(params)
    state = init_state(xpopt, name, params)
    ref_state = init_state(course, name, ref_params)
    opt = make_optimizer(name, ODD)
    ostate = opt.init(obj_params)
    for t in range(1, 4):
        grads = make_grads(params, style, seed=300 + t)
        step(xpopt, name, params, grads, state, t, ODD)
        opt.update(obj_params, grads, ostate)
        ref_params, ref_state, _ = step(course, name, ref_params, plain(grads), ref_state, t, ODD)
    assert_dicts_equal(params, ref_params, "parameters (function)")
    assert_dicts_equal(obj_params, ref_params, "parameters (object)")
    for got, ogot, want in zip(state, object_state(name, ostate), ref_state, strict=True):
        assert_dicts_equal(got, want, "state (function)")
        assert_dicts_equal(ogot, want, "state (object)")


@pytest.mark.parametrize("threads", ["2", "3"])
@pytest.mark.parametrize("name", NAMES)
def test_threaded_path_bit_identical(name, threads, monkeypatch):
    """A model of more than THREADED_MIN elements (its chunks split among 2 or 3 threads,
    unevenly for 3) still equals the course bit for bit, through functions and objects."""
    monkeypatch.setenv("XPOPT_NUM_THREADS", threads)
    n1 = THREADED_MIN // 1000 + 3
    layers = [1000, n1, 1]
    params = make_params("flat", layers=layers)
    assert params.flat.size > THREADED_MIN and params.flat.size % CHUNK != 0
    obj_params = params.copy()
    ref_params = plain(params)
    state = init_state(xpopt, name, params)
    ref_state = init_state(course, name, ref_params)
    opt = make_optimizer(name, ODD)
    ostate = opt.init(obj_params)
    grads = params.zeros_like("d")
    rng = np.random.default_rng(600)
    for t in range(1, 4):
        grads.flat[...] = rng.standard_normal(grads.flat.size)
        step(xpopt, name, params, grads, state, t, ODD)
        opt.update(obj_params, grads, ostate)
        ref_params, ref_state, _ = step(course, name, ref_params, grads, ref_state, t, ODD)
    plan = getattr(ostate, "plan", None)
    if plan is not None and hasattr(plan, "parts"):  # white-box guard: the path was threaded
        assert len(plan.parts) == int(threads)
    assert_dicts_equal(params, ref_params, "parameters (function)")
    assert_dicts_equal(obj_params, ref_params, "parameters (object)")
    for got, ogot, want in zip(state, object_state(name, ostate), ref_state, strict=True):
        assert_dicts_equal(got, want, "state (function)")
        assert_dicts_equal(ogot, want, "state (object)")


def test_chunk_boundaries_single_array_100003():
    """One 100_003-element array (not a multiple of CHUNK) of Adam: every element, including
    those at chunk boundaries and in the ragged tail, equals the course's expression."""
    n = 100_003
    assert n > CHUNK and n % CHUNK != 0
    rng = np.random.default_rng(5)
    params = {"W1": rng.standard_normal((n, 1))}
    ref_params = plain(params)
    v, s = xpopt.initialize_adam(params)
    rv, rs = course.initialize_adam({"W1": ref_params["W1"], "b1": np.zeros((1, 1))})
    rv, rs = {"dW1": rv["dW1"]}, {"dW1": rs["dW1"]}
    for t in range(1, 4):
        g = {"dW1": rng.standard_normal((n, 1)) * 10.0 ** rng.integers(-6, 3, (n, 1))}
        xpopt.update_parameters_with_adam(params, g, v, s, t, 0.05, 0.85, 0.99, 1e-7)
        # the course's per-key expressions, written out (its loop needs W and b pairs)
        rv["dW1"] = 0.85 * rv["dW1"] + (1 - 0.85) * g["dW1"]
        vc = rv["dW1"] / (1 - 0.85**t)
        rs["dW1"] = 0.99 * rs["dW1"] + (1 - 0.99) * np.power(g["dW1"], 2)
        sc = rs["dW1"] / (1 - 0.99**t)
        ref_params["W1"] = ref_params["W1"] - 0.05 * vc / (np.sqrt(sc) + 1e-7)
    assert np.array_equal(params["W1"], ref_params["W1"])
    assert np.array_equal(v["dW1"], rv["dW1"]) and np.array_equal(s["dW1"], rs["dW1"])


@pytest.mark.parametrize("name", NAMES)
def test_non_contiguous_user_arrays_update_in_place(name):
    """Strided arrays in plain dicts (a transposed W, a column slice for b, transposed
    gradients) are updated in place (the user's views see the result) and equal the course's."""
    rng = np.random.default_rng(11)
    base = {}
    params = {}
    for l, (n_out, n_in) in enumerate([(4, 3), (2, 4), (1, 2)], start=1):
        base[f"W{l}"] = rng.standard_normal((2 * n_in, n_out))
        params[f"W{l}"] = base[f"W{l}"][::2].T  # every other row, transposed
        base[f"b{l}"] = rng.standard_normal((n_out, 3))
        params[f"b{l}"] = base[f"b{l}"][:, 1:2]  # strided column
    strided = [k for k, p in params.items() if not p.flags.c_contiguous]
    assert strided == ["W1", "b1", "W2", "b2", "W3"]  # b3 (1, 1) is trivially contiguous
    ref_params = plain(params)
    state = init_state(xpopt, name, params)
    ref_state = init_state(course, name, ref_params)
    for t in range(1, 4):
        grads = {"d" + k: rng.standard_normal(p.shape[::-1]).T for k, p in params.items()}
        step(xpopt, name, params, grads, state, t, ODD)
        ref_params, ref_state, _ = step(course, name, ref_params, plain(grads), ref_state, t, ODD)
    assert_dicts_equal(params, ref_params, "parameters")
    for l in range(1, 4):
        assert np.array_equal(base[f"W{l}"][::2].T, ref_params[f"W{l}"]), (
            "update not visible in the user's array"
        )
        assert np.array_equal(base[f"b{l}"][:, 1:2], ref_params[f"b{l}"])
    for got, want in zip(state, ref_state, strict=True):
        assert_dicts_equal(got, want, "state")


# ------------------------------------------------------------------------- bad input
def snapshot(*dicts) -> list:
    """(dict, key, array object, copy of its values) for every array, to prove nothing changed."""
    return [
        (d, k, a, np.array(a, copy=True))
        for d in dicts
        for k, a in d.items()
        if isinstance(a, np.ndarray)
    ]


def assert_unchanged(snap) -> None:
    for d, k, a, before in snap:
        assert d[k] is a, f"{k} was rebound"
        assert np.array_equal(a, before, equal_nan=True), f"{k} was modified before the error"


def variant(
    d: dict, key: str, *, rename: str | None = None, shape=None, dtype=None, value=None
) -> dict:
    """A copy of ``d`` (same container style) with ``key`` renamed, re-shaped, cast, or set
    to ``value``. A FlatDict gets a new layout (so that the packed fast path is not taken
    silently) except for ``dtype``, which casts the whole buffer."""
    rng = np.random.default_rng(99)
    if isinstance(d, FlatDict) and value is None:
        if dtype is not None:
            return FlatDict(d.flat.astype(dtype), d.layout)
        layout = [
            ((rename or k) if k == key else k, (shape if (k == key and shape) else s))
            for k, s in d.layout
        ]
        out = FlatDict.empty(layout, dtype=d.flat.dtype)
        out.flat[...] = rng.standard_normal(out.flat.size)
        return out
    out = {}
    for k, a in d.items():
        if k != key:
            out[k] = np.array(a, copy=True)
        elif value is not None:
            out[k] = value
        elif rename is not None:
            out[rename] = np.array(a, copy=True)
        elif shape is not None:
            out[k] = rng.standard_normal(shape)
        else:
            out[k] = np.array(a, dtype=dtype)
    return out


def setup_call(name: str, style: str):
    """Parameters, gradients and state after one good step (so the state is not all zeros)."""
    params = make_params(style)
    state = init_state(xpopt, name, params)
    step(xpopt, name, params, make_grads(params, style, 1), state, 1, ODD)
    return params, make_grads(params, style, 2), state


BAD_ARRAYS = [
    # id, which dict, variant() kwargs, exception, message regex
    (
        "grads-missing-last-key",
        "grads",
        {"rename": "dX9"},
        KeyError,
        r"grads.*missing \['db3'\].*'dX9'",
    ),
    (
        "grads-last-shape",
        "grads",
        {"shape": (1, 2)},
        ValueError,
        r"grads\['db3'\] has shape \(1, 2\)",
    ),
    ("grads-float32", "grads", {"dtype": np.float32}, TypeError, r"one dtype.*float32.*float64"),
    ("grads-last-not-array", "grads", {"value": [[0.5]]}, TypeError, r"grads\['db3'\].*array"),
    ("state-missing-last-key", "state", {"rename": "dX9"}, KeyError, r"missing \['db3'\]"),
    ("state-last-shape", "state", {"shape": (2, 1)}, ValueError, r"\['db3'\] has shape \(2, 1\)"),
    ("state-float32", "state", {"dtype": np.float32}, TypeError, r"dtype"),
]


ARRAY_CASES = [(n, c) for c in BAD_ARRAYS for n in NAMES if not (n == "gd" and c[1] == "state")]


@pytest.mark.parametrize("style", ["flat", "plain"])
@pytest.mark.parametrize("name,case", ARRAY_CASES, ids=[f"{n}-{c[0]}" for n, c in ARRAY_CASES])
def test_bad_arrays_raise_before_any_write(name, case, style):
    """Mismatched keys, shapes, dtypes or a non-array — all in the LAST key, so an
    implementation that updates earlier keys before checking would be caught — raise a clear
    error and leave every array (parameters, gradients, state) exactly as it was."""
    _, where, kwargs, exc, pattern = case
    params, grads, state = setup_call(name, style)
    if where == "state":
        state = (variant(state[0], "d" + LAST, **kwargs),) + state[1:]
    else:
        grads = variant(grads, "d" + LAST, **kwargs)
    snap = snapshot(params, grads, *state)
    with pytest.raises(exc, match=pattern):
        step(xpopt, name, params, grads, state, 2, ODD)
    assert_unchanged(snap)


@pytest.mark.parametrize("name", NAMES)
def test_last_key_dtype_mismatch_in_plain_dict(name):
    """Only the last gradient is float32 (the others float64): TypeError naming both dtypes,
    and the earlier keys were not updated."""
    params, grads, state = setup_call(name, "plain")
    grads["d" + LAST] = grads["d" + LAST].astype(np.float32)
    snap = snapshot(params, grads, *state)
    with pytest.raises(TypeError, match=r"float32.*float64|float64.*float32"):
        step(xpopt, name, params, grads, state, 2, ODD)
    assert_unchanged(snap)


@pytest.mark.parametrize("style", ["flat", "plain"])
@pytest.mark.parametrize("name", NAMES)
def test_integer_arrays_rejected(name, style):
    """Integer parameters, gradients and state (all the same int dtype) raise TypeError
    (floating point required) and are not modified."""
    p64 = make_params(style)
    if style == "flat":
        params = FlatDict((p64.flat * 100).astype(np.int64), p64.layout)
    else:
        params = {k: (v * 100).astype(np.int64) for k, v in p64.items()}
    grads = make_grads(p64, style, 3)
    grads = (
        FlatDict((grads.flat * 100).astype(np.int64), grads.layout)
        if style == "flat"
        else {k: (v * 100).astype(np.int64) for k, v in grads.items()}
    )
    state = tuple(
        (
            FlatDict(np.ones_like(d.flat, dtype=np.int64), d.layout)
            if style == "flat"
            else {k: np.ones_like(v, dtype=np.int64) for k, v in d.items()}
        )
        for d in init_state(xpopt, name, p64)
    )
    snap = snapshot(params, grads, *state)
    with pytest.raises(TypeError, match="floating"):
        step(xpopt, name, params, grads, state, 1, ODD)
    assert_unchanged(snap)


BAD_SCALARS = [
    # id, optimizers it applies to, overrides, regex
    ("lr-negative", NAMES, {"learning_rate": -0.1}, "learning_rate"),
    ("lr-nan", NAMES, {"learning_rate": float("nan")}, "learning_rate"),
    ("lr-inf", NAMES, {"learning_rate": float("inf")}, "learning_rate"),
    ("beta-1", ("momentum",), {"beta": 1.0}, "beta"),
    ("beta-neg", ("momentum",), {"beta": -0.1}, "beta"),
    ("beta-nan", ("momentum",), {"beta": float("nan")}, "beta"),
    ("beta1-1", ("adam",), {"beta1": 1.0}, "beta1"),
    ("beta1-neg", ("adam",), {"beta1": -0.1}, "beta1"),
    ("beta2-1", ("adam", "rmsprop"), {"beta2": 1.0}, "beta2"),
    ("beta2-neg", ("adam", "rmsprop"), {"beta2": -0.1}, "beta2"),
    ("eps-0", ("adam", "rmsprop"), {"epsilon": 0.0}, "epsilon"),
    ("eps-neg", ("adam", "rmsprop"), {"epsilon": -1e-8}, "epsilon"),
    ("eps-nan", ("adam", "rmsprop"), {"epsilon": float("nan")}, "epsilon"),
]
SCALAR_CASES = [(n, c) for c in BAD_SCALARS for n in c[1]]


@pytest.mark.parametrize("style", ["flat", "plain"])
@pytest.mark.parametrize("name,case", SCALAR_CASES, ids=[f"{n}-{c[0]}" for n, c in SCALAR_CASES])
def test_bad_hyperparameters_raise_before_any_write(name, case, style):
    """learning_rate < 0 / NaN / inf, beta/beta1/beta2 outside [0, 1), epsilon <= 0 / NaN:
    ValueError naming the argument; nothing changed."""
    _, _, overrides, pattern = case
    params, grads, state = setup_call(name, style)
    snap = snapshot(params, grads, *state)
    with pytest.raises(ValueError, match=pattern):
        step(xpopt, name, params, grads, state, 2, {**ODD, **overrides})
    assert_unchanged(snap)


@pytest.mark.parametrize("t", [0, -1, 1.5, True])
@pytest.mark.parametrize("style", ["flat", "plain"])
def test_adam_bad_step_count(t, style):
    """Adam's t must be an integer >= 1 (not 0, negative, 1.5 or a bool): ValueError naming
    t, nothing changed."""
    params, grads, state = setup_call("adam", style)
    snap = snapshot(params, grads, *state)
    with pytest.raises(ValueError, match=r"\bt\b"):
        xpopt.update_parameters_with_adam(params, grads, state[0], state[1], t, 0.01)
    assert_unchanged(snap)


def test_adam_accepts_numpy_integer_step():
    """t may be a NumPy integer (e.g. from a counter array) and then equals the int result."""
    a, b = make_params("flat"), make_params("flat")
    g = make_grads(a, "flat", 4)
    va, sa = xpopt.initialize_adam(a)
    vb, sb = xpopt.initialize_adam(b)
    xpopt.update_parameters_with_adam(a, g, va, sa, np.int64(3))
    xpopt.update_parameters_with_adam(b, g, vb, sb, 3)
    assert np.array_equal(a.flat, b.flat)


def test_non_dict_inputs_raise_type_error():
    """parameters or gradients that are not dicts raise TypeError without touching anything."""
    params, grads, _ = setup_call("gd", "flat")
    snap = snapshot(params, grads)
    with pytest.raises(TypeError, match="grads"):
        xpopt.update_parameters_with_gd(params, list(grads.values()), 0.1)
    with pytest.raises(TypeError, match="parameters"):
        xpopt.update_parameters_with_gd(list(params.values()), grads, 0.1)
    with pytest.raises(TypeError, match="parameters"):
        xpopt.update_parameters_with_gd({}, {}, 0.1)
    assert_unchanged(snap)


@pytest.mark.parametrize("name", NAMES)
def test_object_bad_input_leaves_state_and_t(name):
    """A failing Optimizer.update (bad last-key shape, or a bad per-call learning rate)
    changes neither the arrays nor state.t, also after steps with the same dicts."""
    params = make_params("flat")
    opt = make_optimizer(name, ODD)
    state = opt.init(params)
    grads = make_grads(params, "flat", 1)
    opt.update(params, grads, state)
    opt.update(params, grads, state)  # the same dicts again: a kept plan may be used
    bad = variant(make_grads(params, "flat", 2), "d" + LAST, shape=(1, 2))
    snap = snapshot(params, *object_state(name, state))
    with pytest.raises(ValueError, match="db3"):
        opt.update(params, bad, state)
    grads["d" + LAST] = np.zeros((1, 2))  # the kept dict, rebound to a wrong shape
    with pytest.raises(ValueError, match="db3"):
        opt.update(params, grads, state)
    with pytest.raises(ValueError, match="learning_rate"):
        opt.update(params, make_grads(params, "flat", 3), state, learning_rate=-1.0)
    assert state.t == 2
    assert_unchanged(snap)


@pytest.mark.parametrize("name", NAMES)
def test_object_hyperparameters_validated(name):
    """Constructors reject bad hyperparameters; setting a bad learning rate raises and keeps
    the previous one."""
    bad = {
        "gd": [{"learning_rate": -1.0}],
        "momentum": [{"beta": 1.0}, {"beta": -0.1}],
        "rmsprop": [{"beta2": 1.0}, {"epsilon": 0.0}],
        "adam": [{"beta1": 1.0}, {"beta2": -0.1}, {"epsilon": -1.0}],
    }[name]
    for overrides in bad:
        with pytest.raises(ValueError, match=next(iter(overrides))):
            make_optimizer(name, {**ODD, **overrides})
    opt = make_optimizer(name, ODD)
    for value in (-0.5, float("nan")):
        with pytest.raises(ValueError, match="learning_rate"):
            opt.learning_rate = value
    assert opt.learning_rate == ODD["learning_rate"]


@pytest.mark.gpu
@pytest.mark.parametrize("name", NAMES)
def test_numpy_and_cupy_mixed_raise(name):
    """A CuPy gradient in the last key with NumPy parameters: TypeError saying they are mixed,
    raised before any NumPy array changes."""
    require_gpu()
    import cupy

    params, grads, state = setup_call(name, "plain")
    grads["d" + LAST] = cupy.asarray(grads["d" + LAST])
    snap = snapshot(params, *state)
    with pytest.raises(TypeError, match="mixed"):
        step(xpopt, name, params, grads, state, 2, ODD)
    assert_unchanged(snap)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "unfused"])
@pytest.mark.parametrize("name", NAMES)
def test_objects_on_xp_equal_course(xp, name, fused):
    """On each array module (CuPy: the fused kernel, built with --fmad=false, and the unfused
    twin) the optimizer objects reproduce the course's float64 arithmetic bit for bit."""
    params = make_params("flat")
    ref_params = plain(params)
    params = params.map_buffer(xp.asarray)
    opt = make_optimizer(name, ODD, fused=fused)
    state = opt.init(params)
    ref_state = init_state(course, name, ref_params)
    for t in range(1, 4):
        grads = make_grads(ref_params, "plain", seed=400 + t)
        dev_grads = FlatDict.pack({k: xp.asarray(g) for k, g in grads.items()})
        opt.update(params, dev_grads, state)
        ref_params, ref_state, _ = step(course, name, ref_params, grads, ref_state, t, ODD)
    for k in ref_params:
        assert_close(params[k], ref_params[k], exact=True)
    for got, want in zip(object_state(name, state), ref_state, strict=True):
        for k in want:
            assert_close(got[k], want[k], exact=True)


# ------------------------------------------------------------------------ allocation
ARRAY_ELEMENTS = 1_000_000
# A step may allocate Python objects (views of each chunk, the scalars dict): a few KiB.
# One float64 temporary of a single CHUNK is 256 KiB, of the whole model 8 MB; 64 KiB is
# well above the bookkeeping and well below either, so any per-step array temporary fails.
STEP_ALLOCATION_BOUND = 64 * 1024


def peak_allocation(fn, repeats: int = 3) -> int:
    """Peak bytes traced by tracemalloc above the starting level while calling fn repeatedly."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start, _ = tracemalloc.get_traced_memory()
        for _ in range(repeats):
            fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - start


@pytest.mark.parametrize("size", ["1M", "threaded"])
@pytest.mark.parametrize("name", ["adam", "momentum", "rmsprop", "gd"])
def test_steps_allocate_only_reusable_scratch(name, size, monkeypatch):
    """After a warm-up step (which sizes the reusable scratch), further steps of an optimizer
    object on a 1M-element float64 FlatDict (and one just over THREADED_MIN, on 2 threads)
    allocate less than STEP_ALLOCATION_BOUND (64 KiB, under 1% of one 8 MB array and a
    quarter of a single chunk-sized temporary)."""
    monkeypatch.setenv("XPOPT_NUM_THREADS", "2")
    rows = 1000 if size == "1M" else THREADED_MIN // 999 + 1
    layout = [("W1", (rows, 999)), ("b1", (rows, 1))]
    params = FlatDict.empty(layout, fill=0.5)
    assert params.flat.size == (ARRAY_ELEMENTS if size == "1M" else rows * 1000)
    grads = params.zeros_like("d")
    grads.flat[...] = np.random.default_rng(0).standard_normal(params.flat.size)
    opt = make_optimizer(name, ODD)
    state = opt.init(params)
    opt.update(params, grads, state)  # warm-up: scratch allocated here
    peak = peak_allocation(lambda: opt.update(params, grads, state))
    assert peak < STEP_ALLOCATION_BOUND, f"{name} step allocated {peak} bytes"
    assert state.t == 4


def test_allocation_measurement_detects_temporaries():
    """Control for the test above: the course's Adam step (new arrays per expression) on the
    same 1M elements is measured far above the bound, so the measurement can fail."""
    params = {"W1": np.full((1000, 999), 0.5), "b1": np.full((1000, 1), 0.5)}
    grads = {"dW1": np.ones((1000, 999)), "db1": np.ones((1000, 1))}
    v, s = course.initialize_adam(params)
    peak = peak_allocation(lambda: course.update_parameters_with_adam(params, grads, v, s, 1), 1)
    assert peak > ARRAY_ELEMENTS * 8 > 100 * STEP_ALLOCATION_BOUND


# ------------------------------------------- course-named functions: the plans they keep
@pytest.fixture
def plans_made(monkeypatch):
    """Counts the plans the course-named functions make (their cache starts empty)."""
    from xpopt.optim import plan as plan_module

    made = []

    class Counted(plan_module.UpdatePlan):
        def __init__(self, *args, **kwargs):
            made.append(1)
            super().__init__(*args, **kwargs)

    plan_module.course_plans.clear()
    monkeypatch.setattr(plan_module, "UpdatePlan", Counted)
    yield made
    plan_module.course_plans.clear()


@pytest.mark.parametrize("style", ["flat", "plain"])
@pytest.mark.parametrize("name", NAMES)
def test_notebook_loop_plans_once_with_new_gradients_each_call(name, style, plans_made):
    """The notebook's loop: a NEW gradients dict from the backward pass at every call. The
    function validates and plans once; each later call checks the new gradients in
    O(number of keys) and rebinds to them. The course's bits, every step."""
    X, Y = xpopt.load_moons()
    X, Y = xpopt.to_host(X), xpopt.to_host(Y)
    batches = course.random_mini_batches(X, Y, 64, 11)
    params = xpopt.initialize_parameters([2, 5, 2, 1])
    params = params if style == "flat" else plain(params)
    ref_params = plain(params)
    state = init_state(xpopt, name, params)
    ref_state = init_state(course, name, ref_params)
    for t, (bx, by) in enumerate(batches * 2, start=1):
        if style == "flat":
            _, caches = xpopt.forward_propagation(bx, params)
            grads = xpopt.backward_propagation(bx, by, caches)
        else:
            _, caches = course.forward_propagation(bx, params)
            grads = course.backward_propagation(bx, by, caches, params)
        step(xpopt, name, params, grads, state, t, ODD)
        _, caches = course.forward_propagation(bx, ref_params)
        ref_grads = course.backward_propagation(bx, by, caches, ref_params)
        ref_params, ref_state, _ = step(course, name, ref_params, ref_grads, ref_state, t, ODD)
        assert_dicts_equal(params, ref_params, f"step {t} parameters")
        for got, want in zip(state, ref_state, strict=True):
            assert_dicts_equal(got, want, f"step {t} state")
    assert len(plans_made) == 1


def _rebound_after_a_call(name, params, grads, state):
    """One good call (a plan is kept), then a new gradients dict for the next."""
    step(xpopt, name, params, grads, state, 1, ODD)
    return {k: np.array(v, copy=True) for k, v in grads.items()}


@pytest.mark.parametrize("name", NAMES)
def test_kept_plan_new_gradients_over_written_memory_refused(name, plans_made):
    """New gradients that ARE (or view) the parameters or state: the cheap check cannot
    prove them apart, the full one refuses them; nothing changes."""
    params = make_params("plain")
    state = init_state(xpopt, name, params)
    grads = _rebound_after_a_call(name, params, make_grads(params, "plain", 1), state)
    grads["d" + LAST] = params[LAST]  # the very array the update writes
    snap = [(d, k, a.copy()) for d in (params, *state) for k, a in d.items()]
    with pytest.raises(ValueError, match="share memory"):
        step(xpopt, name, params, grads, state, 2, ODD)
    assert all(np.array_equal(d[k], before) for d, k, before in snap), "changed before the error"
    grads["d" + LAST] = params[LAST][...]  # a view of it
    with pytest.raises(ValueError, match="share memory"):
        step(xpopt, name, params, grads, state, 2, ODD)

    flat = make_params("flat")
    fstate = init_state(xpopt, name, flat)
    _rebound_after_a_call(name, flat, make_grads(flat, "flat", 1), fstate)
    over = FlatDict(flat.flat, [("d" + k, s) for k, s in flat.layout])  # grads over params
    with pytest.raises(ValueError, match="share memory"):
        step(xpopt, name, flat, over, fstate, 2, ODD)


@pytest.mark.parametrize("name", NAMES)
def test_kept_plan_new_gradients_of_another_kind_rechecked(name, plans_made):
    """A new gradients dict of another dtype, shape or key set goes through the full check
    (and is refused as always); a good one after it is accepted again."""
    params = make_params("flat")
    state = init_state(xpopt, name, params)
    grads = make_grads(params, "flat", 1)
    step(xpopt, name, params, grads, state, 1, ODD)
    wrong = FlatDict(grads.flat.astype(np.float32), grads.layout)
    with pytest.raises(TypeError, match="dtype"):
        step(xpopt, name, params, wrong, state, 2, ODD)
    short = {k: v for k, v in plain(grads).items() if k != "d" + LAST}
    with pytest.raises(KeyError):
        step(xpopt, name, params, short, state, 2, ODD)
    bent = plain(grads)
    bent["d" + LAST] = bent["d" + LAST].reshape(-1)
    with pytest.raises(ValueError, match="shape"):
        step(xpopt, name, params, bent, state, 2, ODD)
    step(xpopt, name, params, make_grads(params, "flat", 2), state, 2, ODD)


@pytest.mark.parametrize("name", NAMES)
def test_kept_plan_sees_rebinding_and_read_only_arrays(name, plans_made):
    """Between two calls the course's own style rebinds a parameter: the next update lands
    in the array the dict holds now. A parameter made read-only after a call is refused."""
    params = make_params("flat")
    state = init_state(xpopt, name, params)
    step(xpopt, name, params, make_grads(params, "flat", 1), state, 1, ODD)
    params[LAST] = params[LAST] * 1.0  # the course's way: a new array
    new = params[LAST]
    before = new.copy()
    step(xpopt, name, params, make_grads(params, "flat", 2), state, 2, ODD)
    assert params[LAST] is new and not np.array_equal(new, before)
    assert len(plans_made) == 2
    params[LAST].flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        step(xpopt, name, params, make_grads(params, "flat", 3), state, 3, ODD)


@pytest.mark.parametrize("name", NAMES)
def test_kept_plan_checks_new_hyperparameters_in_the_arrays_dtype(name, plans_made):
    """A learning rate that is finite in double but infinite in float32, after good calls on
    the same float32 dicts: refused (the plan's last checked values differ), nothing changes."""
    params = make_params("flat", dtype=np.float32)
    state = init_state(xpopt, name, params)
    grads = make_grads(params, "flat", 1)
    step(xpopt, name, params, grads, state, 1, ODD)
    before = params.flat.copy()
    with pytest.raises(ValueError, match="learning_rate"):
        step(xpopt, name, params, grads, state, 2, dict(ODD, learning_rate=1e39))
    assert np.array_equal(params.flat, before)
    assert len(plans_made) == 1


def test_course_plans_bounded_and_per_thread(plans_made):
    """At most CoursePlans.size plans are kept (each holds its arrays); another thread keeps
    its own (a plan's scratch is not shared between threads)."""
    import threading

    from xpopt.optim.plan import CoursePlans, course_plans

    for seed in range(CoursePlans.size + 3):
        params = make_params("flat")
        xpopt.update_parameters_with_gd(params, make_grads(params, "flat", seed), 0.1)
    assert len(course_plans.plans) == CoursePlans.size
    seen = []
    worker = threading.Thread(target=lambda: seen.append(len(course_plans.plans)))
    worker.start()
    worker.join()
    assert seen == [0]
