"""The command line's arguments: their types and the ``info | train | compare`` parser."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from .. import backend, experiment
from ..train import OPTIMIZERS
from . import commands, output
from . import sweep as sweep_command
from .commands import COURSE_LR, DATASETS, DECAY_LR, OUTPUTS

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
            f"invalid optimizer {', '.join(bad) or repr(text)} "
            f"(choose from {', '.join(OPTIMIZERS)})"
        )
    return names


# -------------------------------------------------------------------------- parser
def _add_training_options(parser: argparse.ArgumentParser, *, learning_rate, lr_help: str) -> None:
    group = parser.add_argument_group("training (defaults: the course's)")
    group.add_argument(
        "--learning-rate", type=_positive_float, default=learning_rate, metavar="LR", help=lr_help
    )
    group.add_argument(
        "--epochs",
        type=_count,
        default=5000,
        metavar="N",
        help="passes over the 300 examples (default: %(default)s)",
    )
    group.add_argument(
        "--batch-size",
        type=_batch_size,
        default=64,
        metavar="SIZE",
        help="examples per mini-batch (default: %(default)s); 'full' is the "
        "notebook's batch gradient descent, 1 is stochastic",
    )
    group.add_argument(
        "--decay",
        choices=("none", *experiment.DECAYS),
        default="none",
        help="learning-rate decay after each epoch (default: %(default)s)",
    )
    group.add_argument(
        "--decay-rate",
        type=_non_negative_float,
        default=1.0,
        metavar="RATE",
        help="the decay's rate (default: %(default)s)",
    )
    group.add_argument(
        "--time-interval",
        type=_positive_int,
        default=1000,
        metavar="N",
        help="epochs per step of schedule_lr_decay (default: %(default)s)",
    )
    group.add_argument("--beta", type=_beta, default=0.9, help="momentum (default: %(default)s)")
    group.add_argument(
        "--beta1", type=_beta, default=0.9, help="Adam's first moment (default: %(default)s)"
    )
    group.add_argument(
        "--beta2",
        type=_beta,
        default=0.999,
        help="Adam's and RMSprop's second moment (default: %(default)s)",
    )
    group.add_argument(
        "--epsilon",
        type=_positive_float,
        default=1e-8,
        help="added to the root in Adam and RMSprop (default: %(default)s)",
    )
    group.add_argument(
        "--dtype",
        choices=("float64", "float32"),
        default="float64",
        help="precision of data and parameters (default: %(default)s)",
    )
    group.add_argument(
        "--seed",
        type=int,
        default=10,
        help="the course's mini-batch seed; epoch i shuffles with seed + i + 1 "
        "(default: %(default)s)",
    )
    net = parser.add_argument_group("data and network")
    net.add_argument(
        "--data",
        choices=DATASETS,
        default="moons",
        help="moons: the course's 300 points, network [2, 5, 2, 1]; digits: "
        "scikit-learn's 8x8 digits (pip install 'xpopt[digits]'), 1347 "
        "training and 450 held-out examples, network [64, 64, 10] "
        "(default: %(default)s)",
    )
    net.add_argument(
        "--output",
        choices=OUTPUTS,
        default=None,
        help="the output layer: sigmoid (the course's) or softmax (the digits'; "
        "on the moons a softmax over 2 units, network [2, 5, 2, 2]) "
        "(default: sigmoid for the moons, softmax for the digits)",
    )
    where = parser.add_argument_group("device")
    where.add_argument(
        "--backend",
        choices=backend.BACKENDS,
        default=None,
        help="where to train (default: $XPOPT_BACKEND, else cpu); cuda without a "
        "usable GPU warns and runs on the CPU",
    )
    where.add_argument(
        "--strict",
        action="store_true",
        help="exit with status 2 instead of falling back to the CPU",
    )


def _add_train_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train the course's [2, 5, 2, 1] network with one optimizer",
        description="Train the course's [2, 5, 2, 1] network on the moons as model() does:\n"
        "the course's 'Cost after epoch' lines, then a summary.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        default="adam",
        help="the update rule (default: %(default)s)",
    )
    _add_training_options(
        p, learning_rate=COURSE_LR, lr_help="learning_rate0 (default: %(default)s)"
    )
    out = p.add_argument_group("output")
    out.add_argument(
        "--print-every",
        type=_positive_int,
        default=1000,
        metavar="N",
        help="print the cost every N epochs (default: %(default)s)",
    )
    out.add_argument(
        "--quiet", action="store_true", help="print the summary only (no progress bar either)"
    )
    out.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (shown on stderr only when it is a terminal)",
    )
    out.add_argument(
        "--plot-dir",
        type=Path,
        metavar="DIR",
        help=f"write {output.COST_FIGURE} and {output.BOUNDARY_FIGURE} there (needs matplotlib)",
    )
    out.add_argument(
        "--save",
        type=Path,
        metavar="PATH",
        help="write the trained parameters there (.npz; xpopt.params_io."
        "load_parameters reads them)",
    )
    ck = p.add_argument_group("checkpoints")
    ck.add_argument(
        "--checkpoint",
        type=Path,
        metavar="PATH",
        help="save parameters and optimizer state there (.npz), atomically",
    )
    ck.add_argument(
        "--resume", action="store_true", help="continue from --checkpoint when that file exists"
    )
    ck.add_argument(
        "--checkpoint-every",
        type=_positive_int,
        default=1000,
        metavar="N",
        help="save every N epochs and at the end (default: %(default)s)",
    )
    p.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel over the ranks of an MPI job: mpiexec -n N python -m "
        "mpi4py -m xpopt train --distributed ... (see docs/distributed.md)",
    )
    p.set_defaults(func=commands.train, parser=p)


def _add_compare_parser(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="the notebook's experiment: every optimizer, one table, two figures",
        description="Train the course's network once per optimizer, from the same initialisation\n"
        "on the same mini-batches, and compare final cost, training accuracy and\n"
        f"time. Writes {output.COST_FIGURE} and {output.BOUNDARY_FIGURE} into --out\n"
        "(with --decay, into the decay's own folder: --out/DECAY).\n\n"
        "With --decay it runs what the notebook's decay section runs: gd and\n"
        f"momentum at learning rate {DECAY_LR}, adam at "
        f"{experiment.NOTEBOOK_DECAY_RATES['adam']} (--optimizers and\n"
        "--learning-rate change that; RMSprop, not in the notebook, learns nothing\n"
        "there at 0.1).",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--optimizers",
        type=_optimizer_names,
        nargs="+",
        metavar="NAME",
        default=None,
        help=f"which to train, in order, space- or comma-separated (default: "
        f"{' '.join(OPTIMIZERS)}; with --decay: "
        f"{' '.join(experiment.NOTEBOOK_DECAY_RATES)})",
    )
    _add_training_options(
        p,
        learning_rate=None,
        lr_help=f"learning_rate0 (default: {COURSE_LR}; with --decay the notebook's, see above)",
    )
    out = p.add_argument_group("output")
    out.add_argument(
        "--out",
        type=Path,
        default=Path("xpopt-out"),
        metavar="DIR",
        help="folder for the figures (default: %(default)s)",
    )
    out.add_argument(
        "--no-plots", action="store_true", help="write no figures (matplotlib is then not needed)"
    )
    out.add_argument("--markdown", action="store_true", help="print the table in markdown")
    out.add_argument(
        "--verbose",
        action="store_true",
        help="print each run's 'Cost after epoch' lines (no progress bar then)",
    )
    out.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (shown on stderr only when it is a terminal)",
    )
    p.set_defaults(func=commands.compare, parser=p)


def build_parser() -> argparse.ArgumentParser:
    """The ``xpopt`` argument parser with its ``info``, ``train`` and ``compare`` commands."""
    parser = argparse.ArgumentParser(
        prog="xpopt",
        description=DESCRIPTION,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {output.package_version()}"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser(
        "info",
        help="print the versions, the backend, its device and "
        "whether the compiled CPU kernels are used",
    )
    info.add_argument("--backend", choices=backend.BACKENDS, default=None)
    info.set_defaults(func=commands.info)
    _add_train_parser(sub)
    _add_compare_parser(sub)
    sweep_command.add_parser(sub)
    return parser
