"""The command line: ``xpopt info | train | compare`` (also ``python -m xpopt``)."""

from __future__ import annotations

import argparse
import sys

from . import backend


def _info(args) -> int:
    if args.backend:
        backend.set_backend(args.backend)
    print(f"backend: {backend.get_backend()}")
    print(backend.format_device_info(backend.device_info()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xpopt", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="print the effective backend and its device")
    info.add_argument("--backend", choices=backend.BACKENDS, default=None)
    info.set_defaults(func=_info)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except backend.BackendUnavailableError as exc:
        print(f"xpopt: {exc}", file=sys.stderr)
        return 2
