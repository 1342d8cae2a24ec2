"""The course's NumPy code ("Optimization Methods", C2W2) as a benchmark contestant.

The transcription itself lives in ``tests/course_reference.py`` (the oracle of the test
suite). This module loads that one file and re-exports it, so that the benchmarks time
exactly the code the tests compare xpopt against, and there is no second copy to drift.

Loaded under its own module name (not ``course_reference``): a session that collects both
``tests/`` and ``bench/`` may import the file both ways, and two names cannot clash.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent / "tests" / "course_reference.py"
_NAME = "xpopt_bench_course_reference"


def _load():
    module = sys.modules.get(_NAME)
    if module is not None:
        return module
    if not SOURCE.is_file():
        raise ImportError(f"the course's transcription is missing: expected {SOURCE}")
    spec = importlib.util.spec_from_file_location(_NAME, SOURCE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[_NAME] = module  # before exec, as importlib does, for recursive imports
    spec.loader.exec_module(module)
    return module


_reference = _load()

__all__ = [
    name
    for name in vars(_reference)
    if not name.startswith("_")
    and callable(getattr(_reference, name))
    and getattr(getattr(_reference, name), "__module__", None) == _NAME
]
globals().update({name: getattr(_reference, name) for name in __all__})
