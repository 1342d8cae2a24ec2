"""Group 6: the notebook's own loop, written with the course-named functions (CPU).

A student who follows the notebook calls the functions one by one, not ``model()``::

    parameters = initialize_parameters(layers_dims)
    v, s = initialize_adam(parameters)                    # or initialize_velocity
    for i in range(num_epochs):
        seed += 1
        for X_b, Y_b in random_mini_batches(X, Y, 64, seed):
            a3, caches = forward_propagation(X_b, parameters)
            cost_total += compute_cost(a3, Y_b)
            grads = backward_propagation(X_b, Y_b, caches)
            t += 1
            parameters, v, s, _, _ = update_parameters_with_adam(parameters, grads, v, s, t, ...)

That loop is timed twice, side by side: on the course's NumPy code (``course_code``) and on
the ``xpopt.*`` functions of the same names, for "gd", "momentum" and "adam" on the course's
network (``[2, 5, 2, 1]``, moons, batches of 64, float64, the course's learning rate), 600
epochs (3,000 steps). Every call sees arrays of a few hundred values: the per-call cost of
each function is the whole cost.

Guard, outside the timing: the final parameters of the two loops are bit for bit the same.

Each xpopt row also records (``extra_info``) the share of its loop spent in the optimizer's
``update_parameters_with_*`` and in the network and data functions, from one instrumented run
outside the timing (``optimizer_share``, ``network_data_share``).
"""

from __future__ import annotations

import time

import numpy
import pytest

import course_code
import harness
import xpopt

EPOCHS = 20 if harness.QUICK else 600
DIMS = [2, 5, 2, 1]
LR, BETA, BETA1, BETA2, EPS, BATCH = 0.0007, 0.9, 0.9, 0.999, 1e-8, 64

CONTESTANTS = {
    "course-numpy": "course's functions (NumPy)",
    "xpopt-numpy": "xpopt's course-named functions (NumPy)",
}

_finals: dict[tuple[str, str], dict] = {}


@pytest.fixture(scope="module")
def moons():
    """The course's data set, (2, 300) and (1, 300) float64, on the host."""
    X, Y = xpopt.load_moons()
    return xpopt.to_host(X), xpopt.to_host(Y)


def notebook_loop(lib, X, Y, optimizer, epochs=EPOCHS):
    """The notebook's loop on ``lib``'s functions: ``course_code``, ``xpopt``, or a stand-in
    for ``xpopt`` that times its calls. Only the backward pass is called differently: the
    course's takes the parameters too, xpopt's reads them from the caches."""
    parameters = lib.initialize_parameters(DIMS)
    if optimizer == "momentum":
        v = lib.initialize_velocity(parameters)
    elif optimizer == "adam":
        v, s = lib.initialize_adam(parameters)
    by_course = lib is course_code
    seed, t = 10, 0
    for _ in range(epochs):
        seed += 1
        cost_total = 0
        for batch_X, batch_Y in lib.random_mini_batches(X, Y, BATCH, seed):
            a3, caches = lib.forward_propagation(batch_X, parameters)
            cost_total += lib.compute_cost(a3, batch_Y)
            if by_course:
                grads = lib.backward_propagation(batch_X, batch_Y, caches, parameters)
            else:
                grads = lib.backward_propagation(batch_X, batch_Y, caches)
            if optimizer == "gd":
                parameters = lib.update_parameters_with_gd(parameters, grads, LR)
            elif optimizer == "momentum":
                parameters, v = lib.update_parameters_with_momentum(parameters, grads, v, BETA, LR)
            else:
                t += 1
                parameters, v, s, _, _ = lib.update_parameters_with_adam(
                    parameters, grads, v, s, t, LR, BETA1, BETA2, EPS
                )
    return parameters


class _Timed:
    """``xpopt``'s functions, each call's time added to its kind (optimizer or network/data)."""

    KINDS = {
        "update_parameters_with_gd": "optimizer",
        "update_parameters_with_momentum": "optimizer",
        "update_parameters_with_adam": "optimizer",
    }

    def __init__(self):
        self.seconds = {"optimizer": 0.0, "network/data": 0.0}

    def __getattr__(self, name):
        real = getattr(xpopt, name)
        kind = self.KINDS.get(name, "network/data")

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            out = real(*args, **kwargs)
            self.seconds[kind] += time.perf_counter() - t0
            return out

        return timed


def shares(X, Y, optimizer) -> dict:
    """One instrumented run of the xpopt loop: the fraction of its time in each kind."""
    timed = _Timed()
    t0 = time.perf_counter()
    notebook_loop(timed, X, Y, optimizer)
    total = time.perf_counter() - t0
    return {
        "optimizer_share": timed.seconds["optimizer"] / total,
        "network_data_share": timed.seconds["network/data"] / total,
    }


@pytest.mark.parametrize("optimizer", ["gd", "momentum", "adam"])
@pytest.mark.parametrize("contestant", list(CONTESTANTS))
def test_notebook_loop(benchmark, moons, contestant, optimizer):
    X, Y = moons
    lib = course_code if contestant == "course-numpy" else xpopt
    parameters = harness.measure(
        benchmark,
        lambda: notebook_loop(lib, X, Y, optimizer),
        group=f"notebook loop: moons {DIMS}, {optimizer}, {EPOCHS} epochs, float64, CPU",
        contestant=CONTESTANTS[contestant],
        device="cpu",
        rounds=3,
        warmup=1,
        baseline=contestant == "course-numpy",
        epochs=EPOCHS,
        steps=EPOCHS * -(-X.shape[1] // BATCH),
    )
    final = {k: numpy.array(xpopt.to_host(v)) for k, v in parameters.items()}
    _finals[(optimizer, contestant)] = final
    if contestant == "course-numpy":
        return
    benchmark.extra_info.update(shares(X, Y, optimizer))
    reference = _finals.get((optimizer, "course-numpy"))
    if reference is None:  # run alone (-k): the course's result, untimed
        reference = notebook_loop(course_code, X, Y, optimizer)
    assert sorted(final) == sorted(reference)
    for key, want in reference.items():  # the guard: the course's bits
        assert final[key].dtype == want.dtype and numpy.array_equal(final[key], want), (
            f"{optimizer}: {key} differs from the course's loop"
        )
