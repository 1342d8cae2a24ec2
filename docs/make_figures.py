"""Draw the tutorial's figures with xpopt itself: ``python docs/make_figures.py``.

Runs the notebook's experiments (section 6: gd, momentum and Adam at the course's settings;
section 7: learning-rate decay) with xpopt's public functions, on the CPU in float64, and
writes the PNGs and markdown tables of the results into ``docs/figures/`` (the tutorial,
``docs/tutorial.md``, shows them). About ten seconds on a 2-core machine; matplotlib is
needed (``pip install '.[plot]'``).

``--epochs N`` trains fewer epochs (a smoke test; the figures are then not the tutorial's).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy

import xpopt

HERE = Path(__file__).resolve().parent
LAYERS = [2, 5, 2, 1]
# the course's plot_decision_boundary axes
XLIM, YLIM = (-1.5, 2.5), (-1.0, 1.5)


def figure(ncols: int = 1, size=(5.0, 3.6)):
    """A matplotlib figure on its own Agg canvas (no pyplot, no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size[0] * ncols, size[1]), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, axes


def scatter(ax, X, Y) -> None:
    ax.scatter(X[0], X[1], c=Y[0], s=14, cmap="Spectral", edgecolors="k", linewidths=0.3)


def boundary(ax, parameters, X, Y, title: str) -> None:
    """The course's ``plot_decision_boundary``: predictions on a 0.01 grid, then the data."""
    xx, yy = numpy.meshgrid(
        numpy.arange(X[0].min() - 1, X[0].max() + 1, 0.01),
        numpy.arange(X[1].min() - 1, X[1].max() + 1, 0.01),
    )
    points = numpy.vstack([xx.ravel(), yy.ravel()])
    Z = xpopt.to_host(xpopt.predict(points, parameters)).reshape(xx.shape)
    ax.contourf(xx, yy, Z, cmap="Spectral", alpha=0.9)
    scatter(ax, X, Y)
    ax.set_xlim(*XLIM)
    ax.set_ylim(*YLIM)
    ax.set_title(title, fontsize=10)


def costs_plot(path: Path, runs: dict, title: str) -> None:
    fig, (ax,) = figure(size=(6.0, 3.8))
    for k, (name, result) in enumerate(runs.items()):
        ax.plot(result.costs, label=name, linestyle=("-", "--", "-.", ":")[k % 4], linewidth=1.8)
    ax.set_xlabel("epochs (per 100)")
    ax.set_ylabel("cost")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(path, dpi=90)


def boundaries_plot(path: Path, runs: dict, X, Y) -> None:
    fig, axes = figure(ncols=len(runs), size=(4.0, 3.2))
    for ax, (name, result) in zip(axes, runs.items(), strict=True):
        acc = xpopt.accuracy(X, Y, result.parameters)
        boundary(ax, result.parameters, X, Y, f"{name} (accuracy {acc:.1%})")
    fig.savefig(path, dpi=90)


def final_cost(X, Y, parameters) -> float:
    """The cost of the final parameters on the whole data set (mean over the examples)."""
    AL, _ = xpopt.forward_propagation(X, parameters)
    return float(xpopt.compute_cost(AL, Y)) / X.shape[1]


def run(X, Y, name: str, learning_rate: float, epochs: int, decay=None):
    """What ``xpopt.model(X, Y, LAYERS, name, learning_rate, ..., decay=decay)`` runs,
    through ``train`` so that the recorded costs come back too."""
    opt = xpopt.make_optimizer(name, learning_rate)
    return xpopt.train(X, Y, LAYERS, opt, num_epochs=epochs, decay=decay)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=HERE / "figures")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    xpopt.set_backend("cpu")
    X, Y = xpopt.load_moons()

    fig, (ax,) = figure(size=(5.0, 3.4))
    scatter(ax, X, Y)
    ax.set_title("load_moons(): 300 examples, labels 0 (red) and 1 (blue)", fontsize=10)
    fig.savefig(out / "moons.png", dpi=90)

    # section 6: the three optimizers at the course's learning rate
    section6 = {name: run(X, Y, name, 0.0007, args.epochs) for name in ("gd", "momentum", "adam")}
    costs_plot(out / "costs.png", section6, "Learning rate = 0.0007")
    boundaries_plot(out / "boundaries.png", section6, X, Y)

    # section 7.1: update_lr every epoch makes the rate vanish; 7.2: fixed intervals
    epochs = numpy.arange(args.epochs)
    fig, (ax,) = figure(size=(6.0, 3.4))
    ax.semilogy(epochs, [xpopt.update_lr(0.1, int(i), 1) for i in epochs], label="update_lr")
    ax.semilogy(
        epochs,
        [xpopt.schedule_lr_decay(0.1, int(i), 1) for i in epochs],
        label="schedule_lr_decay (time_interval=1000)",
        linestyle="--",
    )
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate")
    ax.set_title("learning_rate0 = 0.1, decay_rate = 1", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(out / "lr_schedules.png", dpi=90)

    every = run(X, Y, "gd", 0.1, args.epochs, decay=xpopt.update_lr)
    # section 7.3: each optimizer with schedule_lr_decay (the notebook's rates)
    section7 = {
        name: run(X, Y, name, lr, args.epochs, decay=xpopt.schedule_lr_decay)
        for name, lr in (("gd", 0.1), ("momentum", 0.1), ("adam", 0.01))
    }
    decay_runs = {"gd, update_lr": every}
    decay_runs.update({f"{k}, schedule_lr_decay": v for k, v in section7.items()})
    costs_plot(
        out / "decay_costs.png", decay_runs, "Learning-rate decay (gd and momentum 0.1, adam 0.01)"
    )
    boundaries_plot(out / "decay_boundaries.png", section7, X, Y)

    # the tables of the tutorial's summaries (6.4 and 7.4), included as they are written here
    header = [
        "| optimizer | learning_rate0 | decay | final cost | accuracy |",
        "| --- | ---: | --- | ---: | ---: |",
    ]
    decayed = [("gd", "0.1", "update_lr", every)]
    decayed += [
        (name, lr, "schedule_lr_decay", section7[name])
        for name, lr in (("gd", "0.1"), ("momentum", "0.1"), ("adam", "0.01"))
    ]
    tables = {
        "results-section6.txt": [(n, "0.0007", "none", r) for n, r in section6.items()],
        "results-decay.txt": decayed,
    }
    for filename, rows in tables.items():
        lines = header + [
            f"| {name} | {lr} | {decay} | {final_cost(X, Y, r.parameters):.6f} | "
            f"{xpopt.accuracy(X, Y, r.parameters):.2%} |"
            for name, lr, decay, r in rows
        ]
        text = "\n".join(lines) + "\n"
        (out / filename).write_text(text)
        print(text)
    print(f"figures written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
