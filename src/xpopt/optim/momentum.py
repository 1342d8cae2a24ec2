"""Momentum: ``v = beta * v + (1 - beta) * dW``; ``W = W - lr * v`` (velocity from zeros)."""

from __future__ import annotations

from ..kernels import KernelSpec, register
from ..validation import check_beta, check_learning_rate
from .base import Optimizer, course_update, hyperparameter, zeros_state

# The rule, twice: the CUDA kernel (also compiled for the CPU) and its NumPy twin, the same
# operations in the same order on the same names.
SPEC = register(
    KernelSpec(
        name="xpopt_momentum",
        in_params="T grad, T lr, T beta, T one_minus_beta",
        out_params="T param, T v",
        operation=("v = beta * v + one_minus_beta * grad;\nparam = param - lr * v;"),
        scalars=("lr", "beta", "one_minus_beta"),
    )
)


def momentum_rule(xp, param, grad, v, a, b, *, lr, beta, one_minus_beta):
    """NumPy twin of :data:`SPEC`, in place (``a``, ``b``: scratch)."""
    xp.multiply(v, beta, out=v)
    xp.multiply(grad, one_minus_beta, out=a)
    xp.add(v, a, out=v)
    xp.multiply(v, lr, out=a)
    xp.subtract(param, a, out=param)


def momentum_scalars(learning_rate: float, beta: float, t: int = 1) -> dict[str, float]:
    return {"lr": learning_rate, "beta": beta, "one_minus_beta": 1 - beta}


class Momentum(Optimizer):
    """Gradient descent with momentum. ``Momentum(learning_rate=0.0007, beta=0.9, fused=True)``.

    The default ``learning_rate=0.0007`` is the course's ``model()`` default, the same for every
    optimizer object (the course function ``update_parameters_with_adam`` keeps its own 0.01).
    """

    spec = SPEC
    rule = momentum_rule
    slots = ("v",)
    _beta: float
    beta = hyperparameter("beta", lambda value: check_beta(value, "beta"))

    def __init__(self, learning_rate: float = 0.0007, beta: float = 0.9, *, fused: bool = True):
        super().__init__(learning_rate, fused=fused)
        self.beta = beta

    def scalars(self, learning_rate, t):
        return momentum_scalars(learning_rate, self._beta)  # the stored value: per step

    def hyperparameters(self):
        return {"learning_rate": self.learning_rate, "beta": self.beta}


def initialize_velocity(parameters: dict) -> dict:
    """Zero velocities ``v["dW1"], v["db1"], ...`` of the parameters' shapes."""
    return zeros_state(parameters)


def update_parameters_with_momentum(
    parameters: dict, grads: dict, v: dict, beta: float, learning_rate: float
) -> tuple[dict, dict]:
    """The course's momentum step, in place.

    Parameters
    ----------
    parameters : dict of str to ndarray
        ``W1`` of shape (n_1, n_0), ``b1`` of shape (n_1, 1), ...
    grads : dict of str to ndarray
        ``dW1, db1, ...`` of the same shapes.
    v : dict of str to ndarray
        Velocities keyed like ``grads``.
    beta : float
        In [0, 1).
    learning_rate : float

    Returns
    -------
    parameters, v : dict
        The same dicts, updated.
    """
    hyper = (check_learning_rate(learning_rate), check_beta(beta, "beta"))
    course_update(SPEC, momentum_rule, parameters, grads, {"v": v}, momentum_scalars, hyper)
    return parameters, v
