"""The course's helper module, ``opt_utils_v1a``, with its names and signatures, on xpopt.

A notebook of the "Optimization Methods" assignment ports by changing its import::

    from opt_utils_v1a import *      # before
    from xpopt.opt_utils import *    # after

and runs on NumPy or, with ``xpopt.set_backend("cuda")`` before ``load_dataset()``, on the
GPU. What the notebook's cells print (the costs every 1000 epochs, ``Accuracy: ...``) is what
the course's code prints.

Beside the course's network and update functions (re-exported from :mod:`xpopt`), the
module defines the course's own helpers:

- :func:`load_dataset` -- the moons, ``X`` (2, 300) and ``Y`` (1, 300), drawn as the course
  draws them (and plotted, as the course does, when matplotlib is installed);
- :func:`predict` ``(X, y, parameters)`` -- prints ``Accuracy: ...`` and returns ``p``;
- :func:`predict_dec` ``(parameters, X)`` -- ``a3 > 0.5``, for decision boundaries;
- :func:`plot_decision_boundary` ``(model, X, y)`` -- the course's contour plot;
- :func:`model` -- the notebook's ``model()``, which also plots its recorded costs;
- :func:`sigmoid`, :func:`relu`.

Matplotlib (``pip install 'xpopt[plot]'``) is imported only when something is drawn; the
figures go to ``matplotlib.pyplot``'s current figure, as in the notebook.
"""

from __future__ import annotations

import numpy

from .backend import get_xp, to_host, to_module
from .data import load_moons, random_mini_batches
from .evaluate import predict as _predict_labels
from .network import backward_propagation, compute_cost, forward_propagation, initialize_parameters
from .optim import (
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

__all__ = [
    "backward_propagation",
    "compute_cost",
    "forward_propagation",
    "initialize_adam",
    "initialize_parameters",
    "initialize_rmsprop",
    "initialize_velocity",
    "load_dataset",
    "model",
    "plot_decision_boundary",
    "predict",
    "predict_dec",
    "random_mini_batches",
    "relu",
    "schedule_lr_decay",
    "sigmoid",
    "update_lr",
    "update_parameters_with_adam",
    "update_parameters_with_gd",
    "update_parameters_with_momentum",
    "update_parameters_with_rmsprop",
]

_MISSING = "matplotlib is needed to draw this figure: pip install 'xpopt[plot]'"


def _pyplot(required: bool = True):
    try:
        import matplotlib.pyplot as plt  # noqa: PLC0415  (optional, imported on demand)
    except ImportError as exc:
        if required:
            raise ImportError(_MISSING) from exc
        return None
    return plt


def sigmoid(x):
    """``1 / (1 + exp(-x))`` on the array's own module."""
    xp = get_xp(x)
    return 1 / (1 + xp.exp(-x))


def relu(x):
    """``maximum(0, x)`` on the array's own module."""
    xp = get_xp(x)
    return xp.maximum(0, x)


def load_dataset(*, plot: bool | None = None):
    """The course's ``load_dataset()``: the moons data set, as the course draws it.

    ``np.random.seed(3); sklearn.datasets.make_moons(n_samples=300, noise=.2)``, bit for bit
    (:func:`xpopt.load_moons`, without scikit-learn and without touching NumPy's global
    random state), born on the configured backend.

    Parameters
    ----------
    plot : bool, optional
        Scatter the points on the current pyplot figure, as the course does. Default: when
        matplotlib is installed.

    Returns
    -------
    train_X : ndarray of shape (2, 300), float64
    train_Y : ndarray of shape (1, 300), int64 labels 0 and 1 (make_moons' labels)
    """
    train_X, train_Y = load_moons()
    train_Y = train_Y.astype(numpy.int64)
    plt = _pyplot(required=bool(plot)) if plot is not False else None
    if plt is not None:
        x, y = to_host(train_X), to_host(train_Y)
        plt.scatter(x[0, :], x[1, :], c=y.ravel(), s=40, cmap=plt.cm.Spectral)
    return train_X, train_Y


def predict(X, y, parameters):
    """The course's ``predict(X, y, parameters)``: labels, and the accuracy printed.

    ``p[0, i] = 1`` where ``a3[0, i] > 0.5``, else 0; prints
    ``"Accuracy: " + str(mean(p[0, :] == y[0, :]))`` as the course does.

    Parameters
    ----------
    X : ndarray of shape (n_x, m)
    y : ndarray of shape (1, m)
        True labels 0 / 1.
    parameters : dict

    Returns
    -------
    p : ndarray of shape (1, m), int64
        On the device of X.
    """
    p = _predict_labels(X, parameters)
    if tuple(y.shape) != tuple(p.shape):
        raise ValueError(
            f"y must have the shape of the predictions {tuple(p.shape)}, got {tuple(y.shape)}"
        )
    xp = get_xp(p, y)
    print("Accuracy: " + str(float(xp.mean(p[0, :] == y[0, :]))))
    return p


def predict_dec(parameters, X):
    """The course's ``predict_dec(parameters, X)``: ``a3 > 0.5`` (booleans), for plotting.

    ``X`` is moved to the parameters' device and dtype first (the notebook hands in a host
    float64 grid, ``x.T``), so GPU parameters and float32 parameters work unchanged.

    Returns
    -------
    ndarray of shape (1, m), bool
        On the parameters' device.
    """
    first = next(iter(parameters.values()))
    xp = get_xp(first)
    X = to_module(X, xp)
    if X.dtype != first.dtype:
        X = X.astype(first.dtype)
    a3, _ = forward_propagation(xp.ascontiguousarray(X), parameters)
    return a3 > 0.5


def plot_decision_boundary(model, X, y):
    """The course's ``plot_decision_boundary(model, X, y)``.

    ``model`` maps an (N, 2) host grid of points to labels (the notebook passes
    ``lambda x: predict_dec(parameters, x.T)``); the grid spans the data with a margin of 1
    at a step of 0.01. Draws the filled contour and the points on the current pyplot figure
    and calls ``plt.show()``, as the course does.
    """
    plt = _pyplot()
    X, y = to_host(X), to_host(y)
    x_min, x_max = X[0, :].min() - 1, X[0, :].max() + 1
    y_min, y_max = X[1, :].min() - 1, X[1, :].max() + 1
    h = 0.01
    xx, yy = numpy.meshgrid(numpy.arange(x_min, x_max, h), numpy.arange(y_min, y_max, h))
    Z = to_host(model(numpy.c_[xx.ravel(), yy.ravel()]))
    Z = numpy.asarray(Z).reshape(xx.shape)
    plt.contourf(xx, yy, Z, cmap=plt.cm.Spectral)
    plt.ylabel("x2")
    plt.xlabel("x1")
    plt.scatter(X[0, :], X[1, :], c=numpy.ravel(y), cmap=plt.cm.Spectral)
    plt.show()


def model(
    X,
    Y,
    layers_dims,
    optimizer,
    learning_rate=0.0007,
    mini_batch_size=64,
    beta=0.9,
    beta1=0.9,
    beta2=0.999,
    epsilon=1e-8,
    num_epochs=5000,
    print_cost=True,
    decay=None,
    decay_rate=1,
    *,
    plot: bool | None = None,
    output: str = "sigmoid",
):
    """The notebook's ``model()``: :func:`xpopt.model`, then the costs plotted as it does.

    Prints ``Cost after epoch {i}: {cost:f}`` every 1000 epochs (and the learning rate when
    decaying), and plots the cost recorded every 100 epochs (``plot``: default when
    matplotlib is installed). ``output="softmax"`` trains a softmax output layer (see
    :func:`xpopt.train`). Returns the parameters.
    """
    from .train import make_optimizer, train  # noqa: PLC0415 (train imports this package)

    opt = make_optimizer(
        optimizer, learning_rate, beta=beta, beta1=beta1, beta2=beta2, epsilon=epsilon
    )
    result = train(
        X,
        Y,
        layers_dims,
        opt,
        mini_batch_size=mini_batch_size,
        num_epochs=num_epochs,
        decay=decay,
        decay_rate=decay_rate,
        print_cost=print_cost,
        output=output,
    )
    plt = _pyplot(required=bool(plot)) if plot is not False else None
    if plt is not None:
        plt.plot([float(c) for c in result.costs])
        plt.ylabel("cost")
        plt.xlabel("epochs (per 100)")
        plt.title("Learning rate = " + str(learning_rate))
        plt.show()
    return result.parameters
