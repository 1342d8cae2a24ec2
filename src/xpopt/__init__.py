"""xpopt: the optimization methods of deep-learning training on NumPy or CuPy, same code.

``import xpopt`` loads NumPy only; CuPy is imported when a GPU is first asked for.
"""

from .backend import (
    BackendFallbackWarning,
    BackendUnavailableError,
    device_info,
    get_backend,
    get_xp,
    set_backend,
    synchronize,
    to_device,
    to_host,
    use_backend,
)
from .data import MiniBatcher, iterate_minibatches, load_moons, random_mini_batches
from .digits import load_digits
from .flat import FlatDict
from .network import (
    accuracy,
    backward_propagation,
    compute_cost,
    forward_propagation,
    gradient_check,
    initialize_parameters,
    predict,
)
from .optim import (
    GD,
    Adam,
    Momentum,
    Optimizer,
    OptimizerState,
    RMSprop,
    initialize_adam,
    initialize_rmsprop,
    initialize_velocity,
    schedule_lr_decay,
    update_lr,
    update_parameters_with_adam,
    update_parameters_with_gd,
    update_parameters_with_momentum,
    update_parameters_with_rmsprop,
)
from .params_io import load_parameters, parameters_from_checkpoint, save_parameters
from .sweep import SweepResult, sweep
from .train import TrainResult, make_optimizer, model, train

__version__ = "0.1.0"

__all__ = [
    "Adam",
    "BackendFallbackWarning",
    "BackendUnavailableError",
    "FlatDict",
    "GD",
    "MiniBatcher",
    "Momentum",
    "Optimizer",
    "OptimizerState",
    "RMSprop",
    "SweepResult",
    "TrainResult",
    "accuracy",
    "backward_propagation",
    "compute_cost",
    "device_info",
    "forward_propagation",
    "get_backend",
    "get_xp",
    "gradient_check",
    "initialize_adam",
    "initialize_parameters",
    "initialize_rmsprop",
    "initialize_velocity",
    "iterate_minibatches",
    "load_digits",
    "load_moons",
    "load_parameters",
    "make_optimizer",
    "model",
    "parameters_from_checkpoint",
    "predict",
    "random_mini_batches",
    "save_parameters",
    "schedule_lr_decay",
    "set_backend",
    "sweep",
    "synchronize",
    "to_device",
    "to_host",
    "train",
    "update_lr",
    "update_parameters_with_adam",
    "update_parameters_with_gd",
    "update_parameters_with_momentum",
    "update_parameters_with_rmsprop",
    "use_backend",
]
