"""Gradient descent: ``W = W - lr * dW``.

Batch, stochastic and mini-batch gradient descent differ only in the mini-batch size given
to the training loop; the update is the same.
"""

from __future__ import annotations

from ..kernels import KernelSpec, register
from ..validation import check_learning_rate
from .base import Optimizer, course_update

# The rule, twice: the CUDA kernel (also compiled for the CPU) and its NumPy twin, the same
# operations in the same order on the same names.
SPEC = register(
    KernelSpec(
        name="xpopt_gd",
        in_params="T grad, T lr",
        out_params="T param",
        operation="param = param - lr * grad;",
        scalars=("lr",),
    )
)


def gd_rule(xp, param, grad, a, b, *, lr):
    """NumPy twin of :data:`SPEC`, in place (``a``, ``b``: scratch)."""
    xp.multiply(grad, lr, out=a)
    xp.subtract(param, a, out=param)


def gd_scalars(learning_rate: float, t: int = 1) -> dict[str, float]:
    return {"lr": learning_rate}


class GD(Optimizer):
    """Gradient descent. ``GD(learning_rate=0.0007, fused=True)``.

    The default ``learning_rate=0.0007`` is the course's ``model()`` default, the same for every
    optimizer object (the course function ``update_parameters_with_adam`` keeps its own 0.01).
    """

    spec = SPEC
    rule = gd_rule
    slots = ()

    def __init__(self, learning_rate: float = 0.0007, *, fused: bool = True):
        super().__init__(learning_rate, fused=fused)

    def scalars(self, learning_rate, t):
        return {"lr": learning_rate}  # gd_scalars, inlined: per step


def update_parameters_with_gd(parameters: dict, grads: dict, learning_rate: float) -> dict:
    """The course's gradient-descent step, in place.

    Parameters
    ----------
    parameters : dict of str to ndarray
        ``W1`` of shape (n_1, n_0), ``b1`` of shape (n_1, 1), ... (NumPy or CuPy).
    grads : dict of str to ndarray
        ``dW1, db1, ...`` of the same shapes.
    learning_rate : float

    Returns
    -------
    parameters : dict
        The same dict, updated.
    """
    hyper = (check_learning_rate(learning_rate),)
    course_update(SPEC, gd_rule, parameters, grads, {}, gd_scalars, hyper)
    return parameters
