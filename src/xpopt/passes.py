"""The network's side of a training loop: the buffers a step writes, and one epoch's passes.

A :class:`Workspace` holds, for one network at one batch width, the activations, the
backward temporaries and the gradients, allocated once. :class:`TrainingPasses` is what the
network hands a training loop: for each mini-batch of a shuffled epoch it runs the forward
pass, the backward pass into one gradient buffer, and the update it is given.
"""

from __future__ import annotations

import copy

from .backend import get_xp
from .cost import compute_cost, epoch_cost
from .flat import FlatDict
from .layout import _check_shapes, _new_grads, _num_layers
from .network import backward_propagation, forward_propagation
from .softmax import softmax_cost

__all__ = ["TrainingPasses", "Workspace"]


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

    def with_output(self, out) -> Workspace:
        """This workspace, but with the output layer written into ``out`` (shape (n_L, m),
        C-contiguous): a loop can collect an epoch's outputs without copying them."""
        if tuple(out.shape) != tuple(self.A[-1].shape) or not out.flags.c_contiguous:
            raise ValueError(f"out must be C-contiguous of shape {self.A[-1].shape}")
        other = copy.copy(self)
        other.A = [*self.A[:-1], out]
        return other


class TrainingPasses:
    """One network's passes over the shuffled epochs of a training loop, without allocating.

    Owns every buffer a step writes: a :class:`Workspace` per mini-batch width, sharing one
    gradient buffer (:attr:`grads`, what the optimizer is bound to) and, with one output
    unit, the epoch's outputs, from which the epoch's cost is summed once per epoch (as the
    course's loop sums it batch by batch, bit for bit: :func:`~xpopt.cost.epoch_cost`).

    Parameters
    ----------
    parameters : FlatDict
        Packed parameters, updated in place by the loop's optimizer.
    bounds : sequence of (int, int)
        The columns ``(lo, hi)`` of each mini-batch of a shuffled epoch, in order
        (:meth:`~xpopt.data.MiniBatcher.bounds`).
    output : {"sigmoid", "softmax"}
        The output layer. With ``"softmax"`` the labels :meth:`epoch` is given are one-hot
        (C, m), already checked: no step reads anything back.
    """

    def __init__(self, parameters: FlatDict, bounds, *, output: str = "sigmoid"):
        self.output = output
        self.bounds = tuple(bounds)
        widths = [hi - lo for lo, hi in self.bounds]
        full = Workspace(parameters, widths[0])
        by_width = {widths[0]: full}
        for width in widths[1:]:
            if width not in by_width:
                by_width[width] = Workspace(parameters, width, grads=full.grads)
        workspaces = [by_width[width] for width in widths]
        self.parameters, self.grads, self.batch_width = parameters, full.grads, widths[0]
        self.outputs = None
        if full.A[-1].shape[0] == 1 and output == "sigmoid":
            self.outputs = full.xp.empty((1, self.bounds[-1][1]), dtype=parameters.flat.dtype)
            workspaces = [
                ws.with_output(self.outputs[:, lo:hi])
                for ws, (lo, hi) in zip(workspaces, self.bounds, strict=True)
            ]
        self._batches = tuple(zip(self.bounds, workspaces, strict=True))
        self._total = full.xp.zeros((), dtype=parameters.flat.dtype)

    def epoch(self, shuffled_X, shuffled_Y, update):
        """For each mini-batch: forward, backward into :attr:`grads`, then ``update()``.

        Returns
        -------
        ndarray of shape ()
            The epoch's summed cost (the course's ``cost_total``), on the data's device;
            valid until the next epoch.
        """
        params, outputs, total, output = self.parameters, self.outputs, self._total, self.output
        if outputs is None:
            total[...] = 0
        for (lo, hi), ws in self._batches:
            batch_X, batch_Y = shuffled_X[:, lo:hi], shuffled_Y[:, lo:hi]
            AL, caches = forward_propagation(batch_X, params, ws, output=output)
            if outputs is not None:
                pass
            elif output == "softmax":  # one-hot labels, checked once by train()
                total += softmax_cost(AL, batch_Y, checked=True)
            else:
                total += compute_cost(AL, batch_Y)
            # dZ = (AL - Y) / m for both outputs (the softmax's Y one-hot): the same pass
            backward_propagation(batch_X, batch_Y, caches)  # into self.grads
            update()
        return total if outputs is None else epoch_cost(outputs, shuffled_Y, self.batch_width)
