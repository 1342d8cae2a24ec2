"""Group 3: one optimizer step (GD, momentum, RMSprop, Adam) on 1M and 10M float32 parameters
(and 100M on a GPU).

Contestants, one table per rule and size:

- the course's expressions on NumPy: ``update_parameters_with_*`` over a dict of four arrays
  (``W1, b1, W2, b2``) totalling N, new arrays every step, as the course writes it;
- xpopt on the CPU: the optimizer object's ``update`` on packed FlatDicts, with the compiled
  CPU kernel (``fused=True``, the default, when xpopt._hostkernels was built) and with the
  NumPy twin (``fused=False``);
- xpopt on CuPy, ``fused=False`` (one launch per operation) and fused (one kernel);
- ``torch.optim`` with ``foreach=True`` (and ``fused=True`` for Adam) on the CPU (on its default
  threads and on one thread) and on CUDA.

Each reports its effective bandwidth, bytes moved per step / median time, counting each array
read or written once (float32: GD 12 bytes/parameter, momentum and RMSprop 20, Adam 28), and
its fraction of the device's copy bandwidth measured in the same run. Temporaries are not
counted: code that makes them moves more bytes than it is credited with, which is the point.
PyTorch's momentum keeps ``v = 0.9 v + g`` rather than the course's ``0.9 v + 0.1 g``: the
same bytes and operations, a different rule, labelled as such.
"""

from __future__ import annotations

import functools

import numpy
import pytest

import course_code
import harness
import torch_course
import xpopt

LR, BETA, BETA1, BETA2, EPS = 0.01, 0.9, 0.9, 0.999, 1e-8
RULES = ("gd", "momentum", "rmsprop", "adam")
ARRAYS_MOVED = {"gd": 3, "momentum": 5, "rmsprop": 5, "adam": 7}  # reads + writes per element
SIZES = [2**16] if harness.QUICK else [2**20, 10 * 2**20, 100 * 2**20]
GPU_ONLY_FROM = 100 * 2**20  # 100M float32 Adam state on a 2-core CPU box: minutes, not a figure

XPOPT_CLASS = {"gd": "GD", "momentum": "Momentum", "rmsprop": "RMSprop", "adam": "Adam"}
TORCH_CLASS = {"gd": "SGD", "momentum": "SGD(momentum=0.9)", "rmsprop": "RMSprop", "adam": "Adam"}
# PyTorch on the CPU runs twice: on its default threads (what a user gets) and on one thread.
# On a busy 2-core machine its OpenMP pool can stall for a scheduler slice (16-32 ms here) at
# every operation while the other core is taken; one thread shows the kernel's own speed.
CONTESTANTS = (
    "course-numpy",
    "xpopt-numpy",
    "xpopt-numpy-unfused",
    "torch-cpu-foreach",
    "torch-cpu-fused",
    "torch-cpu-foreach-1thread",
    "torch-cpu-fused-1thread",
    "xpopt-cupy-unfused",
    "xpopt-cupy-fused",
    "torch-cuda-foreach",
    "torch-cuda-fused",
)


def _xpopt_threads(n: int) -> str:
    """How many threads xpopt's NumPy update uses for ``n`` parameters, for the label."""
    from xpopt.optim import placement  # noqa: PLC0415

    if n < placement.THREADED_MIN:
        return ", 1 thread"
    threads = placement.num_threads()
    return f", {threads} thread{'s' * (threads > 1)}"


def _label(rule: str, contestant: str, n: int) -> str:
    if contestant == "course-numpy":
        return f"course update_parameters_with_{rule} (NumPy, dict of 4 arrays)"
    if contestant == "xpopt-numpy":
        from xpopt import hostkernels  # noqa: PLC0415

        how = "compiled CPU kernel" if hostkernels.unavailable_reason() is None else "NumPy twin"
        return f"xpopt {XPOPT_CLASS[rule]} ({how}, FlatDict{_xpopt_threads(n)})"
    if contestant == "xpopt-numpy-unfused":
        return f"xpopt {XPOPT_CLASS[rule]}(fused=False) (NumPy twin, FlatDict{_xpopt_threads(n)})"
    if contestant == "xpopt-cupy-unfused":
        return f"xpopt {XPOPT_CLASS[rule]}(fused=False) (CuPy, one launch per operation)"
    if contestant == "xpopt-cupy-fused":
        return f"xpopt {XPOPT_CLASS[rule]} (CuPy, one fused kernel)"
    _, where, how = contestant.split("-")[:3]
    note = " [torch's v = 0.9 v + g rule]" if rule == "momentum" else ""
    if where == "cpu":
        threads = _torch_threads(contestant)
        where = f"CPU, {threads} thread{'s' * (threads > 1)}"
    shown = where.upper() if where == "cuda" else where
    return f"torch.optim.{TORCH_CLASS[rule]} {how}=True ({shown}){note}"


def _torch_threads(contestant: str) -> int:
    """The CPU threads a PyTorch contestant runs on: 1, or PyTorch's default."""
    if contestant.endswith("1thread"):
        return 1
    import torch  # noqa: PLC0415  (only called once require_torch has succeeded)

    return torch.get_num_threads()


def _cases():
    for rule in RULES:
        for n in SIZES:
            for contestant in CONTESTANTS:
                gpu = "cupy" in contestant or "cuda" in contestant
                if n >= GPU_ONLY_FROM and not gpu:
                    continue
                if "torch" in contestant and "fused" in contestant and rule != "adam":
                    continue  # the brief asks torch's fused path for Adam only
                yield pytest.param(
                    rule, n, contestant, id=f"{rule}-{harness.fmt_count(n)}-{contestant}"
                )


def layout_for(n: int) -> tuple:
    """Four arrays totalling ``n``, shaped like a two-layer network: a large ``W1``, a square
    ``W2`` and two bias columns (``n`` must be a multiple of the width)."""
    r = 256 if n >= 2**20 else 64
    if n % r or n // r <= r + 2:
        raise ValueError(f"no layout of width {r} for {n} parameters")
    return (("W1", (r, n // r - r - 2)), ("b1", (r, 1)), ("W2", (r, r)), ("b2", (r, 1)))


@functools.lru_cache(maxsize=2)
def host_buffers(n: int) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Parameters and gradients of ``n`` float32 values, made once per size (read-only)."""
    rng = numpy.random.default_rng(n)
    p = rng.standard_normal(n, dtype=numpy.float32) * numpy.float32(0.01)
    g = rng.standard_normal(n, dtype=numpy.float32) * numpy.float32(0.01)
    p.flags.writeable = g.flags.writeable = False
    return p, g


def _course_step(rule: str, layout, p_flat, g_flat):
    """A closure doing one course-style update over a dict of separate arrays."""
    params = xpopt.FlatDict(p_flat.copy(), layout)
    params = {k: numpy.array(v) for k, v in params.items()}  # separate arrays, as the course
    grads = {"d" + k: numpy.array(v) for k, v in xpopt.FlatDict(g_flat.copy(), layout).items()}
    # State in the parameters' float32 (the course's initialize_* would give float64 zeros
    # and silently turn every step into float64 arithmetic).
    state = lambda: {k: numpy.zeros_like(v) for k, v in grads.items()}  # noqa: E731
    if rule == "gd":
        return lambda: course_code.update_parameters_with_gd(params, grads, LR)
    if rule == "momentum":
        v = state()
        return lambda: course_code.update_parameters_with_momentum(params, grads, v, BETA, LR)
    if rule == "rmsprop":
        s = state()
        return lambda: course_code.update_parameters_with_rmsprop(params, grads, s, LR, BETA2, EPS)
    v, s, t = state(), state(), [0]

    def adam():
        t[0] += 1
        return course_code.update_parameters_with_adam(
            params, grads, v, s, t[0], LR, BETA1, BETA2, EPS
        )

    return adam


def _xpopt_step(rule: str, layout, p_flat, g_flat, contestant: str):
    params = xpopt.FlatDict(p_flat.copy(), layout)
    grads = xpopt.FlatDict(g_flat.copy(), tuple(("d" + k, s) for k, s in layout))
    if "cupy" in contestant:
        harness.require_cupy()
        params, grads = xpopt.to_device(params, "cuda"), xpopt.to_device(grads, "cuda")
    opt = xpopt.make_optimizer(
        rule,
        LR,
        beta=BETA,
        beta1=BETA1,
        beta2=BETA2,
        epsilon=EPS,
        fused=not contestant.endswith("unfused"),
    )
    state = opt.init(params)
    sync = harness.sync_for(contestant)

    def step():
        opt.update(params, grads, state)
        sync()

    return step


def _torch_step(rule: str, layout, p_flat, g_flat, contestant: str):
    _, where, how = contestant.split("-")[:3]
    torch, dev = harness.require_torch_device(where)
    tensors, offset = [], 0
    for _, shape in layout:
        size = int(numpy.prod(shape))
        t = torch.from_numpy(p_flat[offset : offset + size].reshape(shape).copy()).to(dev)
        t.requires_grad_(True)
        t.grad = torch.from_numpy(g_flat[offset : offset + size].reshape(shape).copy()).to(dev)
        tensors.append(t)
        offset += size
    kw = {how: True}
    if rule == "gd":
        opt = torch.optim.SGD(tensors, lr=LR, **kw)
    elif rule == "momentum":
        opt = torch.optim.SGD(tensors, lr=LR, momentum=BETA, **kw)
    elif rule == "rmsprop":
        opt = torch.optim.RMSprop(tensors, lr=LR, alpha=BETA2, eps=EPS, **kw)
    else:
        opt = torch.optim.Adam(tensors, lr=LR, betas=(BETA1, BETA2), eps=EPS, **kw)
    sync = harness.sync_for(contestant)
    if dev.type == "cpu":
        threads = _torch_threads(contestant)

        def step():
            with torch_course.threads(torch, threads):
                opt.step()

        return step

    def step():
        opt.step()
        sync()

    return step


@pytest.mark.parametrize("rule, n, contestant", list(_cases()))
def test_optimizer_step(benchmark, request, rule, n, contestant):
    device = "gpu" if ("cupy" in contestant or "cuda" in contestant) else "cpu"
    # Gate first: a skipped contestant must not pay for making 100M-parameter buffers.
    if "cupy" in contestant:
        harness.require_cupy()
    elif "cuda" in contestant:
        harness.require_torch_device("cuda")
    layout = layout_for(n)
    if contestant == "course-numpy":
        step = _course_step(rule, layout, *host_buffers(n))
    elif contestant.startswith("xpopt"):
        step = _xpopt_step(rule, layout, *host_buffers(n), contestant)
    else:
        step = _torch_step(rule, layout, *host_buffers(n), contestant)
    harness.need_copy_bandwidth(request, device)

    if device == "gpu":  # tens of microseconds a step: many short rounds, compiled first
        rounds, warmup, iterations = (30, 10, 10) if n < GPU_ONLY_FROM else (30, 5, 1)
    else:  # milliseconds (1M) to a few hundred milliseconds (10M, course code) a step
        rounds, warmup, iterations = (30, 3, 1) if n <= 2**20 else (8, 1, 1)
    harness.measure(
        benchmark,
        step,
        group=f"{rule} step: {harness.fmt_count(n)} float32 parameters",
        contestant=_label(rule, contestant, n),
        device=device,
        rounds=rounds,
        warmup=warmup,
        iterations=iterations,
        baseline=contestant == "course-numpy",
        parameters=n,
    )
    harness.add_bandwidth(benchmark, ARRAYS_MOVED[rule] * 4 * n, device)
