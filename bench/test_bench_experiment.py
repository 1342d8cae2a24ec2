"""Group 4: the course's whole experiment, ``model()`` for 5000 epochs on the moons (CPU).

``layers_dims = [2, 5, 2, 1]``, 300 examples, mini-batches of 64 (5 per epoch, 25,000 steps),
float64, the course's defaults (``learning_rate=0.0007``, ...), for "gd", "momentum" and
"adam". Contestants:

- the course's ``model()`` (``print_cost=False``);
- ``xpopt.model()`` (``print_cost=False``), on NumPy;
- a PyTorch loop on the CPU with the same initial weights (from
  :func:`xpopt.initialize_parameters`), the same batches (:func:`xpopt.random_mini_batches`
  with seeds 11, 12, ...), autograd for the gradients, ``torch.optim.SGD`` for "gd",
  ``torch.optim.Adam`` for "adam" (both the course's rules), and the course's momentum rule
  written with ``torch._foreach`` operations (``torch.optim.SGD(momentum=...)`` is another
  rule). It runs on one thread: the tensors hold a few hundred values.

A guard, outside the timing: xpopt's final cost must equal the course's (the cost of the
final parameters on the whole data set, by the course's own forward pass and cost). PyTorch's
final cost is recorded, not asserted: its arithmetic is not the course's (autograd through
log and sigmoid, other fused operations).
"""

from __future__ import annotations

import numpy
import pytest

import course_code
import harness
import torch_course
import xpopt

EPOCHS = 20 if harness.QUICK else 5000
DIMS = [2, 5, 2, 1]
LR, BETA, BETA1, BETA2, EPS, BATCH = 0.0007, 0.9, 0.9, 0.999, 1e-8, 64

CONTESTANTS = {
    "course-numpy": "course model() (NumPy)",
    "xpopt-numpy": "xpopt.model() (NumPy)",
    "torch-cpu": "PyTorch loop (CPU, 1 thread, autograd + torch.optim)",
}
TORCH_NOTE = {
    "gd": "torch.optim.SGD",
    "momentum": "course momentum rule in torch._foreach ops",
    "adam": "torch.optim.Adam",
}

_final_costs: dict[tuple[str, str], float] = {}


@pytest.fixture(scope="module")
def moons():
    """The course's data set, (2, 300) and (1, 300) float64, on the host."""
    X, Y = xpopt.load_moons()
    return xpopt.to_host(X), xpopt.to_host(Y)


def final_cost(X, Y, parameters) -> float:
    """The course's cost of ``parameters`` on the whole data set, divided by m."""
    host = {k: numpy.asarray(xpopt.to_host(v), dtype=numpy.float64) for k, v in parameters.items()}
    a, _ = course_code.forward_propagation(X, host)
    return float(course_code.compute_cost(a, Y)) / X.shape[1]


def run_course(X, Y, optimizer):
    parameters, _ = course_code.model(X, Y, DIMS, optimizer, num_epochs=EPOCHS, print_cost=False)
    return parameters


def run_xpopt(X, Y, optimizer):
    return xpopt.model(X, Y, DIMS, optimizer, num_epochs=EPOCHS, print_cost=False)


def run_torch(torch, X, Y, optimizer):
    """The experiment in PyTorch: same weights, batches and hyperparameters as the course."""
    tensors = torch_course.tensors_from(
        xpopt.initialize_parameters(DIMS), torch, torch.device("cpu")
    )
    if optimizer == "gd":
        opt = torch.optim.SGD(tensors, lr=LR)
    elif optimizer == "adam":
        opt = torch.optim.Adam(tensors, lr=LR, betas=(BETA1, BETA2), eps=EPS)
    else:
        velocities = [torch.zeros_like(t) for t in tensors]
    seed = 10
    for _ in range(EPOCHS):
        seed += 1
        for bx, by in xpopt.random_mini_batches(X, Y, BATCH, seed):
            tx, ty = torch.from_numpy(bx), torch.from_numpy(by)
            torch_course.forward_backward(torch, tx, ty, tensors)
            if optimizer == "momentum":
                torch_course.course_momentum_step(torch, tensors, velocities, BETA, LR)
            else:
                opt.step()
    return {
        f"{p}{l}": tensors[2 * (l - 1) + i].detach().numpy()
        for l in range(1, len(DIMS))
        for i, p in enumerate("Wb")
    }


@pytest.mark.parametrize("optimizer", ["gd", "momentum", "adam"])
@pytest.mark.parametrize("contestant", list(CONTESTANTS))
def test_experiment(benchmark, moons, contestant, optimizer):
    X, Y = moons
    if contestant == "course-numpy":
        fn = lambda: run_course(X, Y, optimizer)  # noqa: E731
    elif contestant == "xpopt-numpy":
        fn = lambda: run_xpopt(X, Y, optimizer)  # noqa: E731
    else:
        torch, _ = harness.require_torch_device("cpu")

        def fn():
            with torch_course.threads(torch, 1):  # tiny tensors: see torch_course.threads
                return run_torch(torch, X, Y, optimizer)

    label = CONTESTANTS[contestant]
    if contestant == "torch-cpu":
        label = f"{label[:-1]}; {TORCH_NOTE[optimizer]})"
    # Seconds per run on the 2-core CPU: two rounds of the NumPy contestants, one of the slower
    # PyTorch loop (~10-15 s), no warm-up (nothing to compile; PyTorch's first-call set-up
    # is a few milliseconds of the run).
    parameters = harness.measure(
        benchmark,
        fn,
        group=f"experiment: moons {DIMS}, {optimizer}, {EPOCHS} epochs, float64, CPU",
        contestant=label,
        device="cpu",
        rounds=1 if contestant == "torch-cpu" else 2,
        warmup=0,
        baseline=contestant == "course-numpy",
        epochs=EPOCHS,
        steps=EPOCHS * -(-X.shape[1] // BATCH),
    )

    cost = final_cost(X, Y, parameters)
    _final_costs[(optimizer, contestant)] = cost
    benchmark.extra_info["final_cost"] = cost
    if contestant == "course-numpy":
        return
    reference = _final_costs.get((optimizer, "course-numpy"))
    if reference is None:  # run alone (-k): compute the course's result, untimed
        reference = final_cost(X, Y, run_course(X, Y, optimizer))
        _final_costs[(optimizer, "course-numpy")] = reference
    benchmark.extra_info["final_cost_vs_course"] = cost - reference
    if contestant == "xpopt-numpy":  # the correctness guard: same numbers as the course
        assert cost == pytest.approx(reference, rel=1e-12, abs=0), (
            f"xpopt.model({optimizer!r}) ends at cost {cost!r}, the course's model at {reference!r}"
        )
