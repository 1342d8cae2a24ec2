"""What the command line prints and draws: the summary, the figures, the divergence line."""

from __future__ import annotations

import math
import sys
from pathlib import Path

from .. import backend, plots


def divergence(rows) -> int:
    """Say so on stderr when a final cost is not finite; returns the exit status."""
    bad = [r for r in rows if not math.isfinite(r.final_cost)]
    if not bad:
        return 0
    names = ", ".join(f"{r.optimizer} (final cost {r.final_cost})" for r in bad)
    print(f"xpopt: training diverged: {names}; try a smaller learning rate "
          f"(--learning-rate) or --dtype float64", file=sys.stderr)
    return 1


def device_line() -> str:
    info = backend.device_info()
    if info["backend"] == "cpu":
        return f"cpu ({info['device']}, {info['cores']} cores)"
    return f"cuda ({info['device']}, CuPy {info['cupy']})"


def decay_text(args) -> str:
    if args.decay == "none":
        return ""
    interval = f", every {args.time_interval} epochs" if args.decay == "schedule_lr_decay" else ""
    return f", decay {args.decay} (rate {args.decay_rate:g}{interval})"


def print_summary(row, args, *, m: int, ran: int, device: str, figures) -> None:
    lines = [("optimizer", f"{row.optimizer}{decay_text(args)}"),
             ("final cost", f"{row.final_cost:f}"),
             ("train accuracy", f"{row.accuracy:.4f} ({round(row.accuracy * m)}/{m})"),
             ("wall time", f"{row.seconds:.2f} s for {ran} epochs"),
             ("backend", device)]
    if args.decay != "none" and row.result.learning_rates:
        lines.insert(2, ("learning rate", f"{args.learning_rate:g} -> "
                                          f"{row.result.learning_rates[-1]:g} in the last epoch"))
    if figures:
        lines.append(("figures", ", ".join(str(f) for f in figures)))
    width = max(len(k) for k, _ in lines)
    print()
    for key, value in lines:
        print(f"{key:<{width}} : {value}")


def train_figures(row, args, X, Y) -> tuple[Path, Path]:
    costs = plots.plot_costs({row.optimizer: row.result.costs}, args.plot_dir / "cost.png",
                             learning_rate=args.learning_rate)
    boundary = plots.plot_decision_boundaries({row.optimizer: row.result.parameters}, X, Y,
                                              args.plot_dir / "decision_boundary.png",
                                              accuracies={row.optimizer: row.accuracy})
    return costs, boundary
