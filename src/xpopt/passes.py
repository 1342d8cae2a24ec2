"""The network's buffers for a training loop: what a forward and backward pass write into.

A :class:`Workspace` holds, for one network at one batch width, the activations, the
backward temporaries and the gradients, allocated once.
"""

from __future__ import annotations

import copy

from .backend import get_xp
from .flat import FlatDict
from .network import _check_shapes, _new_grads, _num_layers

__all__ = ["Workspace"]


class Workspace:
    """Reusable buffers for the passes of one network at one batch width.

    A training loop that keeps one per batch width runs :func:`forward_propagation` and
    :func:`backward_propagation` without allocating: activations, ReLU slopes, the backward
    temporaries and the gradients all live here. Each pass overwrites them, so a result
    (``AL``, caches, grads) is valid until the next pass with the same workspace.
    A forward pass with a workspace leaves NumPy's error state alone (entering
    ``numpy.errstate`` costs more than a small layer): wrap the loop in
    ``numpy.errstate(over="ignore")`` to silence the overflow of ``exp(-z)`` for very
    negative ``z`` (where the sigmoid is 0, correctly).

    Parameters
    ----------
    parameters : FlatDict
        Packed parameters ``W1, b1, ...`` (views are taken once, here).
    m : int
        The batch width (number of columns of ``X``).
    grads : FlatDict, optional
        The gradient buffer to write into; a new one when None. Workspaces of different
        widths may share one.
    """

    def __init__(self, parameters: FlatDict, m: int, grads: FlatDict | None = None):
        if not (isinstance(parameters, FlatDict) and parameters.packed):
            raise TypeError("a Workspace needs packed FlatDict parameters")
        L = _num_layers(parameters)
        xp = get_xp(parameters.flat)
        dtype = parameters.flat.dtype
        self.parameters = parameters
        self.xp = xp
        self.m = int(m)
        self.W = [parameters[f"W{l}"] for l in range(1, L + 1)]
        self.b = [parameters[f"b{l}"] for l in range(1, L + 1)]
        _check_shapes(self.W, self.b)
        self.A = [xp.empty((W.shape[0], m), dtype) for W in self.W]
        self.dZ = [xp.empty((W.shape[0], m), dtype) for W in self.W]
        self.relu_slopes = [xp.empty((W.shape[0], m), dtype) for W in self.W[:-1]]
        self.grads = grads if grads is not None else _new_grads(parameters, xp, dtype)
        self.gW = [self.grads[f"dW{l}"] for l in range(1, L + 1)]
        self.gb = [self.grads[f"db{l}"] for l in range(1, L + 1)]

    def with_output(self, out) -> "Workspace":
        """This workspace, but with the output layer written into ``out`` (shape (n_L, m),
        C-contiguous): a loop can collect an epoch's outputs without copying them."""
        if tuple(out.shape) != tuple(self.A[-1].shape) or not out.flags.c_contiguous:
            raise ValueError(f"out must be C-contiguous of shape {self.A[-1].shape}")
        other = copy.copy(self)
        other.A = [*self.A[:-1], out]
        return other
