"""The course's network written in PyTorch, for the PyTorch contestants.

What a PyTorch user would write: the same LINEAR -> RELU ... -> LINEAR -> SIGMOID network with
the same initial weights (copied from :func:`xpopt.initialize_parameters`), the course's summed
cross-entropy, gradients by autograd of ``cost / m`` (the course's ``dz_L = (a_L - Y) / m``),
and ``torch.optim`` for the updates where its rule is the course's.

Momentum is the exception: ``torch.optim.SGD(momentum=beta)`` keeps ``v = beta * v + g`` (and
starts from ``v = g``), not the course's ``v = beta * v + (1 - beta) * g`` from zeros, so
:func:`course_momentum_step` applies the course's rule with ``torch._foreach`` operations.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy


def tensors_from(parameters: dict, torch, device, dtype=None) -> list:
    """``[W1, b1, ..., WL, bL]`` as leaf tensors that require gradients (copies).

    Parameters
    ----------
    parameters : dict of str to ndarray
        NumPy (or xpopt) parameters keyed ``W1, b1, ...``.
    torch : module
    device : torch.device
    dtype : torch.dtype, optional
        Defaults to the arrays' dtype.
    """
    L = len(parameters) // 2
    out = []
    for l in range(1, L + 1):
        for key in (f"W{l}", f"b{l}"):
            host = numpy.array(xpopt_to_host(parameters[key]))
            t = torch.from_numpy(host).to(device=device, dtype=dtype)
            out.append(t.requires_grad_(True))
    return out


def xpopt_to_host(a: Any):
    """A NumPy view or copy of an xpopt array (NumPy or CuPy)."""
    import xpopt  # noqa: PLC0415

    return xpopt.to_host(a)


def forward_cost(torch, X, Y, tensors: Sequence) -> tuple[Any, Any]:
    """The course's forward pass and SUMMED cross-entropy, in torch operations.

    Returns
    -------
    AL : tensor of shape (1, m)
    cost : 0-d tensor
        ``sum(-log(a) * Y - log(1 - a) * (1 - Y))``.
    """
    A = X
    L = len(tensors) // 2
    for l in range(L):
        Z = torch.addmm(tensors[2 * l + 1], tensors[2 * l], A)  # W @ A + b, one BLAS call
        A = torch.relu(Z) if l < L - 1 else torch.sigmoid(Z)
    cost = (-torch.log(A) * Y - torch.log(1 - A) * (1 - Y)).sum()
    return A, cost


def forward_backward(torch, X, Y, tensors: Sequence):
    """One forward pass, the cost, and the gradients of ``cost / m`` into ``.grad``.

    Returns
    -------
    0-d tensor
        The summed cost, detached.
    """
    for t in tensors:
        t.grad = None
    _, cost = forward_cost(torch, X, Y, tensors)
    (cost / X.shape[1]).backward()
    return cost.detach()


def course_momentum_step(
    torch, tensors: Sequence, velocities: Sequence, beta: float, learning_rate: float
) -> None:
    """The course's momentum rule with ``torch._foreach`` operations, in place.

    ``v = beta * v + (1 - beta) * g``; ``W = W - lr * v`` (velocities start at zeros).
    """
    grads = [t.grad for t in tensors]
    with torch.no_grad():
        torch._foreach_mul_(velocities, beta)
        torch._foreach_add_(velocities, grads, alpha=1 - beta)
        torch._foreach_add_(list(tensors), velocities, alpha=-learning_rate)


@contextlib.contextmanager
def threads(torch, n: int) -> Iterator[None]:
    """Run PyTorch's CPU operations on ``n`` threads inside the block.

    For the course's tiny network (tensors of a few hundred values) one thread is what a user
    should pick: nothing is big enough to split, and on a shared 2-core machine PyTorch's
    thread pool waiting for a busy core made each step 3-10x slower in trials here.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
