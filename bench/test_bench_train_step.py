"""Group 5: the time of one training step (forward, cost, backward, Adam update), CPU vs GPU.

Two networks:

- the course's ``[2, 5, 2, 1]`` on one moons batch of 64, float64 (the course's dtype): a step
  of a few hundred floating-point values, where per-call overhead is everything;
- ``[12288, 1024, 256, 1]`` at batch 1024, float32 (12.9M parameters): a step dominated by
  matrix products and the 12.9M-parameter update.

Contestants: the course's code, xpopt on NumPy (``Optimizer.update``, and the bound step of
``Optimizer.bind`` that ``xpopt.train`` runs), PyTorch on the CPU, and on a GPU xpopt on
CuPy (fused Adam) and PyTorch on CUDA (``torch.optim.Adam(fused=True)``). The course's code is
given float32 arrays for the large network and does what it does with them: its backward
pass multiplies by ``np.int64(a_prev > 0)``, the gradients become float64, and after the first
update (a warm-up round) so do the parameters and Adam's state: it then runs in float64.
"""

from __future__ import annotations

import numpy
import pytest

import course_code
import harness
import torch_course
import xpopt

LR, BETA1, BETA2, EPS = 0.0007, 0.9, 0.999, 1e-8
SMALL = ([2, 5, 2, 1], 64, numpy.float64)
LARGE = (
    ([256, 64, 16, 1], 64, numpy.float32)
    if harness.QUICK
    else ([12288, 1024, 256, 1], 1024, numpy.float32)
)
NETWORKS = {"course-net": SMALL, "large-net": LARGE}

CONTESTANTS = {
    "course-numpy": "course code (NumPy)",
    "xpopt-numpy": "xpopt (NumPy)",
    "xpopt-numpy-bound": "xpopt (NumPy, bound step: Optimizer.bind, as train() runs it)",
    "torch-cpu": "PyTorch (CPU, autograd + torch.optim.Adam)",
    "xpopt-cupy": "xpopt (CuPy, fused Adam)",
    "torch-cuda": "PyTorch (CUDA, autograd + torch.optim.Adam(fused=True))",
}


def _batch(net: str):
    dims, m, dtype = NETWORKS[net]
    if net == "course-net":  # the course's first mini-batch of the moons
        X, Y = xpopt.load_moons()
        bx, by = xpopt.random_mini_batches(xpopt.to_host(X), xpopt.to_host(Y), m, 11)[0]
        return numpy.ascontiguousarray(bx), numpy.ascontiguousarray(by)
    rng = numpy.random.default_rng(2)
    X = rng.standard_normal((dims[0], m), dtype=numpy.float32).astype(dtype, copy=False)
    Y = (rng.random((1, m)) > 0.5).astype(dtype)
    return X, Y


def _course_step(dims, X, Y, dtype):
    params = {
        k: numpy.array(xpopt.to_host(v))
        for k, v in xpopt.initialize_parameters(dims, dtype=dtype).items()
    }
    v, s = course_code.initialize_adam(params)  # the course's float64 zeros
    t = [0]

    def step():
        a, caches = course_code.forward_propagation(X, params)
        cost = course_code.compute_cost(a, Y)
        grads = course_code.backward_propagation(X, Y, caches, params)
        t[0] += 1
        course_code.update_parameters_with_adam(params, grads, v, s, t[0], LR, BETA1, BETA2, EPS)
        return cost

    return step


def _xpopt_step(dims, X, Y, dtype, contestant):
    params = xpopt.to_host(xpopt.initialize_parameters(dims, dtype=dtype))
    if contestant.endswith("cupy"):
        cupy = harness.require_cupy()
        X, Y = cupy.asarray(X), cupy.asarray(Y)
        params = xpopt.to_device(params, "cuda")
    opt = xpopt.Adam(LR, BETA1, BETA2, EPS)
    state = opt.init(params)
    grads = params.zeros_like(prefix="d")
    sync = harness.sync_for(contestant)
    # the bound step validates once and only launches; update() checks its kept plan
    update = (
        opt.bind(params, grads, state)
        if contestant.endswith("bound")
        else lambda: opt.update(params, grads, state)
    )

    def step():  # the inner loop of xpopt.train
        AL, caches = xpopt.forward_propagation(X, params)
        cost = xpopt.compute_cost(AL, Y)
        xpopt.backward_propagation(X, Y, caches, grads)
        update()
        sync()
        return cost

    return step


def _torch_step(dims, X, Y, dtype, contestant):
    torch, dev = harness.require_torch_device(contestant.split("-")[1])
    tensors = torch_course.tensors_from(xpopt.initialize_parameters(dims, dtype=dtype), torch, dev)
    tX, tY = torch.from_numpy(X).to(dev), torch.from_numpy(Y).to(dev)
    kw = {"fused": True} if dev.type == "cuda" else {}
    opt = torch.optim.Adam(tensors, lr=LR, betas=(BETA1, BETA2), eps=EPS, **kw)
    sync = harness.sync_for(contestant)

    def step():
        cost = torch_course.forward_backward(torch, tX, tY, tensors)
        opt.step()
        sync()
        return cost

    return step


@pytest.mark.parametrize("contestant", list(CONTESTANTS))
@pytest.mark.parametrize("net", list(NETWORKS))
def test_train_step(benchmark, net, contestant):
    dims, m, dtype = NETWORKS[net]
    X, Y = _batch(net)
    device = "gpu" if contestant.endswith(("cupy", "cuda")) else "cpu"
    label = CONTESTANTS[contestant]
    if contestant == "course-numpy":
        step = _course_step(dims, X, Y, dtype)
        if dtype == numpy.float32:
            label += " [float32 in; its backward promotes everything to float64]"
    elif contestant.startswith("xpopt"):
        step = _xpopt_step(dims, X, Y, dtype, contestant)
    else:
        step = _torch_step(dims, X, Y, dtype, contestant)

    torch_threads = None
    if contestant == "torch-cpu":
        import torch  # noqa: PLC0415  (require_torch_device has succeeded)

        # The course's network is a few hundred values: one thread (see torch_course.threads).
        torch_threads = 1 if net == "course-net" else torch.get_num_threads()
        label = label.replace("CPU,", f"CPU, {torch_threads} thread{'s' * (torch_threads > 1)},")
        inner = step

        def step():
            with torch_course.threads(torch, torch_threads):
                return inner()

    if net == "course-net":  # ~0.1-1 ms a step: many iterations per round
        rounds, warmup, iterations = (20, 2, 20)
    elif device == "gpu":
        rounds, warmup, iterations = (20, 3, 1)
    else:  # ~0.5-3 s a step on the 2-core CPU
        rounds, warmup, iterations = (3, 1, 1)
    cost = harness.measure(
        benchmark,
        step,
        contestant=label,
        device=device,
        rounds=rounds,
        warmup=warmup,
        iterations=iterations,
        baseline=contestant == "course-numpy",
        group=f"train step (Adam): {dims}, batch {m}, {numpy.dtype(dtype).name}",
        parameters=sum(dims[l] * dims[l - 1] + dims[l] for l in range(1, len(dims))),
    )
    assert numpy.isfinite(float(cost))  # a broken step must not pass as a fast one
