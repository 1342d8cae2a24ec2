"""Group 2: one forward + backward pass of [12288, 256, 64, 1] at batch 1024, float32.

Contestants: the course's code, xpopt on NumPy and on CuPy, PyTorch (autograd) on the CPU and
on CUDA. All start from the same He-initialised weights and the same batch.

The course's code is given float32 arrays, and its backward pass multiplies by
``np.int64(a_prev > 0)``, which promotes the hidden layers' gradients to float64: that is what
the course's code does with float32 data, so it is timed as it is.
"""

from __future__ import annotations

import numpy
import pytest

import course_code
import harness
import torch_course
import xpopt

DIMS, BATCH = ([128, 32, 16, 1], 64) if harness.QUICK else ([12288, 256, 64, 1], 1024)
GROUP = f"forward + backward: {DIMS}, batch {BATCH}, float32"

CONTESTANTS = {
    "course-numpy": "course code (NumPy)",
    "xpopt-numpy": "xpopt (NumPy)",
    "torch-cpu": "PyTorch autograd (CPU)",
    "xpopt-cupy": "xpopt (CuPy)",
    "torch-cuda": "PyTorch autograd (CUDA)",
}


@pytest.fixture(scope="module")
def batch():
    """One batch: X (n_x, BATCH) float32 and 0/1 labels Y (1, BATCH)."""
    rng = numpy.random.default_rng(1)
    X = rng.standard_normal((DIMS[0], BATCH), dtype=numpy.float32)
    Y = (rng.random((1, BATCH)) > 0.5).astype(numpy.float32)
    return X, Y


@pytest.mark.parametrize("contestant", list(CONTESTANTS))
def test_forward_backward(benchmark, batch, contestant):
    X, Y = batch
    device = "gpu" if contestant.endswith(("cupy", "cuda")) else "cpu"
    label = CONTESTANTS[contestant]
    # Born on the host whatever XPOPT_BACKEND says; each contestant moves its own copy.
    params = xpopt.to_host(xpopt.initialize_parameters(DIMS, dtype=numpy.float32))

    if contestant == "course-numpy":
        course_params = {k: numpy.array(v) for k, v in params.items()}

        def fn():
            a, cache = course_code.forward_propagation(X, course_params)
            return course_code.backward_propagation(X, Y, cache, course_params)
    elif contestant.startswith("xpopt"):
        if contestant.endswith("cupy"):
            cupy = harness.require_cupy()
            X, Y = cupy.asarray(X), cupy.asarray(Y)
            params = xpopt.to_device(params, "cuda")
        sync = harness.sync_for(contestant)
        grads = params.zeros_like(prefix="d")  # reused between steps, as train() does

        def fn():
            AL, caches = xpopt.forward_propagation(X, params)
            out = xpopt.backward_propagation(X, Y, caches, grads)
            sync()
            return out
    else:
        torch, dev = harness.require_torch_device(contestant.split("-")[1])
        if dev.type == "cpu":
            threads = torch.get_num_threads()
            label = f"PyTorch autograd (CPU, {threads} thread{'s' * (threads > 1)})"
        tensors = torch_course.tensors_from(params, torch, dev)
        tX, tY = torch.from_numpy(X).to(dev), torch.from_numpy(Y).to(dev)
        sync = harness.sync_for(contestant)

        def fn():
            torch_course.forward_backward(torch, tX, tY, tensors)
            sync()
            return [t.grad for t in tensors]

    # ~0.1-1 s a call on the 2-core CPU; milliseconds on a GPU.
    rounds, warmup = (50, 5) if device == "gpu" else (5, 1)
    harness.measure(
        benchmark,
        fn,
        group=GROUP,
        contestant=label,
        device=device,
        rounds=rounds,
        warmup=warmup,
        baseline=contestant == "course-numpy",
        flops=_flops(DIMS, BATCH),
    )
    median = harness.median_seconds(benchmark)
    if median:
        benchmark.extra_info["GFLOPs"] = _flops(DIMS, BATCH) / median / 1e9


def _flops(dims, m) -> int:
    """Multiply-add work of the matrix products: forward W A, backward dZ A^T and W^T dZ
    (the last one for every layer but the first)."""
    total = 0
    for l in range(1, len(dims)):
        mn = dims[l] * dims[l - 1] * m
        total += 2 * mn * (3 if l > 1 else 2)
    return total
