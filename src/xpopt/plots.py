"""The course's figures, written to PNG files: cost curves and decision boundaries.

Matplotlib is optional (the ``plot`` extra) and imported only when a figure is made.
Figures are drawn with matplotlib's object-oriented API on an Agg canvas, never through
``pyplot``: no display is needed, no global figure state is kept, and an interactive
session's own backend is left as it was.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy

from .backend import to_host
from .network import accuracy, predict

__all__ = [
    "MISSING_MATPLOTLIB",
    "TOO_FEW",
    "PlotsUnavailableError",
    "decision_grid",
    "has_a_curve",
    "plot_costs",
    "plot_decision_boundaries",
    "require_matplotlib",
    "too_few_detail",
]

MISSING_MATPLOTLIB = "matplotlib is needed for figures: pip install 'xpopt[plot]'"
LINESTYLES = ("-", "--", "-.", ":")
CMAP = "Spectral"  # the course's colour map: label 0 red, label 1 blue
TOO_FEW = "too few recorded epochs to draw a cost curve"


def too_few_detail(record_every: int = 100) -> str:
    """Why :data:`TOO_FEW`, and the fix: a curve needs two recorded costs."""
    return (
        f"a cost is recorded every {record_every} epochs, a curve needs two: "
        f"train more than {record_every} epochs"
    )


class PlotsUnavailableError(ImportError):
    """Matplotlib, needed to draw figures, is not importable."""


def require_matplotlib():
    """Import matplotlib or raise :class:`PlotsUnavailableError` with the install hint.

    Call it before long work whose figures are wanted, so a missing extra fails early.

    Returns
    -------
    module
        ``matplotlib``.
    """
    try:
        import matplotlib  # noqa: PLC0415  (optional dependency, imported on demand)
        import matplotlib.backends.backend_agg  # noqa: F401, PLC0415
        import matplotlib.figure  # noqa: F401, PLC0415
    except ImportError as exc:
        raise PlotsUnavailableError(MISSING_MATPLOTLIB) from exc
    return matplotlib


def _figure(nrows: int, ncols: int, size: tuple[float, float]):
    """A figure on its own Agg canvas and its axes as a 2-D array."""
    matplotlib = require_matplotlib()
    fig = matplotlib.figure.Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    matplotlib.backends.backend_agg.FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def _save(fig, path) -> Path:
    path = Path(os.fspath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    return path


def _host_curve(costs) -> numpy.ndarray:
    return numpy.asarray(to_host(costs), dtype=numpy.float64).ravel()


def has_a_curve(results: Mapping[str, Any]) -> bool:
    """Whether some run of ``results`` recorded at least two costs (a line to draw)."""
    return any(_host_curve(costs).size >= 2 for costs in results.values())


def plot_costs(
    results: Mapping[str, Any], path, learning_rate: float | None = None, *, record_every: int = 100
) -> Path:
    """The course's cost plot, one curve per run: cost against epochs (per 100).

    When no run has two recorded costs (a run of at most ``record_every`` epochs), there is
    no curve to draw: the figure then says so (:data:`TOO_FEW`) in place of empty axes.

    Parameters
    ----------
    results : mapping of str to sequence of float
        Each run's recorded costs (``TrainResult.costs``: one every ``record_every``
        epochs), as lists or NumPy / CuPy arrays; the keys label the curves.
    path : path-like
        The PNG file to write (its folder is created).
    learning_rate : float, optional
        Shown in the title, as the course does.
    record_every : int
        Epochs between recorded costs, for the x-axis label.

    Returns
    -------
    Path
        The file written.
    """
    fig, axes = _figure(1, 1, (7.0, 4.5))
    ax = axes[0, 0]
    if not has_a_curve(results):
        ax.set_axis_off()
        recorded = ", ".join(f"{name}: {_host_curve(c).size}" for name, c in results.items())
        ax.text(
            0.5,
            0.5,
            f"{TOO_FEW}\n({too_few_detail(record_every)})\n\nrecorded costs: {recorded or 'none'}",
            ha="center",
            va="center",
            wrap=True,
            fontsize=11,
            transform=ax.transAxes,
        )
        return _save(fig, path)
    for k, (name, costs) in enumerate(results.items()):
        curve = _host_curve(costs)
        # Curves often coincide (gd and momentum at the course's rate): vary the dashes
        # so the one drawn first stays visible under the next.
        ax.plot(
            numpy.arange(curve.size),
            curve,
            label=str(name),
            linestyle=LINESTYLES[k % len(LINESTYLES)],
            linewidth=1.8,
            marker="o" if curve.size == 1 else None,
        )  # a lone cost: a dot, not nothing
    ax.set_xlabel(f"epochs (per {record_every})")
    ax.set_ylabel("cost")
    ax.set_title("Cost" if learning_rate is None else f"Learning rate = {learning_rate:g}")
    if results:
        ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)


def decision_grid(X, step: float = 0.01, margin: float = 1.0):
    """The course's grid for ``plot_decision_boundary``: the data's range ``± margin``.

    Parameters
    ----------
    X : ndarray of shape (2, m)
        On the host.
    step, margin : float

    Returns
    -------
    xx, yy : ndarray of shape (ny, nx)
        ``numpy.meshgrid`` of ``arange(min - margin, max + margin, step)`` per axis.
    points : ndarray of shape (2, nx * ny)
        The grid's points as columns, ready for :func:`~xpopt.predict`.
    """
    x_min, x_max = X[0].min() - margin, X[0].max() + margin
    y_min, y_max = X[1].min() - margin, X[1].max() + margin
    xx, yy = numpy.meshgrid(numpy.arange(x_min, x_max, step), numpy.arange(y_min, y_max, step))
    return xx, yy, numpy.vstack([xx.ravel(), yy.ravel()])


def _draw_boundary(ax, xx, yy, points, X, labels, params: dict, title: str) -> None:
    dtype = params["W1"].dtype  # the forward pass refuses to mix precisions
    Z = predict(points.astype(dtype, copy=False), params).reshape(xx.shape)
    # Fixed levels and colour limits: label 0 and 1 keep their colours even when the
    # network predicts one class everywhere (auto levels would then find no contour).
    ax.contourf(xx, yy, Z, levels=[-0.5, 0.5, 1.5], cmap=CMAP, vmin=-0.5, vmax=1.5)
    ax.scatter(
        X[0], X[1], c=labels, cmap=CMAP, vmin=0, vmax=1, s=14, edgecolors="black", linewidths=0.3
    )
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title(title)


def plot_decision_boundaries(
    parameters_by_name: Mapping[str, dict],
    X,
    Y,
    path,
    accuracies: Mapping[str, float] | None = None,
) -> Path:
    """The course's ``plot_decision_boundary`` for each trained network, in one grid.

    Each subplot fills the data's range ±1 (step 0.01) with the network's predicted class
    and scatters the examples coloured by their label.

    Parameters
    ----------
    parameters_by_name : mapping of str to dict
        Trained parameters ``W1, b1, ...`` (NumPy or CuPy), keyed by the name to show.
    X : ndarray of shape (2, m)
    Y : ndarray of shape (1, m)
        The training data, NumPy or CuPy.
    path : path-like
        The PNG file to write (its folder is created).
    accuracies : mapping of str to float, optional
        Shown in the titles; computed on (X, Y) for the names it lacks.

    Returns
    -------
    Path
        The file written.
    """
    X = numpy.asarray(to_host(X))
    Y = numpy.asarray(to_host(Y))
    if X.ndim != 2 or X.shape[0] != 2:
        raise ValueError(f"X must have shape (2, m) to be drawn in the plane, got {X.shape}")
    n = len(parameters_by_name)
    if n == 0:
        raise ValueError("no parameters to draw")
    ncols = math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    fig, axes = _figure(nrows, ncols, (5.0, 3.8))
    xx, yy, points = decision_grid(X)
    accuracies = dict(accuracies or {})
    # a grid may hold more cells than networks: the extra ones are hidden below
    for ax, (name, parameters) in zip(axes.flat, parameters_by_name.items(), strict=False):
        params = to_host(parameters)
        if name not in accuracies:
            accuracies[name] = accuracy(
                X.astype(params["W1"].dtype, copy=False),
                Y.astype(params["W1"].dtype, copy=False),
                params,
            )
        _draw_boundary(
            ax,
            xx,
            yy,
            points,
            X,
            Y.ravel(),
            params,
            f"{name}: train accuracy {accuracies[name]:.4f}",
        )
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)  # a 3-optimizer comparison leaves one cell of its 2x2 grid
    return _save(fig, path)
