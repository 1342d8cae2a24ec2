"""Update rules (GD, momentum, RMSprop, Adam) and learning-rate schedules."""

# The rules in order of increasing complexity: the order their kernel specs are registered
# in xpopt.kernels.SPECS (and built for the CPU).
from . import gd, momentum, rmsprop, adam  # noqa: F401, I001
from .adam import Adam, initialize_adam, update_parameters_with_adam
from .base import Optimizer, OptimizerState
from .gd import GD, update_parameters_with_gd
from .momentum import Momentum, initialize_velocity, update_parameters_with_momentum
from .rmsprop import RMSprop, initialize_rmsprop, update_parameters_with_rmsprop
from .schedules import schedule_lr_decay, update_lr

__all__ = [
    "Adam",
    "GD",
    "Momentum",
    "Optimizer",
    "OptimizerState",
    "RMSprop",
    "initialize_adam",
    "initialize_rmsprop",
    "initialize_velocity",
    "schedule_lr_decay",
    "update_lr",
    "update_parameters_with_adam",
    "update_parameters_with_gd",
    "update_parameters_with_momentum",
    "update_parameters_with_rmsprop",
]
