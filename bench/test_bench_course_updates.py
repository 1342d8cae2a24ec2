"""Group 7: one call of each course-named update on the course's network (CPU).

The notebook calls ``update_parameters_with_gd / momentum / adam`` (and the lectures'
RMSprop) once per mini-batch, with the gradients that ``backward_propagation`` has just
returned: a NEW dict at every call. On ``[2, 5, 2, 1]`` (23 parameters, float64) every call
updates a few hundred bytes: its cost is the per-call work of the function itself. Side by
side, one table per rule:

- the course's own update (``course_code``) on the course's dicts, the gradients from the
  course's ``backward_propagation`` (plain dicts);
- xpopt's function of the same name on xpopt's dicts (``initialize_parameters`` and
  ``initialize_*`` give packed FlatDicts), the gradients from ``xpopt.backward_propagation``
  (a new packed FlatDict each);
- xpopt's function on the course's dicts and gradients (plain dicts): a student who swaps
  only the update.

Each call gets the next of 64 gradient dicts computed beforehand on the moons' first
mini-batches (each a distinct object, as a loop's are), so the timing holds the update alone.
Adam's ``t`` grows by one per call.

Guard, outside the timing: replaying the same number of calls, the xpopt contestant's
parameters and state are bit for bit the course's.
"""

from __future__ import annotations

import numpy
import pytest

import course_code
import harness
import xpopt

DIMS = [2, 5, 2, 1]
LR, BETA, BETA1, BETA2, EPS, BATCH = 0.0007, 0.9, 0.9, 0.999, 1e-8, 64
POOL = 64  # distinct gradient dicts, used in turn
RULES = ("gd", "momentum", "rmsprop", "adam")
CONTESTANTS = {
    "course-numpy": "course update_parameters_with_{rule} (NumPy, plain dicts)",
    "xpopt-numpy": "xpopt.update_parameters_with_{rule} (xpopt's dicts: packed FlatDicts)",
    "xpopt-numpy-plain": "xpopt.update_parameters_with_{rule} (the course's plain dicts)",
}
ROUNDS, ITERATIONS = 20, 250


@pytest.fixture(scope="module")
def gradient_pools():
    """``POOL`` gradient dicts from each library's backward pass at the initial parameters,
    cycling over the first epoch's mini-batches: ``{"course": [...], "xpopt": [...]}``."""
    X, Y = xpopt.load_moons()
    X, Y = xpopt.to_host(X), xpopt.to_host(Y)
    batches = course_code.random_mini_batches(X, Y, BATCH, 11)
    ours = xpopt.to_host(xpopt.initialize_parameters(DIMS))
    theirs = course_code.initialize_parameters(DIMS)
    pools = {"course": [], "xpopt": []}
    for i in range(POOL):
        bx, by = batches[i % len(batches)]
        a, caches = course_code.forward_propagation(bx, theirs)
        pools["course"].append(course_code.backward_propagation(bx, by, caches, theirs))
        a, caches = xpopt.forward_propagation(bx, ours)
        pools["xpopt"].append(xpopt.backward_propagation(bx, by, caches))
    for c, x in zip(pools["course"], pools["xpopt"], strict=True):  # the same gradients, bitwise
        assert all(numpy.array_equal(c[k], x[k]) for k in c)
    return pools


def _start(contestant: str):
    """Parameters and state dicts (a list) of the contestant's kind, and its library."""
    if contestant == "xpopt-numpy":
        params = xpopt.to_host(xpopt.initialize_parameters(DIMS))
        lib, init = xpopt, xpopt
    else:
        params = course_code.initialize_parameters(DIMS)
        lib, init = (course_code if contestant == "course-numpy" else xpopt), course_code
    return lib, params, init


def _stepper(rule: str, contestant: str, pool: list):
    """``(step, dicts)``: ``step()`` is one call of the contestant's update with the next
    gradients; ``dicts()`` the parameters and state after the calls so far."""
    lib, params, init = _start(contestant)
    if rule == "momentum":
        state = [init.initialize_velocity(params)]
    elif rule == "rmsprop":
        state = [init.initialize_rmsprop(params)]
    elif rule == "adam":
        state = list(init.initialize_adam(params))
    else:
        state = []
    n, box = len(pool), {"i": 0, "params": params, "state": state}
    update = getattr(lib, f"update_parameters_with_{rule}")

    def step():
        i = box["i"]
        box["i"] = i + 1
        grads = pool[i % n]
        if rule == "gd":
            box["params"] = update(box["params"], grads, LR)
        elif rule == "momentum":
            box["params"], state[0] = update(box["params"], grads, state[0], BETA, LR)
        elif rule == "rmsprop":
            box["params"], state[0] = update(box["params"], grads, state[0], LR, BETA2, EPS)
        else:
            box["params"], state[0], state[1], _, _ = update(
                box["params"], grads, state[0], state[1], i + 1, LR, BETA1, BETA2, EPS
            )

    return step, lambda: (box["i"], [box["params"], *state])


@pytest.mark.parametrize("contestant", list(CONTESTANTS))
@pytest.mark.parametrize("rule", RULES)
def test_course_update(benchmark, gradient_pools, rule, contestant):
    pool = gradient_pools["xpopt" if contestant == "xpopt-numpy" else "course"]
    step, dicts = _stepper(rule, contestant, pool)
    harness.measure(
        benchmark,
        step,
        group=f"course-named update: {rule}, {DIMS}, float64, one call",
        contestant=CONTESTANTS[contestant].format(rule=rule),
        device="cpu",
        rounds=ROUNDS,
        warmup=1,
        iterations=1 if harness.QUICK else ITERATIONS,
        baseline=contestant == "course-numpy",
        parameters=23,
    )
    if contestant == "course-numpy":
        return
    calls, got = dicts()
    replay, want = _stepper(rule, "course-numpy", gradient_pools["course"])
    for _ in range(calls):
        replay()
    _, want = want()
    for mine, theirs in zip(got, want, strict=True):  # the guard: the course's bits, state included
        assert sorted(mine) == sorted(theirs)
        for key in theirs:
            assert numpy.array_equal(mine[key], theirs[key]), f"{rule}: {key} differs"
