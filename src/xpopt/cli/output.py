"""What the command line prints and draws: the summary, the figures, the divergence line,
``info``'s fields, the backend's warning and error lines."""

from __future__ import annotations

import importlib.metadata
import math
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy

from .. import backend, plots

#: The figure files, the same names for ``train --plot-dir`` and ``compare --out``.
COST_FIGURE, BOUNDARY_FIGURE = "costs.png", "decision_boundaries.png"


def divergence(rows) -> int:
    """Say so on stderr when a final cost is not finite (exit status 1), or when a run
    learnt nothing (final cost ln 2, chance accuracy: a note); returns the exit status."""
    stuck = [r for r in rows if abs(r.final_cost - math.log(2)) < 1e-3 and r.accuracy <= 0.55]
    if stuck:  # the output is 0.5 everywhere: the network learnt nothing (no divergence)
        names = ", ".join(f"{r.optimizer} (final cost {r.final_cost:.6f})" for r in stuck)
        print(
            f"xpopt: note: {names} did not learn (cost ln 2, chance accuracy); try a "
            f"smaller learning rate (--learning-rate)",
            file=sys.stderr,
        )
    bad = [r for r in rows if not math.isfinite(r.final_cost)]
    if not bad:
        return 0
    names = ", ".join(f"{r.optimizer} (final cost {r.final_cost})" for r in bad)
    print(
        f"xpopt: training diverged: {names}; try a smaller learning rate "
        f"(--learning-rate) or --dtype float64",
        file=sys.stderr,
    )
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


def print_summary(
    row, args, *, m: int, ran: int, device: str, figures, heldout: int | None = None
) -> None:
    lines = [
        ("optimizer", f"{row.optimizer}{decay_text(args)}"),
        ("final cost", f"{row.final_cost:f}"),
        ("train accuracy", f"{row.accuracy:.4f} ({round(row.accuracy * m)}/{m})"),
        ("wall time", f"{row.seconds:.2f} s for {ran} epochs"),
        ("backend", device),
    ]
    if heldout is not None and row.heldout_accuracy is not None:
        right = round(row.heldout_accuracy * heldout)
        lines.insert(3, ("held-out accuracy", f"{row.heldout_accuracy:.4f} ({right}/{heldout})"))
    if getattr(args, "save", None) is not None:
        lines.append(("parameters", str(args.save)))
    if args.decay != "none" and row.result.learning_rates:
        lines.insert(
            2,
            (
                "learning rate",
                f"{args.learning_rate:g} -> {row.result.learning_rates[-1]:g} in the last epoch",
            ),
        )
    if figures:
        lines.append(("figures", ", ".join(str(f) for f in figures)))
    width = max(len(k) for k, _ in lines)
    print()
    for key, value in lines:
        print(f"{key:<{width}} : {value}")


def write_figures(rows, folder: Path, X, Y, *, learning_rate) -> tuple[Path, Path]:
    """:data:`COST_FIGURE` and :data:`BOUNDARY_FIGURE` of the runs in ``rows``, in ``folder``;
    ``learning_rate`` is one number or one per optimizer.

    A cost figure with too few recorded epochs for a curve says so (and a note on stderr
    tells why)."""
    costs = {r.optimizer: r.result.costs for r in rows}
    if isinstance(learning_rate, dict):  # per optimizer: one in the title, or each in its label
        if len(set(learning_rate.values())) > 1:
            costs = {
                f"{name} (learning rate {learning_rate[name]:g})": c for name, c in costs.items()
            }
            learning_rate = None
        else:
            learning_rate = next(iter(learning_rate.values()))
    path = plots.plot_costs(costs, folder / COST_FIGURE, learning_rate=learning_rate)
    if not plots.has_a_curve(costs):
        print(
            f"xpopt: note: {path} draws no curve, {plots.TOO_FEW} ({plots.too_few_detail()})",
            file=sys.stderr,
        )
    boundary = plots.plot_decision_boundaries(
        {r.optimizer: r.result.parameters for r in rows},
        X,
        Y,
        folder / BOUNDARY_FIGURE,
        accuracies={r.optimizer: r.accuracy for r in rows},
    )
    return path, boundary


def train_figures(row, args, X, Y) -> tuple[Path, Path]:
    return write_figures([row], args.plot_dir, X, Y, learning_rate=args.learning_rate)


# ----------------------------------------------------------------- the CUDA backend
def how_cuda_was_asked(args) -> str:
    """``"--backend cuda"`` when the command's option asked for the GPU, else the
    environment's ``"XPOPT_BACKEND=..."``: what a warning or error names, and undoes."""
    if getattr(args, "backend", None):
        return f"--backend {args.backend}"
    return f"XPOPT_BACKEND={os.environ.get('XPOPT_BACKEND', '').strip() or 'cuda'}"


def _cpu_fix(asked: str) -> str:
    if asked.startswith("--backend"):
        return "--backend cpu (or leave out --backend)"
    return "XPOPT_BACKEND=cpu (or unset it)"


def fallback_line(asked: str) -> str:
    """The fallback warning on one line: the GPU was ``asked`` for, why it cannot be used,
    what happens, and the two fixes: install CuPy, or ask for the CPU the way the GPU was
    asked for (``--backend cpu`` for the option, ``XPOPT_BACKEND=cpu`` for the variable)."""
    why = backend.cuda_unavailable_reason() or "No usable GPU."
    return (
        f"{asked}: {why} Falling back to the CPU. GPU: pip install 'xpopt[cuda]'; "
        f"silence: {_cpu_fix(asked)}"
    )


def strict_line(asked: str) -> str:
    """Strict mode's error: the full reason, how to install CuPy, how to run on the CPU."""
    why = backend.cuda_unavailable_reason() or "no usable GPU."
    return (
        f"{asked} in strict mode, but the GPU cannot be used: {why} GPU: pip install "
        f"'xpopt[cuda]' (CUDA 12) or 'xpopt[cuda13]' (CUDA 13); CPU: {_cpu_fix(asked)}"
    )


# -------------------------------------------------------------------------- info
def package_version() -> str:
    """xpopt's installed version (``importlib.metadata``); the source tree's
    ``xpopt.__version__`` when it runs without being installed."""
    try:
        return importlib.metadata.version("xpopt")
    except importlib.metadata.PackageNotFoundError:
        from .. import __version__  # noqa: PLC0415

        return f"{__version__} (not installed: running from the source tree)"


def cupy_status() -> str:
    """CuPy's version and whether it is usable, "not installed", or why it is unusable."""
    from .. import _cupy_builds  # noqa: PLC0415

    why = backend.cuda_unavailable_reason()  # imports CuPy, asks the driver
    if why is None:
        return f"{sys.modules['cupy'].__version__} (usable)"
    builds = _cupy_builds.installed_cupy_builds()
    if not builds and why.startswith("CuPy is not importable"):
        return "not installed (for the GPU: pip install 'xpopt[cuda]')"
    return f"{', '.join(str(b) for b in builds) or 'CuPy'}, unusable: {why}"


def _device(info: dict) -> str:
    if info["backend"] == "cpu":
        return f"{info['device']}, {info['cores']} cores"
    return (
        f"{info['device']} (device {info['device_id']}, compute capability "
        f"{info['compute_capability']}, {info['memory_bytes'] / 2**30:.1f} GiB, "
        f"CUDA runtime {info['cuda_runtime']}, driver {info['cuda_driver']})"
    )


def _host_kernels(info: dict) -> str:
    from .. import hostkernels  # noqa: PLC0415

    why = hostkernels.unavailable_reason()
    return "compiled, in use" if why is None else f"not used: {why}"


def _backend(info: dict) -> str:
    asked = backend.requested().name
    if asked == info["backend"]:
        return info["backend"]
    return f"{info['backend']} (asked for: {asked})"


#: ``info``'s lines, in order: a label and a function of :func:`xpopt.device_info`'s dict.
#: Append to it for a new line.
INFO_FIELDS: list[tuple[str, Callable[[dict], Any]]] = [
    ("xpopt", lambda info: package_version()),
    ("python", lambda info: platform.python_version()),
    ("numpy", lambda info: numpy.__version__),
    ("cupy", lambda info: cupy_status()),
    ("backend", _backend),
    ("device", _device),
    ("host kernels", _host_kernels),
]


def info_lines() -> list[str]:
    """``xpopt info``: each field once, as aligned ``key : value`` lines."""
    info = backend.device_info()
    fields = [(label, str(value(info))) for label, value in INFO_FIELDS]
    width = max(len(label) for label, _ in fields)
    return [f"{label:<{width}} : {value}" for label, value in fields]
