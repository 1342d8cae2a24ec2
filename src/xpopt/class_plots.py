"""Figures of a multi-class run: validation curves and confusion matrices, as PNG files.

Drawn as :mod:`xpopt.plots` draws (matplotlib's object-oriented API on an Agg canvas,
matplotlib imported only here and only when a figure is made; ``pip install 'xpopt[plot]'``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy

from .backend import to_host
from .plots import LINESTYLES, _figure, _save

__all__ = ["confusion_matrix", "plot_confusion_matrices", "plot_validation"]


def confusion_matrix(X, Y, parameters: dict, *, output: str = "softmax") -> numpy.ndarray:
    """Counts of (true class, predicted class) over the examples, on the host.

    Parameters
    ----------
    X : ndarray of shape (n_x, m)
    Y : ndarray
        Class labels (1, m) or (m,), or one-hot labels (C, m) (checked).
    parameters : dict
        A network with ``C >= 2`` output units.
    output : {"sigmoid", "softmax"}

    Returns
    -------
    ndarray of shape (C, C), int64
        Row ``i``, column ``j``: examples of class ``i`` predicted as ``j``.
    """
    from .network import forward_propagation  # noqa: PLC0415
    from .softmax import class_labels, predict_classes  # noqa: PLC0415

    AL, _ = forward_propagation(X, parameters, output=output)
    C = AL.shape[0]
    truth = numpy.asarray(to_host(class_labels(Y, C))).ravel()
    guess = numpy.asarray(to_host(predict_classes(AL))).ravel()
    return numpy.bincount(truth * C + guess, minlength=C * C).reshape(C, C).astype(numpy.int64)


def plot_validation(results: Mapping[str, Any], path) -> Path:
    """Training cost, validation cost and validation accuracy against epochs, one curve
    per run (two panels).

    Parameters
    ----------
    results : mapping of str to TrainResult
        Runs of :func:`~xpopt.train` with ``validation=``; the keys label the curves.
    path : path-like
        The PNG file to write (its folder is created).

    Returns
    -------
    Path
    """
    fig, axes = _figure(1, 2, (6.0, 4.2))
    cost_ax, acc_ax = axes[0]
    for k, (name, r) in enumerate(results.items()):
        style = LINESTYLES[k % len(LINESTYLES)]
        (line,) = cost_ax.plot(
            r.record_epochs[: len(r.costs)],
            r.costs,
            linestyle=style,
            linewidth=1.2,
            alpha=0.6,
            label=f"{name} (training)",
        )
        cost_ax.plot(
            r.validation_epochs,
            r.validation_costs,
            linestyle=style,
            linewidth=2,
            color=line.get_color(),
            label=f"{name} (validation)",
        )
        acc_ax.plot(
            r.validation_epochs,
            r.validation_accuracies,
            linestyle=style,
            linewidth=2,
            color=line.get_color(),
            label=str(name),
        )
    cost_ax.set_xlabel("epoch")
    cost_ax.set_ylabel("cost")
    cost_ax.set_yscale("log")
    cost_ax.set_title("Cost: training (thin), validation (thick)")
    acc_ax.set_xlabel("epoch")
    acc_ax.set_ylabel("accuracy")
    acc_ax.set_title("Validation accuracy")
    for ax in (cost_ax, acc_ax):
        ax.grid(alpha=0.3)
        if results:
            ax.legend(fontsize="small")
    return _save(fig, path)


def plot_confusion_matrices(matrices: Mapping[str, numpy.ndarray], path) -> Path:
    """One confusion matrix per run, counts written in the cells, in one grid.

    Parameters
    ----------
    matrices : mapping of str to ndarray of shape (C, C)
        From :func:`confusion_matrix`; the keys title the panels.
    path : path-like

    Returns
    -------
    Path
    """
    n = len(matrices)
    if n == 0:
        raise ValueError("no confusion matrix to draw")
    ncols = min(n, 2)
    nrows = math.ceil(n / ncols)
    fig, axes = _figure(nrows, ncols, (4.6, 4.2))
    for ax, (name, matrix) in zip(axes.flat, matrices.items(), strict=False):  # grid >= n
        matrix = numpy.asarray(matrix)
        C = matrix.shape[0]
        ax.imshow(matrix, cmap="Blues")
        for i in range(C):
            for j in range(C):
                if matrix[i, j]:
                    ax.text(
                        j,
                        i,
                        str(matrix[i, j]),
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if matrix[i, j] > matrix.max() / 2 else "black",
                    )
        right = int(numpy.trace(matrix))
        ax.set_title(f"{name}: {right}/{int(matrix.sum())} right")
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_xticks(range(C))
        ax.set_yticks(range(C))
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    return _save(fig, path)
