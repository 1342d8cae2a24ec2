"""Checkpoints: parameters, optimizer state, epoch, seed and t in one ``.npz``.

Written atomically (a temporary file in the same folder, flushed to disk, then renamed over
the old one), so an interrupted save leaves the last good checkpoint in place. Loaded with
``allow_pickle=False``: a checkpoint holds arrays and one JSON string, nothing executable.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
import numpy

from .backend import get_xp, to_host
from .flat import FlatDict

__all__ = ["CheckpointError", "Checkpoint", "load", "save"]

FORMAT = "xpopt-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint file is truncated, foreign, or does not match the run resuming from it."""


def _host_flat(d: dict) -> numpy.ndarray:
    return to_host(d.flat if isinstance(d, FlatDict) and d.packed else FlatDict.pack(d).flat)


def save(path, *, parameters: dict, state, epoch: int, seed: int, learning_rate: float,
         learning_rates: list, costs: list, optimizer, mini_batch_size: int,
         schedule: dict | None = None) -> None:
    """Write a checkpoint atomically (reads the device once, at this call)."""
    path = os.fspath(path)
    params = parameters if isinstance(parameters, FlatDict) else FlatDict.pack(parameters)
    meta = {
        "format": FORMAT,
        "layout": [[k, list(s)] for k, s in params.layout],
        "dtype": str(params.flat.dtype),
        "optimizer": type(optimizer).__name__,
        "hyperparameters": {k: v for k, v in optimizer.hyperparameters().items() if k != "learning_rate"},
        "epoch": int(epoch), "seed": int(seed), "t": int(state.t),
        "mini_batch_size": int(mini_batch_size),
        "schedule": schedule,
        "learning_rate": float(learning_rate),
        "learning_rates": [float(x) for x in learning_rates],
        "costs": [float(x) for x in costs],
    }
    arrays = {"meta": numpy.array(json.dumps(meta)), "parameters": _host_flat(params)}
    for slot in ("v", "s"):
        value = getattr(state, slot, None)
        if value is not None:
            arrays[slot] = _host_flat(value)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".xpopt-", suffix=".npz.tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            numpy.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@dataclass
class Checkpoint:
    """A loaded checkpoint (host arrays)."""

    meta: dict
    parameters: numpy.ndarray
    slots: dict

    @property
    def epoch(self) -> int:
        return self.meta["epoch"]

    @property
    def t(self) -> int:
        return self.meta["t"]

    @property
    def costs(self) -> list:
        return self.meta["costs"]

    @property
    def learning_rates(self) -> list:
        return self.meta["learning_rates"]

    @property
    def learning_rate(self) -> float:
        return self.meta["learning_rate"]

    def layout(self) -> tuple:
        return tuple((k, tuple(s)) for k, s in self.meta["layout"])

    def restore_into(self, parameters: FlatDict, state, *, optimizer, seed: int,
                     mini_batch_size: int, schedule: dict | None = None) -> None:
        """Copy the saved parameters and state into a run's, after checking they match."""
        meta = self.meta
        problems = []
        if self.layout() != tuple(parameters.layout):
            problems.append(f"network layout {self.layout()} != {tuple(parameters.layout)}")
        if meta["dtype"] != str(parameters.flat.dtype):
            problems.append(f"dtype {meta['dtype']} != {parameters.flat.dtype}")
        if meta["optimizer"] != type(optimizer).__name__:
            problems.append(f"optimizer {meta['optimizer']} != {type(optimizer).__name__}")
        hyper = {k: v for k, v in optimizer.hyperparameters().items() if k != "learning_rate"}
        if meta["hyperparameters"] != hyper:
            problems.append(f"hyperparameters {meta['hyperparameters']} != {hyper}")
        if meta["seed"] != seed:
            problems.append(f"seed {meta['seed']} != {seed}")
        if meta["schedule"] != schedule:
            problems.append(f"learning-rate schedule {meta['schedule']} != {schedule}")
        if meta["mini_batch_size"] != mini_batch_size:
            problems.append(f"mini_batch_size {meta['mini_batch_size']} != {mini_batch_size}")
        for slot in ("v", "s"):
            if (getattr(state, slot, None) is None) != (slot not in self.slots):
                problems.append(f"optimizer state {slot!r} present in only one of them")
        if problems:
            raise CheckpointError("checkpoint does not match this run: " + "; ".join(problems))
        xp = get_xp(parameters.flat)
        parameters.flat[...] = xp.asarray(self.parameters)
        for slot, saved in self.slots.items():
            target = getattr(state, slot)
            target = target if isinstance(target, FlatDict) else FlatDict.pack(target)
            target.flat[...] = xp.asarray(saved)
        state.t = self.t


# The fields save() writes, with their JSON types: a file lacking one is corrupt.
_META_FIELDS = {
    "layout": list, "dtype": str, "optimizer": str, "hyperparameters": dict, "epoch": int,
    "seed": int, "t": int, "mini_batch_size": int, "learning_rate": (int, float),
    "learning_rates": list, "costs": list, "schedule": (dict, type(None)),
}


def _check_meta(path, meta: dict) -> None:
    """Raise CheckpointError naming every missing or malformed metadata field."""
    missing = [k for k in _META_FIELDS if k not in meta]
    malformed = [k for k, typ in _META_FIELDS.items()
                 if k in meta and (not isinstance(meta[k], typ) or isinstance(meta[k], bool))]
    if "layout" in meta and "layout" not in malformed:
        try:
            for key, shape in meta["layout"]:
                if not isinstance(key, str) or not all(isinstance(d, int) and d >= 0 for d in shape):
                    raise ValueError
        except (TypeError, ValueError):
            malformed.append("layout")
    if missing or malformed:
        raise CheckpointError(f"{path}: incomplete or malformed checkpoint metadata "
                              f"(missing {missing}, malformed {malformed})")


def load(path) -> Checkpoint:
    """Read and check a checkpoint; :class:`CheckpointError` names what is wrong."""
    path = os.fspath(path)
    try:
        with numpy.load(path, allow_pickle=False) as data:
            names = set(data.files)
            if "meta" not in names or "parameters" not in names:
                raise CheckpointError(f"{path} is not an xpopt checkpoint (arrays {sorted(names)})")
            meta = json.loads(str(data["meta"][()]))
            arrays = {name: data[name] for name in names - {"meta"}}
    except CheckpointError:
        raise
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{path} is not a readable xpopt checkpoint (truncated or "
                              f"corrupt?): {type(exc).__name__}: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an {FORMAT} file (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    _check_meta(path, meta)
    n = sum(int(numpy.prod(s)) for _, s in meta["layout"])
    for name, a in arrays.items():
        if a.shape != (n,) or str(a.dtype) != meta["dtype"]:
            raise CheckpointError(f"{path}: array {name!r} has shape {a.shape} and dtype {a.dtype}, "
                                  f"expected ({n},) {meta['dtype']}")
    return Checkpoint(meta, arrays.pop("parameters"), arrays)
