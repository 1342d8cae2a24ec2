"""Adam, with bias correction (``t`` counts Adam steps from 1)::

v = beta1 * v + (1 - beta1) * dW         v_corrected = v / (1 - beta1**t)
s = beta2 * s + (1 - beta2) * dW**2      s_corrected = s / (1 - beta2**t)
W = W - lr * v_corrected / (sqrt(s_corrected) + epsilon)     (epsilon outside the root)
"""

from __future__ import annotations

from ..kernels import KernelSpec, register
from ..validation import check_beta, check_epsilon, check_learning_rate, check_step
from .base import Optimizer, course_update, hyperparameter, zeros_state

# The rule, twice: the CUDA kernel (also compiled for the CPU) and its NumPy twin, the same
# operations in the same order on the same names.
SPEC = register(
    KernelSpec(
        name="xpopt_adam",
        in_params=(
            "T grad, T lr, T beta1, T one_minus_beta1, T beta2, T one_minus_beta2, "
            "T bias1, T bias2, T eps"
        ),
        out_params="T param, T v, T s",
        operation=(
            "v = beta1 * v + one_minus_beta1 * grad;\n"
            "s = beta2 * s + one_minus_beta2 * (grad * grad);\n"
            "const T v_corrected = v / bias1;\n"
            "const T s_corrected = s / bias2;\n"
            "param = param - lr * v_corrected / (sqrt(s_corrected) + eps);"
        ),
        scalars=(
            "lr",
            "beta1",
            "one_minus_beta1",
            "beta2",
            "one_minus_beta2",
            "bias1",
            "bias2",
            "eps",
        ),
    )
)


def adam_rule(
    xp,
    param,
    grad,
    v,
    s,
    a,
    b,
    *,
    lr,
    beta1,
    one_minus_beta1,
    beta2,
    one_minus_beta2,
    bias1,
    bias2,
    eps,
):
    """NumPy twin of :data:`SPEC`, in place (``a``, ``b``: scratch)."""
    xp.multiply(v, beta1, out=v)
    xp.multiply(grad, one_minus_beta1, out=a)
    xp.add(v, a, out=v)
    xp.multiply(s, beta2, out=s)
    xp.multiply(grad, grad, out=a)
    xp.multiply(a, one_minus_beta2, out=a)
    xp.add(s, a, out=s)
    xp.divide(v, bias1, out=a)  # v_corrected
    xp.multiply(a, lr, out=a)
    xp.divide(s, bias2, out=b)  # s_corrected
    xp.sqrt(b, out=b)
    xp.add(b, eps, out=b)
    xp.divide(a, b, out=a)
    xp.subtract(param, a, out=param)


def adam_scalars(
    learning_rate: float, beta1: float, beta2: float, epsilon: float, t: int
) -> dict[str, float]:
    return {
        "lr": learning_rate,
        "beta1": beta1,
        "one_minus_beta1": 1 - beta1,
        "beta2": beta2,
        "one_minus_beta2": 1 - beta2,
        "bias1": 1 - beta1**t,
        "bias2": 1 - beta2**t,
        "eps": epsilon,
    }


class Adam(Optimizer):
    """Adam. ``Adam(learning_rate=0.0007, beta1=0.9, beta2=0.999, epsilon=1e-8, fused=True)``.

    The default ``learning_rate=0.0007`` is the course's ``model()`` default, the same for every
    optimizer object (the course function ``update_parameters_with_adam`` keeps its own 0.01).
    """

    spec = SPEC
    rule = adam_rule
    slots = ("v", "s")
    _beta1: float
    _beta2: float
    _epsilon: float
    beta1 = hyperparameter("beta1", lambda value: check_beta(value, "beta1"))
    beta2 = hyperparameter("beta2", lambda value: check_beta(value, "beta2"))
    epsilon = hyperparameter("epsilon", lambda value: check_epsilon(value))

    def __init__(
        self,
        learning_rate: float = 0.0007,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        *,
        fused: bool = True,
    ):
        super().__init__(learning_rate, fused=fused)
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon

    def scalars(self, learning_rate, t):
        # the stored values (the properties validate on assignment; a read is per step)
        return adam_scalars(learning_rate, self._beta1, self._beta2, self._epsilon, t)

    def hyperparameters(self):
        return {
            "learning_rate": self.learning_rate,
            "beta1": self.beta1,
            "beta2": self.beta2,
            "epsilon": self.epsilon,
        }


def initialize_adam(parameters: dict) -> tuple[dict, dict]:
    """Zero moments ``(v, s)``, each keyed ``dW1, db1, ...`` with the parameters' shapes."""
    return zeros_state(parameters), zeros_state(parameters)


def update_parameters_with_adam(
    parameters: dict,
    grads: dict,
    v: dict,
    s: dict,
    t: int,
    learning_rate: float = 0.01,
    beta1: float = 0.9,
    beta2: float = 0.999,
    epsilon: float = 1e-8,
):
    """The course's Adam step, in place.

    Parameters
    ----------
    parameters : dict of str to ndarray
        ``W1`` of shape (n_1, n_0), ``b1`` of shape (n_1, 1), ...
    grads : dict of str to ndarray
        ``dW1, db1, ...`` of the same shapes.
    v, s : dict of str to ndarray
        First and second moment estimates, keyed like ``grads``.
    t : int
        This step's number, from 1.
    learning_rate, beta1, beta2, epsilon : float

    Returns
    -------
    parameters, v, s : dict
        The same dicts, updated.
    v_corrected, s_corrected : dict
        New dicts ``v / (1 - beta1**t)`` and ``s / (1 - beta2**t)`` (the course returns them;
        the update itself does not store them).
    """
    hyper = (
        check_learning_rate(learning_rate),
        check_beta(beta1, "beta1"),
        check_beta(beta2, "beta2"),
        check_epsilon(epsilon),
    )
    t = check_step(t)
    course_update(SPEC, adam_rule, parameters, grads, {"v": v, "s": s}, adam_scalars, hyper, t)
    bias1, bias2 = 1 - hyper[1] ** t, 1 - hyper[2] ** t  # as adam_scalars computes them
    v_corrected = {k: x / bias1 for k, x in v.items()}
    s_corrected = {k: x / bias2 for k, x in s.items()}
    return parameters, v, s, v_corrected, s_corrected
