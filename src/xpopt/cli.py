"""The command line: ``xpopt info | train | compare`` (also ``python -m xpopt``).

Exit status: 0 on success; 2 for a usage problem (bad arguments, with argparse's message;
a seed NumPy cannot use for every epoch; a checkpoint path or figure folder where nothing
can be written; ``--strict`` with a backend that cannot be used; figures asked for without
matplotlib), found before any training; 1 when a checkpoint cannot be used for the run,
when training diverged (final cost not finite) or the figures could not be written after
training (the summary is printed first); 130 when interrupted.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy

from . import backend, experiment, plots
from .checkpoint import CheckpointError
from .checkpoint import load as load_checkpoint
from .data import load_moons
from .train import OPTIMIZERS, check_settings

DESCRIPTION = """\
The optimization methods of the deeplearning.ai course (gradient descent, momentum,
RMSprop, Adam, learning-rate decay) on the moons data set, on NumPy or, through CuPy,
on the GPU."""

EXIT_CODES = """\
exit status:
  0    success
  1    a checkpoint cannot be used for this run, training diverged (final cost not
       finite), or the figures could not be written after training
  2    bad arguments (a seed out of NumPy's range included), an unwritable checkpoint
       path or figure folder, --strict without a usable GPU, or figures without
       matplotlib: found before training
  130  interrupted (Ctrl-C); a checkpointed run keeps its last save"""

COURSE_LR, DECAY_LR = 0.0007, 0.1  # the notebook's rate, and its decay section's


# ------------------------------------------------------------------ argument types
def _number(text: str, kind, test, what: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what}, got {text!r}") from None
    if not test(value):
        raise argparse.ArgumentTypeError(f"{what}, got {text!r}")
    return value


def _count(text: str) -> int:
    return _number(text, int, lambda v: v >= 0, "expected an integer >= 0")


def _positive_int(text: str) -> int:
    return _number(text, int, lambda v: v >= 1, "expected an integer >= 1")


def _positive_float(text: str) -> float:
    return _number(text, float, lambda v: math.isfinite(v) and v > 0, "expected a number > 0")


def _non_negative_float(text: str) -> float:
    return _number(text, float, lambda v: math.isfinite(v) and v >= 0, "expected a number >= 0")


def _beta(text: str) -> float:
    return _number(text, float, lambda v: 0 <= v < 1, "expected a number in [0, 1)")


def _batch_size(text: str) -> int | None:
    """A mini-batch size, or None for ``full`` (batch gradient descent: all m examples)."""
    if text.strip().lower() in ("full", "all", "m"):
        return None
    return _number(text, int, lambda v: v >= 1, "expected an integer >= 1 or 'full'")


def _optimizer_names(text: str) -> list[str]:
    """``adam`` or ``gd,adam``: names split on commas, each checked."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in OPTIMIZERS]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"invalid optimizer {', '.join(bad) or repr(text)} (choose from {', '.join(OPTIMIZERS)})")
    return names


# -------------------------------------------------------------------------- parser
def _add_training_options(parser: argparse.ArgumentParser, *, learning_rate, lr_help: str) -> None:
    group = parser.add_argument_group("training (defaults: the course's)")
    group.add_argument("--learning-rate", type=_positive_float, default=learning_rate,
                       metavar="LR", help=lr_help)
    group.add_argument("--epochs", type=_count, default=5000, metavar="N",
                       help="passes over the 300 examples (default: %(default)s)")
    group.add_argument("--batch-size", type=_batch_size, default=64, metavar="SIZE",
                       help="examples per mini-batch (default: %(default)s); 'full' is the "
                            "notebook's batch gradient descent, 1 is stochastic")
    group.add_argument("--decay", choices=("none", *experiment.DECAYS), default="none",
                       help="learning-rate decay after each epoch (default: %(default)s)")
    group.add_argument("--decay-rate", type=_non_negative_float, default=1.0, metavar="RATE",
                       help="the decay's rate (default: %(default)s)")
    group.add_argument("--time-interval", type=_positive_int, default=1000, metavar="N",
                       help="epochs per step of schedule_lr_decay (default: %(default)s)")
    group.add_argument("--beta", type=_beta, default=0.9, help="momentum (default: %(default)s)")
    group.add_argument("--beta1", type=_beta, default=0.9,
                       help="Adam's first moment (default: %(default)s)")
    group.add_argument("--beta2", type=_beta, default=0.999,
                       help="Adam's and RMSprop's second moment (default: %(default)s)")
    group.add_argument("--epsilon", type=_positive_float, default=1e-8,
                       help="added to the root in Adam and RMSprop (default: %(default)s)")
    group.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                       help="precision of data and parameters (default: %(default)s)")
    group.add_argument("--seed", type=int, default=10,
                       help="the course's mini-batch seed; epoch i shuffles with seed + i + 1 "
                            "(default: %(default)s)")
    where = parser.add_argument_group("device")
    where.add_argument("--backend", choices=backend.BACKENDS, default=None,
                       help="where to train (default: $XPOPT_BACKEND, else cpu); cuda without a "
                            "usable GPU warns and runs on the CPU")
    where.add_argument("--strict", action="store_true",
                       help="exit with status 2 instead of falling back to the CPU")


def _add_train_parser(sub) -> None:
    p = sub.add_parser(
        "train", help="train the course's [2, 5, 2, 1] network with one optimizer",
        description="Train the course's [2, 5, 2, 1] network on the moons as model() does:\n"
                    "the course's 'Cost after epoch' lines, then a summary.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adam",
                   help="the update rule (default: %(default)s)")
    _add_training_options(p, learning_rate=COURSE_LR,
                          lr_help="learning_rate0 (default: %(default)s)")
    out = p.add_argument_group("output")
    out.add_argument("--print-every", type=_positive_int, default=1000, metavar="N",
                     help="print the cost every N epochs (default: %(default)s)")
    out.add_argument("--quiet", action="store_true", help="print the summary only")
    out.add_argument("--plot-dir", type=Path, metavar="DIR",
                     help="write cost.png and decision_boundary.png there (needs matplotlib)")
    ck = p.add_argument_group("checkpoints")
    ck.add_argument("--checkpoint", type=Path, metavar="PATH",
                    help="save parameters and optimizer state there (.npz), atomically")
    ck.add_argument("--resume", action="store_true",
                    help="continue from --checkpoint when that file exists")
    ck.add_argument("--checkpoint-every", type=_positive_int, default=1000, metavar="N",
                    help="save every N epochs and at the end (default: %(default)s)")
    p.set_defaults(func=_train, parser=p)


def _add_compare_parser(sub) -> None:
    p = sub.add_parser(
        "compare", help="the notebook's experiment: every optimizer, one table, two figures",
        description="Train the course's network once per optimizer, from the same initialisation\n"
                    "on the same mini-batches, and compare final cost, training accuracy and\n"
                    "time. Writes costs.png and decision_boundaries.png into --out.\n\n"
                    "The notebook's decay section trains with learning rate 0.1: with --decay\n"
                    "and no --learning-rate, that is the rate used.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--optimizers", type=_optimizer_names, nargs="+", metavar="NAME",
                   default=[list(OPTIMIZERS)],
                   help=f"which to train, in order, space- or comma-separated "
                        f"(default: {' '.join(OPTIMIZERS)})")
    _add_training_options(p, learning_rate=None,
                          lr_help=f"learning_rate0 (default: {COURSE_LR}, or {DECAY_LR} "
                                  "with --decay, as in the notebook)")
    out = p.add_argument_group("output")
    out.add_argument("--out", type=Path, default=Path("xpopt-out"), metavar="DIR",
                     help="folder for the figures (default: %(default)s)")
    out.add_argument("--no-plots", action="store_true",
                     help="write no figures (matplotlib is then not needed)")
    out.add_argument("--markdown", action="store_true", help="print the table in markdown")
    out.add_argument("--verbose", action="store_true",
                     help="print each run's 'Cost after epoch' lines (no progress bar then)")
    p.set_defaults(func=_compare, parser=p)


def build_parser() -> argparse.ArgumentParser:
    """The ``xpopt`` argument parser with its ``info``, ``train`` and ``compare`` commands."""
    parser = argparse.ArgumentParser(prog="xpopt", description=DESCRIPTION, epilog=EXIT_CODES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="print the effective backend and its device")
    info.add_argument("--backend", choices=backend.BACKENDS, default=None)
    info.set_defaults(func=_info)
    _add_train_parser(sub)
    _add_compare_parser(sub)
    return parser


# ------------------------------------------------------------------------ helpers
class _Failure(Exception):
    """A command stops with a message on stderr and an exit status."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def _require_plots(hint: str) -> None:
    """Fail before any training when figures are wanted and matplotlib is missing."""
    try:
        plots.require_matplotlib()
    except plots.PlotsUnavailableError as exc:
        raise _Failure(f"{exc} ({hint})", 2) from None


def _check_settings(args, checkpoint=None) -> None:
    """What train() would refuse, checked before any data is loaded or epoch run."""
    try:
        check_settings(num_epochs=args.epochs, mini_batch_size=args.batch_size or 1,
                       seed=args.seed, print_every=getattr(args, "print_every", 1000),
                       checkpoint_every=getattr(args, "checkpoint_every", 1000),
                       checkpoint=checkpoint)
    except CheckpointError as exc:
        raise _Failure(str(exc), 2) from None
    except (TypeError, ValueError) as exc:
        args.parser.error(str(exc))


def _check_figure_folder(folder: Path, option: str) -> None:
    """Create the figure folder and write a file there now, not after training."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise _Failure(f"cannot write the figures into {folder} ({option}): "
                       f"{exc.strerror or exc}", 2) from None


def _divergence(rows) -> int:
    """Say so on stderr when a final cost is not finite; returns the exit status."""
    bad = [r for r in rows if not math.isfinite(r.final_cost)]
    if not bad:
        return 0
    names = ", ".join(f"{r.optimizer} (final cost {r.final_cost})" for r in bad)
    print(f"xpopt: training diverged: {names}; try a smaller learning rate "
          f"(--learning-rate) or --dtype float64", file=sys.stderr)
    return 1


def _backend_context(args):
    """``use_backend`` for the command's ``--backend`` / ``--strict`` (env as the default)."""
    name = args.backend or os.environ.get("XPOPT_BACKEND", "").strip().lower() or "cpu"
    if name not in backend.BACKENDS:
        args.parser.error(f"XPOPT_BACKEND must be one of {', '.join(backend.BACKENDS)}, got {name!r}")
    return backend.use_backend(name, strict=True if args.strict else None)


def _device_line() -> str:
    info = backend.device_info()
    if info["backend"] == "cpu":
        return f"cpu ({info['device']}, {info['cores']} cores)"
    return f"cuda ({info['device']}, CuPy {info['cupy']})"


def _decay_text(args) -> str:
    if args.decay == "none":
        return ""
    interval = f", every {args.time_interval} epochs" if args.decay == "schedule_lr_decay" else ""
    return f", decay {args.decay} (rate {args.decay_rate:g}{interval})"


def _hyperparameters(args) -> dict:
    return dict(beta=args.beta, beta1=args.beta1, beta2=args.beta2, epsilon=args.epsilon)


# ----------------------------------------------------------------------- commands
def _info(args) -> int:
    if args.backend:
        backend.set_backend(args.backend)
    print(f"backend: {backend.get_backend()}")
    print(backend.format_device_info(backend.device_info()))
    return 0


def _announce_resume(path: Path, epochs: int) -> int:
    """Say where a resumed run starts; returns the epochs the checkpoint has done."""
    try:
        done = load_checkpoint(path).epoch
    except CheckpointError as exc:
        raise _Failure(str(exc), 1) from None
    if done > epochs:
        # train() would return the checkpoint's later parameters labelled as `epochs` epochs.
        raise _Failure(f"{path} has done {done} epochs, more than --epochs {epochs}", 1)
    print(f"Resuming from {path} at epoch {done}")
    return done


def _train(args) -> int:
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
            raise _Failure(f"cannot write the checkpoint there: {exc}", 2) from None
    _check_settings(args, args.checkpoint)
    if args.plot_dir is not None:
        _check_figure_folder(args.plot_dir, "--plot-dir")
    with _backend_context(args):
        X, Y = load_moons(dtype=numpy.dtype(args.dtype))
        start = 0
        if args.resume and args.checkpoint.exists():
            start = _announce_resume(args.checkpoint, args.epochs)
        try:
            row = experiment.train_timed(
                X, Y, args.optimizer, learning_rate=args.learning_rate, **_hyperparameters(args),
                num_epochs=args.epochs,
                mini_batch_size=X.shape[1] if args.batch_size is None else args.batch_size,
                seed=args.seed, decay=experiment.resolve_decay(args.decay, args.time_interval),
                decay_rate=args.decay_rate, print_cost=not args.quiet,
                print_every=args.print_every, progress=False, checkpoint=args.checkpoint,
                checkpoint_every=args.checkpoint_every, resume=args.resume)
        except CheckpointError as exc:
            raise _Failure(str(exc), 1) from None
        device = _device_line()
    figures = failed = None
    if args.plot_dir is not None:
        try:
            figures = _train_figures(row, args, X, Y)
        except OSError as exc:  # the summary is printed all the same
            failed = f"xpopt: cannot write the figures into {args.plot_dir}: {exc}"
    _print_summary(row, args, m=X.shape[1], ran=max(row.result.epochs - start, 0), device=device,
                   figures=figures)
    if failed:
        print(failed, file=sys.stderr)
        return 1
    return _divergence([row])


def _print_summary(row, args, *, m: int, ran: int, device: str, figures) -> None:
    lines = [("optimizer", f"{row.optimizer}{_decay_text(args)}"),
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


def _train_figures(row, args, X, Y) -> tuple[Path, Path]:
    costs = plots.plot_costs({row.optimizer: row.result.costs}, args.plot_dir / "cost.png",
                             learning_rate=args.learning_rate)
    boundary = plots.plot_decision_boundaries({row.optimizer: row.result.parameters}, X, Y,
                                              args.plot_dir / "decision_boundary.png",
                                              accuracies={row.optimizer: row.accuracy})
    return costs, boundary


def _compare(args) -> int:
    """``xpopt compare``: the notebook's experiment, a table and two figures."""
    names = list(dict.fromkeys(n for group in args.optimizers for n in group))
    decay = None if args.decay == "none" else args.decay
    lr = args.learning_rate
    if lr is None:
        lr = DECAY_LR if decay else COURSE_LR
    if not args.no_plots:
        _require_plots("or pass --no-plots")
    _check_settings(args)
    if not args.no_plots:
        _check_figure_folder(args.out, "--out")
    with _backend_context(args):
        X, Y = load_moons(dtype=numpy.dtype(args.dtype))
        batch = "full batch" if args.batch_size is None else f"mini-batch {args.batch_size}"
        print(f"moons ({X.shape[1]} examples), layers {list(experiment.LAYERS_DIMS)}, "
              f"{args.epochs} epochs, {batch}, learning rate {lr:g}{_decay_text(args)}, "
              f"{args.dtype}, backend {_device_line()}")
        rows = experiment.run_comparison(
            names, num_epochs=args.epochs, learning_rate=lr, mini_batch_size=args.batch_size,
            **_hyperparameters(args), decay=decay, decay_rate=args.decay_rate,
            time_interval=args.time_interval, seed=args.seed, data=(X, Y),
            print_cost=args.verbose, progress=False if args.verbose else None)
    print()
    print(experiment.format_table(rows, markdown=args.markdown))
    if not args.no_plots:
        try:
            costs = plots.plot_costs({r.optimizer: r.result.costs for r in rows},
                                     args.out / "costs.png", learning_rate=lr)
            boundaries = plots.plot_decision_boundaries(
                {r.optimizer: r.result.parameters for r in rows}, X, Y,
                args.out / "decision_boundaries.png",
                accuracies={r.optimizer: r.accuracy for r in rows})
        except OSError as exc:  # the table is printed already
            raise _Failure(f"cannot write the figures into {args.out}: {exc}", 1) from None
        print()
        print(f"figures: {costs}, {boundaries}")
    return _divergence(rows)


# --------------------------------------------------------------------------- main
def _fallback_warning_on_one_line(show):
    """A ``warnings.showwarning`` that prints the backend's fallback warning as one
    ``xpopt: warning:`` line (no source line: it is the user's choice, not a code bug) and
    passes every other warning to ``show``."""

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, backend.BackendFallbackWarning):
            print(f"xpopt: warning: {message}", file=sys.stderr if file is None else file)
        else:
            show(message, category, filename, lineno, file, line)

    return showwarning


def main(argv=None) -> int:
    """Run the command line; returns the exit status (see :data:`EXIT_CODES`)."""
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _fallback_warning_on_one_line(warnings.showwarning)
        try:
            return args.func(args)
        except backend.BackendUnavailableError as exc:
            print(f"xpopt: {exc}", file=sys.stderr)
            return 2
        except _Failure as exc:
            print(f"xpopt: {exc}", file=sys.stderr)
            return exc.status
        except KeyboardInterrupt:
            # A checkpointed run keeps its last save; say so instead of a traceback.
            print("\nxpopt: interrupted", file=sys.stderr)
            return 130
