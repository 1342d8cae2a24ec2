"""The command line's commands: ``info``, ``train``, ``compare``, each checked before it trains."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy

from .. import backend, experiment, plots
from ..checkpoint import CheckpointError
from ..data import load_moons
from ..train import check_settings
from .output import (
    BOUNDARY_FIGURE,
    COST_FIGURE,
    decay_text,
    device_line,
    divergence,
    info_lines,
    print_summary,
    train_figures,
    write_figures,
)

COURSE_LR, DECAY_LR = 0.0007, 0.1  # the notebook's rate, and its decay section's


# ------------------------------------------------------------------------ helpers
class Failure(Exception):
    """A command stops with a message on stderr and an exit status."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def _require_plots(hint: str) -> None:
    """Fail before any training when figures are wanted and matplotlib is missing."""
    try:
        plots.require_matplotlib()
    except plots.PlotsUnavailableError as exc:
        raise Failure(f"{exc} ({hint})", 2) from None


def _check_settings(args, checkpoint=None) -> None:
    """What train() would refuse, checked before any data is loaded or epoch run."""
    try:
        check_settings(num_epochs=args.epochs, mini_batch_size=args.batch_size or 1,
                       seed=args.seed, print_every=getattr(args, "print_every", 1000),
                       checkpoint_every=getattr(args, "checkpoint_every", 1000),
                       checkpoint=checkpoint)
    except CheckpointError as exc:
        raise Failure(str(exc), 2) from None
    except (TypeError, ValueError) as exc:
        args.parser.error(str(exc))


def _check_figure_folder(folder: Path, option: str) -> None:
    """Create the figure folder and write a file there now, not after training; refuse a
    folder that is a file, and figure names taken by something other than a file."""
    if folder.exists() and not folder.is_dir():
        raise Failure(f"cannot write the figures into {folder} ({option}): it is a file, "
                      f"not a folder", 2)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise Failure(f"cannot write the figures into {folder} ({option}): "
                       f"{exc.strerror or exc}", 2) from None
    for name in (COST_FIGURE, BOUNDARY_FIGURE):
        path = folder / name
        if path.exists() and (not path.is_file() or not os.access(path, os.W_OK)):
            raise Failure(f"cannot write the figures into {folder} ({option}): {path} "
                          f"exists and is not a writable file", 2)


def _backend_context(args):
    """``use_backend`` for the command's ``--backend`` / ``--strict``; what they leave out is
    the choice made outside (``XPOPT_BACKEND``, ``XPOPT_STRICT``), as :mod:`backend` reads it."""
    try:
        backend.requested()  # a bad XPOPT_BACKEND: a usage error, before anything runs
    except ValueError as exc:
        args.parser.error(str(exc))
    return backend.use_backend(args.backend, strict=True if args.strict else None)


def _hyperparameters(args) -> dict:
    return dict(beta=args.beta, beta1=args.beta1, beta2=args.beta2, epsilon=args.epsilon)


# ----------------------------------------------------------------------- commands
def info(args) -> int:
    """``xpopt info``: versions, backend, device, compiled kernels; each field once."""
    if args.backend:
        backend.set_backend(args.backend)
    for line in info_lines():
        print(line)
    from ..distributed import describe_line  # noqa: PLC0415  (mpi4py is not imported)

    print(f"{'distributed':<12} : {describe_line()}")
    return 0


def train(args) -> int:
    """``xpopt train``: one run as the course's model(), its lines, a summary, figures."""
    if args.resume and args.checkpoint is None:
        args.parser.error("--resume needs --checkpoint PATH")
    if args.plot_dir is not None:
        _require_plots("or leave out --plot-dir")
    if args.checkpoint is not None:
        # Fail now, not at the first save (epoch 1000) after minutes of training.
        try:
            args.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise Failure(f"cannot write the checkpoint there: {exc}", 2) from None
    _check_settings(args, args.checkpoint)
    if args.plot_dir is not None:
        _check_figure_folder(args.plot_dir, "--plot-dir")
    if args.distributed:  # every rank of the MPI job trains its shards; rank 0 reports
        from ..distributed.cli import run as run_distributed  # noqa: PLC0415

        return run_distributed(args)
    with _backend_context(args):
        X, Y = load_moons(dtype=numpy.dtype(args.dtype))
        try:
            row = experiment.train_timed(
                X, Y, args.optimizer, learning_rate=args.learning_rate, **_hyperparameters(args),
                num_epochs=args.epochs,
                mini_batch_size=X.shape[1] if args.batch_size is None else args.batch_size,
                seed=args.seed, decay=experiment.resolve_decay(args.decay, args.time_interval),
                decay_rate=args.decay_rate, print_cost=not args.quiet,
                print_every=args.print_every,
                progress=False if args.quiet or args.no_progress else None,
                progress_label=args.optimizer,
                checkpoint=args.checkpoint,
                checkpoint_every=args.checkpoint_every, resume=args.resume)
        except CheckpointError as exc:
            raise Failure(str(exc), 1) from None
        device = device_line()
    figures = failed = None
    if args.plot_dir is not None:
        try:
            figures = train_figures(row, args, X, Y)
        except OSError as exc:  # the summary is printed all the same
            failed = f"xpopt: cannot write the figures into {args.plot_dir}: {exc}"
    ran = row.result.epochs - row.result.start_epoch
    print_summary(row, args, m=X.shape[1], ran=ran, device=device, figures=figures)
    if failed:
        print(failed, file=sys.stderr)
        return 1
    return divergence([row])


def _comparison_plan(args) -> tuple[list[str], dict[str, float]]:
    """The optimizers to compare and each one's learning_rate0.

    Without decay: every optimizer (or ``--optimizers``) at ``--learning-rate`` (the course's
    0.0007). With ``--decay``: the notebook's decay section, gd and momentum at 0.1 and adam
    at 0.01 (:data:`experiment.NOTEBOOK_DECAY_RATES`), unless ``--optimizers`` or
    ``--learning-rate`` say otherwise (an optimizer the notebook does not decay: 0.1).
    """
    decay = args.decay != "none"
    if args.optimizers is not None:
        names = list(dict.fromkeys(n for group in args.optimizers for n in group))
    else:
        names = list(experiment.NOTEBOOK_DECAY_RATES if decay else experiment.OPTIMIZERS)
    if args.learning_rate is not None:
        return names, dict.fromkeys(names, args.learning_rate)
    if decay:
        return names, {n: experiment.NOTEBOOK_DECAY_RATES.get(n, DECAY_LR) for n in names}
    return names, dict.fromkeys(names, COURSE_LR)


def _rates_text(rates: dict[str, float]) -> str:
    values = list(dict.fromkeys(rates.values()))
    if len(values) == 1:
        return f"learning rate {values[0]:g}"
    return "learning rates " + ", ".join(
        f"{v:g} ({', '.join(n for n in rates if rates[n] == v)})" for v in values)


def compare(args) -> int:
    """``xpopt compare``: the notebook's experiment, a table and two figures (with a decay,
    in the decay's own folder under ``--out``)."""
    names, rates = _comparison_plan(args)
    decay = None if args.decay == "none" else args.decay
    out = args.out / decay if decay else args.out
    if not args.no_plots:
        _require_plots("or pass --no-plots")
    _check_settings(args)
    if not args.no_plots:
        _check_figure_folder(out, "--out")
    with _backend_context(args):
        X, Y = load_moons(dtype=numpy.dtype(args.dtype))
        batch = "full batch" if args.batch_size is None else f"mini-batch {args.batch_size}"
        print(f"moons ({X.shape[1]} examples), layers {list(experiment.LAYERS_DIMS)}, "
              f"{args.epochs} epochs, {batch}, {_rates_text(rates)}{decay_text(args)}, "
              f"{args.dtype}, backend {device_line()}")
        rows = experiment.run_comparison(
            names, num_epochs=args.epochs, learning_rate=rates, mini_batch_size=args.batch_size,
            **_hyperparameters(args), decay=decay, decay_rate=args.decay_rate,
            time_interval=args.time_interval, seed=args.seed, data=(X, Y),
            print_cost=args.verbose,
            progress=False if args.verbose or args.no_progress else None)
    print()
    print(experiment.format_table(rows, markdown=args.markdown))
    if not args.no_plots:
        try:
            figures = write_figures(rows, out, X, Y, learning_rate=rates)
        except OSError as exc:  # the table is printed already
            raise Failure(f"cannot write the figures into {out}: {exc}", 1) from None
        print()
        print(f"figures: {figures[0]}, {figures[1]}")
    return divergence(rows)
