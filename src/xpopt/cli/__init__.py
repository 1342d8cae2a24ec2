"""The command line: ``xpopt info | train | compare`` (also ``python -m xpopt``).

Exit status: 0 on success; 2 for a usage problem (bad arguments, with argparse's message;
an ``XPOPT_*`` environment variable of a value xpopt does not understand; a seed NumPy
cannot use for every epoch; a checkpoint path or figure folder where nothing can be written,
an existing file included; ``--strict`` with a backend that cannot be used; figures asked for
without matplotlib), found before any training; 1 when a checkpoint cannot be used for the
run, when training diverged (final cost not finite) or the figures could not be written
after training (the summary is printed first); 130 when interrupted; 141 when the reader of
stdout goes away (``xpopt info | head -1``), without a traceback.
"""

from __future__ import annotations

import os
import sys
import warnings

from .. import backend
from ..settings import check_environment
from .arguments import DESCRIPTION, EXIT_CODES, build_parser  # noqa: F401 (re-exported)
from .commands import COURSE_LR, DECAY_LR, Failure  # noqa: F401 (re-exported)
from .output import fallback_line, how_cuda_was_asked, strict_line

__all__ = ["build_parser", "main"]


def _fallback_warning_on_one_line(show, asked: str):
    """A ``warnings.showwarning`` that prints the backend's fallback warning as one short
    ``xpopt: warning:`` line naming the fix for how the GPU was ``asked`` for (no source
    line: it is the user's choice, not a code bug) and passes every other warning to ``show``."""

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, backend.BackendFallbackWarning):
            print(
                f"xpopt: warning: {fallback_line(asked)}", file=sys.stderr if file is None else file
            )
        else:
            show(message, category, filename, lineno, file, line)

    return showwarning


def main(argv=None) -> int:
    """Run the command line; returns the exit status (see :data:`EXIT_CODES`)."""
    args = build_parser().parse_args(argv)
    try:
        check_environment()  # a bad XPOPT_* value: one line, before anything runs
    except ValueError as exc:
        print(f"xpopt: {exc}", file=sys.stderr)
        return 2
    asked = how_cuda_was_asked(args)
    with warnings.catch_warnings():
        warnings.showwarning = _fallback_warning_on_one_line(warnings.showwarning, asked)
        try:
            return args.func(args)
        except backend.BackendUnavailableError:
            print(f"xpopt: {strict_line(asked)}", file=sys.stderr)
            return 2
        except Failure as exc:
            print(f"xpopt: {exc}", file=sys.stderr)
            return exc.status
        except KeyboardInterrupt:
            # A checkpointed run keeps its last save; say so instead of a traceback.
            print("\nxpopt: interrupted", file=sys.stderr)
            return 130
        except BrokenPipeError:
            # stdout's reader left (`xpopt info | head -1`): stop quietly, as `cat` does;
            # stdout goes to devnull so that the interpreter's final flush does not fail.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141
