"""Which CuPy builds are installed: more than one in an environment is a broken install.

CuPy ships one wheel per CUDA major version (``cupy-cuda11x``, ``cupy-cuda12x``,
``cupy-cuda13x``; older ``cupy-cuda102``-style names; ``cupy-rocm-*``) plus the source
distribution ``cupy``. Every one of them installs the same import package, ``cupy``, so two
in one environment overwrite each other's files and which one runs is undefined (pip
installs both without a word: ``pip install 'xpopt[cuda12]' 'xpopt[cuda13]'``). This
module reads the installed distributions' metadata (no import of CuPy, no CUDA call) and
says which to uninstall.

:func:`check_cupy_builds` is for the backend's CuPy probe, before it imports CuPy (about 2 ms).
"""

from __future__ import annotations

import importlib.metadata
import os
import pathlib
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

__all__ = ["CupyBuild", "check_cupy_builds", "conflict_message", "installed_cupy_builds"]

# normalised (PEP 503) distribution names that install the ``cupy`` import package
_CUPY_DIST = re.compile(r"^cupy(?:-cuda\d+x?|-rocm-\d+-\d+)?$")
_CUDA_MAJOR = re.compile(r"^cupy-cuda(\d+)x$")


def _normalise(name: str) -> str:
    """PEP 503 normalisation: ``CuPy_CUDA12x`` -> ``cupy-cuda12x``."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class CupyBuild:
    """One installed distribution that provides the ``cupy`` package.

    Attributes
    ----------
    name : str
        The distribution's normalised name, e.g. ``"cupy-cuda12x"``.
    version : str
        Its version, e.g. ``"14.2.0"``.
    """

    name: str
    version: str

    @property
    def platform(self) -> str:
        """What it is built for: ``"CUDA 12"``, ``"CUDA 10.2"``, ``"ROCm 5.0"``, or
        ``"built from source"`` for the ``cupy`` source distribution."""
        major = _CUDA_MAJOR.match(self.name)
        if major:
            return f"CUDA {major.group(1)}"
        if self.name.startswith("cupy-cuda"):  # cupy-cuda102: CUDA 10.2
            digits = self.name[len("cupy-cuda") :]
            return f"CUDA {digits[:-1]}.{digits[-1]}"
        if self.name.startswith("cupy-rocm-"):
            return "ROCm " + self.name[len("cupy-rocm-") :].replace("-", ".")
        return "built from source"

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


def _candidates(path: Iterable[str]) -> Iterator[importlib.metadata.Distribution]:
    """The installed distributions on ``path`` whose metadata folder starts with "cupy".

    pip names the folder after the distribution (``cupy_cuda12x-14.2.0.dist-info``), so
    only those few metadata files are read, not every installed package's (a full
    ``importlib.metadata.distributions()`` scan costs tens of milliseconds).
    """
    for entry in path:
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:  # a zip file, a missing folder
            continue
        for folder in names:
            low = folder.lower()
            if low.startswith("cupy") and low.endswith((".dist-info", ".egg-info")):
                full = pathlib.Path(entry or ".", folder)
                if full.is_dir():
                    yield importlib.metadata.PathDistribution(full)


def installed_cupy_builds(path: Sequence[str] | None = None) -> list[CupyBuild]:
    """The installed distributions that provide ``cupy``, sorted by name.

    Reads package metadata only (``importlib.metadata``, the ``cupy*`` metadata folders of
    each path entry): CuPy is not imported.

    Parameters
    ----------
    path : sequence of str, optional
        Where to look for installed distributions; default ``sys.path``.

    Returns
    -------
    list of CupyBuild
        Empty when no CuPy is installed; more than one entry is a broken environment
        (see :func:`conflict_message`). A name found twice on the path counts once, with
        the version that ``importlib.metadata.version`` reports (the first found).
    """
    found: dict[str, CupyBuild] = {}
    for dist in _candidates(sys.path if path is None else path):
        raw = dist.metadata["Name"] if dist.metadata is not None else None
        if not raw:
            continue
        name = _normalise(raw)
        if _CUPY_DIST.match(name) and name not in found:
            found[name] = CupyBuild(name, dist.version)
    return sorted(found.values(), key=lambda b: b.name)


def conflict_message(builds: Sequence[CupyBuild]) -> str | None:
    """What to tell a user whose environment holds several CuPy builds; None for 0 or 1.

    The message names every build and, for each one, the ``pip uninstall`` command that
    keeps it (the user picks the build for their driver: ``nvidia-smi`` prints the CUDA
    version it supports).

    Parameters
    ----------
    builds : sequence of CupyBuild
        As :func:`installed_cupy_builds` returns them.

    Returns
    -------
    str or None
    """
    if len(builds) < 2:
        return None
    listed = ", ".join(str(b) for b in builds)
    keeps = "; ".join(
        "pip uninstall "
        + " ".join(o.name for o in builds if o is not b)
        + f" keeps {b.name} ({b.platform})"
        for b in builds
    )
    return (
        f"{len(builds)} CuPy builds are installed ({listed}) and overwrite each other's "
        f"'cupy'. Keep the one for your CUDA driver (nvidia-smi shows its version): "
        f"{keeps}."
    )


def check_cupy_builds(path: Sequence[str] | None = None) -> str | None:
    """The :func:`conflict_message` of the installed builds: None when at most one is
    installed, else the message naming what to uninstall.

    Parameters
    ----------
    path : sequence of str, optional
        Where to look for installed distributions; default ``sys.path``.

    Returns
    -------
    str or None
    """
    return conflict_message(installed_cupy_builds(path))
