"""A rank's share of a global mini-batch's gradient: backward over its shard, divided by
the GLOBAL batch width, so that the sum over ranks is the batch's mean gradient.

:func:`shard_backward` runs the operations of :func:`xpopt.network.backward_propagation`
(with a workspace), through the same function (``network._backward_loop``), with one
difference: ``dz_L = (a_L - Y) / B`` divides by the width ``B`` of the whole mini-batch
instead of the shard's. At one rank the shard is the
batch, so the two are the same operations on the same arrays: bit for bit the same gradient.
Dividing before the matrix products (not the summed gradient after the all-reduce) is what
keeps that identity; the sum over ranks then differs from one rank's result only by the
order in which the BLAS and the all-reduce add the columns' contributions.
"""

from __future__ import annotations

from ..network import _backward_loop

__all__ = ["shard_backward"]


def shard_backward(Y, caches, batch_width: int):
    """The gradient contribution of one shard, written into its workspace's gradients.

    Parameters
    ----------
    Y : ndarray of shape (1, w)
        The shard's labels.
    caches : xpopt.network.Caches
        From :func:`xpopt.network.forward_propagation` on the shard, WITH a workspace.
    batch_width : int
        ``B``, the width of the global mini-batch the shard belongs to (``w <= B``).

    Returns
    -------
    FlatDict
        The workspace's gradients ``dW1, db1, ...``: ``sum over the shard / B``.
    """
    activations, _, ws = caches
    if ws is None:
        raise ValueError("shard_backward needs caches from a forward pass with a Workspace")
    AL = activations[-1]
    if Y.shape != AL.shape:
        raise ValueError(f"Y must have shape {AL.shape}, got {Y.shape}")
    _backward_loop(
        ws.xp, activations, Y, ws.W, ws.gW, ws.gb, ws.dZ, ws.relu_slopes, float(batch_width)
    )  # backward_propagation's m: the batch's width, a float
    return ws.grads
