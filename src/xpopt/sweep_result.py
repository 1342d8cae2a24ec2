"""What :func:`xpopt.sweep` returns: every model's settings, parameters and costs, a table
and two figures (matplotlib is optional and imported only when a figure is drawn)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy

__all__ = ["SweepResult"]

METRICS = ("accuracy", "final_cost")


def _fmt(value) -> str:
    if callable(value):
        return getattr(value, "__name__", type(value).__name__)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass
class SweepResult:
    """The models of a sweep, in grid order (the last axis varies fastest).

    Attributes
    ----------
    axes : dict of str to list
        The arguments given as lists: name -> values.
    settings : list of dict
        ``settings[k]``: model ``k``'s value on each axis.
    parameters : list of FlatDict
        ``W1, b1, ...`` of each model, on the data's device (views into the sweep's buffer).
    costs : list of list of float
        ``cost_avg`` every ``record_every`` epochs (epoch 0, ...), as ``train`` records them.
    final_cost : list of float
        The cost of the trained network over the whole data set (as ``compare`` reports).
    accuracy : list of float
        Training accuracy of the trained network.
    record_every : int
    seconds : float
        Wall time of the training (all groups), device work included.
    """

    axes: dict
    settings: list
    parameters: list
    costs: list
    final_cost: list
    accuracy: list
    record_every: int = 100
    seconds: float = 0.0

    def __len__(self) -> int:
        return len(self.settings)

    def _metric(self, metric: str) -> numpy.ndarray:
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        return numpy.asarray(getattr(self, metric), dtype=numpy.float64)

    def best(self, n: int = 5, metric: str = "final_cost") -> list[int]:
        """The indices of the ``n`` best models: lowest final cost or highest accuracy."""
        values = self._metric(metric)
        order = numpy.argsort(-values if metric == "accuracy" else values, kind="stable")
        return [int(k) for k in order[:n]]

    def table(self, *, sort: str | None = None, markdown: bool = False) -> str:
        """One row per model: its settings, final cost and training accuracy.

        Parameters
        ----------
        sort : {None, "accuracy", "final_cost"}
            Grid order by default; else best first.
        markdown : bool
            A pipe table, as ``compare --markdown`` prints.
        """
        order = range(len(self)) if sort is None else self.best(len(self), sort)
        headers = ["model", *self.axes, "final cost", "train accuracy"]
        body = [
            [
                str(k),
                *(_fmt(self.settings[k][a]) for a in self.axes),
                f"{self.final_cost[k]:.6f}",
                f"{self.accuracy[k]:.4f}",
            ]
            for k in order
        ]
        widths = [
            max(len(h), *(len(r[i]) for r in body)) if body else len(h)
            for i, h in enumerate(headers)
        ]

        def line(cells):
            return [c.rjust(w) for c, w in zip(cells, widths, strict=True)]

        if markdown:
            rule = ["-" * (w - 1) + ":" for w in widths]
            rows = [line(headers), rule, *map(line, body)]
            return "\n".join("| " + " | ".join(r) + " |" for r in rows)
        rows = [line(headers), ["-" * w for w in widths], *map(line, body)]
        return "\n".join("  ".join(r).rstrip() for r in rows)

    def summary(self, x_axis: str, y_axis: str, metric: str = "accuracy"):
        """Mean and spread (standard deviation) of ``metric`` over the other axes.

        Returns
        -------
        xs, ys : list
            The axes' values.
        mean, std : ndarray of shape (len(ys), len(xs))
        """
        for a in (x_axis, y_axis):
            if a not in self.axes:
                raise ValueError(f"{a!r} is not an axis of this sweep; axes: {list(self.axes)}")
        if x_axis == y_axis:
            raise ValueError("x_axis and y_axis must differ")
        values = self._metric(metric)
        xs, ys = self.axes[x_axis], self.axes[y_axis]
        cells: list[list[list[float]]] = [[[] for _ in xs] for _ in ys]
        for k, s in enumerate(self.settings):
            cells[ys.index(s[y_axis])][xs.index(s[x_axis])].append(values[k])
        mean = numpy.array([[numpy.mean(c) for c in row] for row in cells])
        std = numpy.array([[numpy.std(c) for c in row] for row in cells])
        return xs, ys, mean, std

    def plot_heatmap(
        self,
        x_axis: str,
        y_axis: str,
        metric: str = "accuracy",
        path: str | os.PathLike | None = None,
    ):
        """A heatmap of ``metric`` over two axes: the mean over the other axes (seeds, ...),
        each cell annotated ``mean ± std``. Writes a PNG when ``path`` is given.

        Returns
        -------
        matplotlib.figure.Figure
        """
        xs, ys, mean, std = self.summary(x_axis, y_axis, metric)
        fig, ax = _figure((1.2 + 1.1 * len(xs), 1.0 + 0.6 * len(ys)))
        image = ax.imshow(
            mean,
            cmap="viridis" if metric == "accuracy" else "viridis_r",
            aspect="auto",
            origin="lower",
        )
        ax.set_xticks(range(len(xs)), [_fmt(v) for v in xs])
        ax.set_yticks(range(len(ys)), [_fmt(v) for v in ys])
        ax.set_xlabel(x_axis)
        ax.set_ylabel(y_axis)
        low, high = image.get_clim()
        for i in range(len(ys)):
            for j in range(len(xs)):
                light = (mean[i, j] - low) / ((high - low) or 1.0)  # dark text on light cells
                if metric != "accuracy":
                    light = 1.0 - light
                ax.text(
                    j,
                    i,
                    f"{mean[i, j]:.3f}\n±{std[i, j]:.3f}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="k" if light > 0.6 else "w",
                )
        ax.set_title(f"{metric.replace('_', ' ')}: mean ± std over the other axes")
        fig.colorbar(image, ax=ax, label=metric.replace("_", " "))
        _save(fig, path)
        return fig

    def plot_best(
        self, n: int = 5, metric: str = "final_cost", path: str | os.PathLike | None = None
    ):
        """The recorded cost curves of the ``n`` best models, labelled by their settings.

        Returns
        -------
        matplotlib.figure.Figure
        """
        fig, ax = _figure((7.0, 4.5))
        for k in self.best(n, metric):
            label = ", ".join(f"{a}={_fmt(self.settings[k][a])}" for a in self.axes) or f"model {k}"
            epochs = numpy.arange(len(self.costs[k])) * self.record_every
            ax.plot(epochs, self.costs[k], label=label, linewidth=1.5)
        ax.set_xlabel("epoch")
        ax.set_ylabel("cost")
        ax.set_title(f"The {n} best by {metric.replace('_', ' ')}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        _save(fig, path)
        return fig


def _figure(size):
    from .plots import require_matplotlib  # noqa: PLC0415  (matplotlib on demand)

    matplotlib = require_matplotlib()
    fig = matplotlib.figure.Figure(figsize=size, layout="constrained")
    matplotlib.backends.backend_agg.FigureCanvasAgg(fig)
    return fig, fig.subplots()


def _save(fig, path) -> Path | None:
    if path is None:
        return None
    path = Path(os.fspath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    return path
