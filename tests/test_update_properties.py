"""Property test (hypothesis): every update entry point either refuses its input with a clear
error and changes nothing, or gives the course's result.

Random dtypes (float16/32/64, int64, big-endian, one array of another dtype), containers
(plain dicts, packed FlatDicts, in any key order), flags (read-only, strided, Fortran
order), shapes (including one that does not match), keys (missing, extra), values (with
NaN and inf), hyperparameters (including values that are valid in double but not in
float32) and aliasing (one dict as ``v`` and ``s``, a state array over a parameter's memory)
go to the course-named ``update_parameters_with_*`` and to the optimizer objects' ``update``
and ``bind``, fused and not.

The expectation is computed here, independently of xpopt: WHETHER the input is acceptable
(the contract of :mod:`xpopt.validation`, restated), and if it is, the RESULT from
COURSE.md's formulas in NumPy, in the arrays' dtype with each host scalar (``lr``,
``1 - beta``, ``1 - beta**t``, ...) computed in double and cast once, in the NumPy twins'
order of operations, so equal bit for bit (NaN payloads aside).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import xpopt
from xpopt.flat import FlatDict

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

RULES = ("gd", "momentum", "rmsprop", "adam")
SLOTS = {"gd": (), "momentum": ("v",), "rmsprop": ("s",), "adam": ("v", "s")}
ENTRIES = ("function", "update", "update-unfused", "bind", "bind-unfused")
DTYPES = ("float64", "float32", "float16", "int64", ">f8", ">f4")
SUPPORTED = (np.dtype(np.float64), np.dtype(np.float32))

# good values, and values that are wrong in double or only once cast to float32
LRS = ([0.0, 1e-3, 0.05, 1.0, 1e-50], [1e39, 1e300, -0.1, math.nan, math.inf])
BETAS = ([0.0, 0.5, 0.9, 0.999, 0.99999994], [1 - 1e-9, 1.0, -0.1, math.nan])
EPSILONS = ([1e-8, 1e-7, 1.0, 1e-45], [1e-50, 1e300, 0.0, -1e-8, math.nan, math.inf])
STEPS = [1, 2, 7, 1000]


# ------------------------------------------------------------------------ the oracle
def in_double_ok(rule, hp, t) -> bool:
    def finite_nonneg(x):
        return math.isfinite(x) and x >= 0

    def beta_ok(x):
        return 0.0 <= x < 1.0

    if not finite_nonneg(hp["lr"]):
        return False
    if rule == "momentum" and not beta_ok(hp["beta"]):
        return False
    if rule in ("rmsprop", "adam"):
        if not beta_ok(hp["beta2"]) or not (math.isfinite(hp["eps"]) and hp["eps"] > 0):
            return False
    if rule == "adam" and (not beta_ok(hp["beta1"]) or t < 1):
        return False
    return True


def host_scalars(rule, hp, t) -> dict:
    """The kernels' scalars, in double, as COURSE.md defines them."""
    out = {"lr": hp["lr"]}
    if rule == "momentum":
        out.update(beta=hp["beta"], one_minus_beta=1 - hp["beta"])
    if rule in ("rmsprop", "adam"):
        out.update(beta2=hp["beta2"], one_minus_beta2=1 - hp["beta2"], eps=hp["eps"])
    if rule == "adam":
        out.update(
            beta1=hp["beta1"],
            one_minus_beta1=1 - hp["beta1"],
            bias1=1 - hp["beta1"] ** t,
            bias2=1 - hp["beta2"] ** t,
        )
    return out


def in_dtype_ok(rule, hp, t, dtype) -> bool:
    """Every scalar as cast to the arrays' dtype: finite, lr >= 0, epsilon > 0, betas in
    [0, 1), 1 - beta > 0, bias corrections > 0 (at t = 1, the smallest, and at t)."""
    with np.errstate(all="ignore"):
        for step in {1, t}:
            for name, value in host_scalars(rule, hp, step).items():
                x = float(dtype.type(value))
                if not math.isfinite(x):
                    return False
                if name == "lr" and x < 0:
                    return False
                if name.startswith(("eps", "one_minus", "bias")) and not x > 0:
                    return False
                if name.startswith("beta") and not 0 <= x < 1:
                    return False
    return True


def reference(rule, params, grads, state, hp, t, dtype):
    """COURSE.md's update in ``dtype``, in the twins' order; new arrays."""
    c = {k: dtype.type(v) for k, v in host_scalars(rule, hp, t).items()}
    P, V, S, VC, SC = {}, {}, {}, {}, {}
    with np.errstate(all="ignore"):
        for k, W in params.items():
            W = np.array(W, dtype=dtype)
            g = np.array(grads["d" + k], dtype=dtype)
            if rule == "gd":
                P[k] = W - g * c["lr"]
            elif rule == "momentum":
                v = np.array(state[0]["d" + k], dtype=dtype)
                v = v * c["beta"] + g * c["one_minus_beta"]
                P[k], V["d" + k] = W - v * c["lr"], v
            elif rule == "rmsprop":
                s = np.array(state[0]["d" + k], dtype=dtype)
                s = s * c["beta2"] + (g * g) * c["one_minus_beta2"]
                P[k], S["d" + k] = W - (g * c["lr"]) / (np.sqrt(s) + c["eps"]), s
            else:
                v = np.array(state[0]["d" + k], dtype=dtype)
                s = np.array(state[1]["d" + k], dtype=dtype)
                v = v * c["beta1"] + g * c["one_minus_beta1"]
                s = s * c["beta2"] + (g * g) * c["one_minus_beta2"]
                vc, sc = v / c["bias1"], s / c["bias2"]
                P[k] = W - (vc * c["lr"]) / (np.sqrt(sc) + c["eps"])
                V["d" + k], S["d" + k], VC["d" + k], SC["d" + k] = v, s, vc, sc
    state_out = {"gd": (), "momentum": (V,), "rmsprop": (S,), "adam": (V, S)}[rule]
    return P, state_out, (VC, SC)


def same_bits(actual, desired) -> bool:
    a, d = np.asarray(actual), np.asarray(desired)
    if a.dtype != d.dtype or a.shape != d.shape:
        return False
    nan_a, nan_d = np.isnan(a), np.isnan(d)
    if not np.array_equal(nan_a, nan_d):
        return False
    bits = {4: np.uint32, 8: np.uint64}[a.dtype.itemsize]
    return np.array_equal(
        np.ascontiguousarray(a).view(bits)[~nan_a], np.ascontiguousarray(d).view(bits)[~nan_d]
    )


# ---------------------------------------------------------------------- the inputs
@st.composite
def cases(draw):
    rule = draw(st.sampled_from(RULES))
    entry = draw(st.sampled_from(ENTRIES))
    base_dtype = np.dtype(draw(st.sampled_from(DTYPES[:2] * 6 + DTYPES)))
    n_layers = draw(st.integers(1, 2))
    dims = [draw(st.integers(1, 3)) for _ in range(n_layers + 1)]
    layout = []
    for l in range(1, n_layers + 1):
        layout += [(f"W{l}", (dims[l], dims[l - 1])), (f"b{l}", (dims[l], 1))]
    keys = [k for k, _ in layout]
    shapes = dict(layout)

    def pick(values):  # mostly a good value
        good, bad = values
        return draw(st.sampled_from(good if draw(st.integers(0, 11)) else bad))

    hp = {
        "lr": pick(LRS),
        "beta": pick(BETAS),
        "beta1": pick(BETAS),
        "beta2": pick(BETAS),
        "eps": pick(EPSILONS),
    }
    t = draw(st.sampled_from(STEPS))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    roles = ["params", "grads", *SLOTS[rule]]
    problems = []  # why the input must be refused (empty: it must be accepted)

    def values(shape, role):
        x = rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 3)
        if role == "s":
            x = np.abs(x)
        if draw(st.integers(0, 5)) == 0:  # a NaN or an inf here and there
            x.reshape(-1)[rng.integers(x.size)] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        return x

    dicts = {}
    for role in roles:
        prefix = "" if role == "params" else "d"
        order = draw(st.permutations(keys))
        container = draw(st.sampled_from(["plain", "plain", "flat"]))
        d = {}
        for k in order:
            shape = shapes[k]
            dtype = base_dtype
            if container == "plain" and draw(st.integers(0, 79)) == 0:  # another dtype
                dtype = np.dtype(draw(st.sampled_from(DTYPES)))
            if container == "plain" and draw(st.integers(0, 79)) == 0:  # another shape
                shape = (shape[0] + 1, shape[1])
            x = values(shape, role)
            with np.errstate(all="ignore"):
                if dtype.kind == "i":
                    x = np.nan_to_num(x, posinf=7, neginf=-7).astype(dtype)
                else:
                    x = x.astype(dtype)
            layout_kind = draw(st.sampled_from(["c", "c", "c", "strided", "fortran"]))
            if container == "plain" and layout_kind == "strided":
                big = np.zeros((shape[0] * 2, shape[1] + 1), dtype=dtype)
                view = big[::2, 1:]
                view[...] = x
                x = view
            elif container == "plain" and layout_kind == "fortran":
                x = np.asfortranarray(x)
            d[prefix + k] = x
        if container == "flat":
            d = FlatDict.pack(d)
            if draw(st.integers(0, 14)) == 0:
                d.flat.flags.writeable = False
        elif draw(st.integers(0, 14)) == 0:
            d[draw(st.sampled_from(sorted(d)))].flags.writeable = False
        if draw(st.integers(0, 39)) == 0:  # a key missing, or one too many
            if draw(st.booleans()) and len(d) > 1:
                del d[draw(st.sampled_from(sorted(d)))]
            else:
                d[prefix + "X9"] = np.zeros((1, 1), dtype=base_dtype)
        dicts[role] = d

    if rule == "adam" and draw(st.integers(0, 14)) == 0:
        dicts["s"] = dicts["v"]
        problems.append("v is s")
    if rule != "gd" and draw(st.integers(0, 14)) == 0:
        slot = SLOTS[rule][0]
        k = draw(st.sampled_from(keys))
        if (
            ("d" + k) in dicts[slot]
            and k in dicts["params"]
            and not isinstance(dicts[slot], FlatDict)
        ):
            dicts[slot]["d" + k] = dicts["params"][k][...]  # a view over the parameter
            problems.append("state over a parameter's memory")

    params = dicts["params"]
    expected = {"d" + k for k in params}
    if any(set(dicts[r]) != expected for r in roles[1:]):
        problems.append("keys")
    elif any(dicts[r]["d" + k].shape != a.shape for r in roles[1:] for k, a in params.items()):
        problems.append("shape")
    for r in roles:
        if r == "grads":
            continue
        d = dicts[r]
        if (isinstance(d, FlatDict) and not d.flat.flags.writeable) or any(
            not a.flags.writeable for a in d.values()
        ):
            problems.append("read-only")
    dtypes = {a.dtype for d in dicts.values() for a in d.values()}
    if len(dtypes) > 1:
        problems.append("mixed dtypes")
    elif dtypes.pop() not in SUPPORTED:
        problems.append("dtype")
    if not in_double_ok(rule, hp, t):
        problems.append("hyperparameter")
    elif base_dtype in SUPPORTED and not in_dtype_ok(rule, hp, t, base_dtype):
        problems.append("hyperparameter in dtype")
    return rule, entry, dicts, hp, t, base_dtype, problems


# ------------------------------------------------------------------------ the property
def call(rule, entry, dicts, hp, t):
    params, grads = dicts["params"], dicts["grads"]
    state = tuple(dicts[s] for s in SLOTS[rule])
    if entry == "function":
        if rule == "gd":
            return xpopt.update_parameters_with_gd(params, grads, hp["lr"]), None
        if rule == "momentum":
            return xpopt.update_parameters_with_momentum(
                params, grads, state[0], hp["beta"], hp["lr"]
            ), None
        if rule == "rmsprop":
            return xpopt.update_parameters_with_rmsprop(
                params, grads, state[0], hp["lr"], hp["beta2"], hp["eps"]
            ), None
        return xpopt.update_parameters_with_adam(
            params, grads, state[0], state[1], t, hp["lr"], hp["beta1"], hp["beta2"], hp["eps"]
        ), None
    fused = not entry.endswith("unfused")
    opt = {
        "gd": lambda: xpopt.GD(hp["lr"], fused=fused),
        "momentum": lambda: xpopt.Momentum(hp["lr"], hp["beta"], fused=fused),
        "rmsprop": lambda: xpopt.RMSprop(hp["lr"], hp["beta2"], hp["eps"], fused=fused),
        "adam": lambda: xpopt.Adam(hp["lr"], hp["beta1"], hp["beta2"], hp["eps"], fused=fused),
    }[rule]()
    ostate = xpopt.OptimizerState(t=t - 1, **dict(zip(SLOTS[rule], state, strict=True)))
    if entry.startswith("update"):
        opt.update(params, grads, ostate)
    else:
        opt.bind(params, grads, ostate)()
    assert ostate.t == t
    return None, ostate


@settings(
    max_examples=500,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(cases())
def test_refused_with_nothing_changed_or_the_course_result(case):
    rule, entry, dicts, hp, t, dtype, problems = case
    hypothesis.event(f"refused {sorted(set(problems))}" if problems else f"accepted ({dtype})")
    arrays = [(d, k, a, np.array(a, copy=True)) for d in dicts.values() for k, a in d.items()]
    refs = None
    if not problems:
        state = tuple(dicts[s] for s in SLOTS[rule])
        refs = reference(rule, dicts["params"], dicts["grads"], state, hp, t, dtype)
    with np.errstate(all="ignore"):
        if problems:
            with pytest.raises((ValueError, TypeError, KeyError)):
                call(rule, entry, dicts, hp, t)
            for d, k, a, before in arrays:
                assert d[k] is a, f"{k} was rebound"
                assert a.dtype == before.dtype and np.array_equal(a, before, equal_nan=True), (
                    f"{k} changed before the error ({problems})"
                )
            return
        out, _ = call(rule, entry, dicts, hp, t)
    want_params, want_state, (want_vc, want_sc) = refs
    for k, w in want_params.items():
        assert same_bits(dicts["params"][k], w), f"{rule} {entry} {k}: not the course's result"
    for slot, w in zip(SLOTS[rule], want_state, strict=True):
        for k in w:
            assert same_bits(dicts[slot][k], w[k]), f"{rule} {entry} {slot}[{k}]"
    for d, k, a, before in arrays:
        if d is dicts["grads"]:
            assert np.array_equal(a, before, equal_nan=True), f"gradient {k} changed"
    if entry == "function" and rule == "adam":
        _, _, _, vc, sc = out
        for k in want_vc:
            assert same_bits(vc[k], want_vc[k]) and same_bits(sc[k], want_sc[k]), k
