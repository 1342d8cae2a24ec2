"""RMSprop: ``s = beta2 * s + (1 - beta2) * dW**2``; ``W = W - lr * dW / (sqrt(s) + epsilon)``."""

from __future__ import annotations

from ..kernels import KernelSpec, register
from ..validation import check_beta, check_epsilon, check_learning_rate
from .base import Optimizer, course_update, hyperparameter, zeros_state

# The rule, twice: the CUDA kernel (also compiled for the CPU) and its NumPy twin, the same
# operations in the same order on the same names.
SPEC = register(
    KernelSpec(
        name="xpopt_rmsprop",
        in_params="T grad, T lr, T beta2, T one_minus_beta2, T eps",
        out_params="T param, T s",
        operation=(
            "s = beta2 * s + one_minus_beta2 * (grad * grad);\n"
            "param = param - lr * grad / (sqrt(s) + eps);"
        ),
        scalars=("lr", "beta2", "one_minus_beta2", "eps"),
    )
)


def rmsprop_rule(xp, param, grad, s, a, b, *, lr, beta2, one_minus_beta2, eps):
    """NumPy twin of :data:`SPEC`, in place (``a``, ``b``: scratch)."""
    xp.multiply(s, beta2, out=s)
    xp.multiply(grad, grad, out=a)
    xp.multiply(a, one_minus_beta2, out=a)
    xp.add(s, a, out=s)
    xp.multiply(grad, lr, out=a)
    xp.sqrt(s, out=b)
    xp.add(b, eps, out=b)
    xp.divide(a, b, out=a)
    xp.subtract(param, a, out=param)


def rmsprop_scalars(
    learning_rate: float, beta2: float, epsilon: float, t: int = 1
) -> dict[str, float]:
    return {"lr": learning_rate, "beta2": beta2, "one_minus_beta2": 1 - beta2, "eps": epsilon}


class RMSprop(Optimizer):
    """RMSprop. ``RMSprop(learning_rate=0.0007, beta2=0.999, epsilon=1e-8, fused=True)``.

    The default ``learning_rate=0.0007`` is the course's ``model()`` default, the same for every
    optimizer object (the course function ``update_parameters_with_adam`` keeps its own 0.01).
    """

    spec = SPEC
    rule = rmsprop_rule
    slots = ("s",)
    _beta2: float
    _epsilon: float
    beta2 = hyperparameter("beta2", lambda value: check_beta(value, "beta2"))
    epsilon = hyperparameter("epsilon", lambda value: check_epsilon(value))

    def __init__(
        self,
        learning_rate: float = 0.0007,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        *,
        fused: bool = True,
    ):
        super().__init__(learning_rate, fused=fused)
        self.beta2 = beta2
        self.epsilon = epsilon

    def scalars(self, learning_rate, t):
        return rmsprop_scalars(learning_rate, self._beta2, self._epsilon)  # stored values

    def hyperparameters(self):
        return {"learning_rate": self.learning_rate, "beta2": self.beta2, "epsilon": self.epsilon}


def initialize_rmsprop(parameters: dict) -> dict:
    """Zero second moments ``s["dW1"], s["db1"], ...`` of the parameters' shapes."""
    return zeros_state(parameters)


def update_parameters_with_rmsprop(
    parameters: dict,
    grads: dict,
    s: dict,
    learning_rate: float = 0.01,
    beta2: float = 0.999,
    epsilon: float = 1e-8,
) -> tuple[dict, dict]:
    """One RMSprop step (the week's lectures), in place.

    Parameters
    ----------
    parameters : dict of str to ndarray
        ``W1`` of shape (n_1, n_0), ``b1`` of shape (n_1, 1), ...
    grads : dict of str to ndarray
        ``dW1, db1, ...`` of the same shapes.
    s : dict of str to ndarray
        Moving averages of the squared gradients, keyed like ``grads``.
    learning_rate, beta2, epsilon : float

    Returns
    -------
    parameters, s : dict
        The same dicts, updated.
    """
    hyper = (check_learning_rate(learning_rate), check_beta(beta2, "beta2"), check_epsilon(epsilon))
    course_update(SPEC, rmsprop_rule, parameters, grads, {"s": s}, rmsprop_scalars, hyper)
    return parameters, s
