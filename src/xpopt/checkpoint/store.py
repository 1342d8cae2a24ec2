"""Saving a checkpoint atomically, and loading one with every check."""

from __future__ import annotations

import json
import os

import numpy

from ..backend import get_xp
from .files import write_npz_atomically
from .format import FORMAT, OLD_FORMATS, CheckpointError, check_arrays, check_meta
from .keys import _by_key, _host_by_key, _run_layout
from .saved import Checkpoint


def save(
    path,
    *,
    parameters: dict,
    state,
    epoch: int,
    seed: int,
    learning_rate: float,
    learning_rates: list,
    costs: list,
    optimizer,
    mini_batch_size: int,
    schedule: dict | None = None,
    record_every: int | None = None,
    data: dict | None = None,
) -> None:
    """Write a checkpoint atomically (reads the device once per array set, at this call).

    ``parameters`` and the state's ``v`` / ``s`` are read by key (``W1`` <-> ``dW1``): a
    packed or rebound FlatDict or a plain dict, in any key order. The metadata is checked as
    :func:`load` checks it, so a file that load would refuse is never written; a refused save
    leaves the old checkpoint and the folder as they were.

    ``record_every`` (costs recorded every that many epochs) and ``data`` (a
    :func:`data_fingerprint`) are what :func:`~xpopt.train` saves, to refuse a resume with
    another ``record_every`` or on other data.
    """
    path = os.fspath(path)
    layout = _run_layout(parameters)
    params, problems = _by_key(parameters, layout, "", "parameters")
    slots = {}
    for slot in ("v", "s"):
        value = getattr(state, slot, None)
        if value is not None:
            slots[slot], more = _by_key(value, layout, "d", f"state.{slot}")
            problems += more
    if problems:
        raise ValueError("cannot save this checkpoint: " + "; ".join(problems))
    every = [a for arrays in (params, *slots.values()) for a in arrays]
    dtypes = {str(a.dtype) for a in every}
    if len(dtypes) != 1:
        raise TypeError(f"cannot save a checkpoint of mixed dtypes {sorted(dtypes)}")
    get_xp(*every)  # TypeError when NumPy and CuPy arrays are mixed
    meta = {
        "format": FORMAT,
        "layout": [[k, list(s)] for k, s in layout],
        "dtype": dtypes.pop(),
        "optimizer": type(optimizer).__name__,
        "hyperparameters": {
            k: v for k, v in optimizer.hyperparameters().items() if k != "learning_rate"
        },
        "epoch": int(epoch),
        "seed": int(seed),
        "t": int(state.t),
        "mini_batch_size": int(mini_batch_size),
        "schedule": schedule,
        "record_every": None if record_every is None else int(record_every),
        "data": data,
        "learning_rate": float(learning_rate),
        "learning_rates": [float(x) for x in learning_rates],
        "costs": [float(x) for x in costs],
    }
    arrays = {"parameters": _host_by_key(parameters, params, layout, "")}
    for slot, values in slots.items():
        arrays[slot] = _host_by_key(getattr(state, slot), values, layout, "d")
    check_meta(path, meta)
    check_arrays(path, meta, arrays)
    arrays["meta"] = numpy.array(json.dumps(meta))
    write_npz_atomically(path, arrays)


def load(path) -> Checkpoint:
    """Read and check a checkpoint; :class:`CheckpointError` names what is wrong.

    Whatever the bytes of the file, the outcome is a checkpoint that passed every check or a
    CheckpointError (FileNotFoundError only when there is no file).
    """
    path = os.fspath(path)
    try:
        with numpy.load(path, allow_pickle=False) as data:
            if not hasattr(data, "files"):  # a bare .npy file
                raise CheckpointError(f"{path} is not an xpopt checkpoint (a single array)")
            names = set(data.files)
            if "meta" not in names or "parameters" not in names:
                raise CheckpointError(f"{path} is not an xpopt checkpoint (arrays {sorted(names)})")
            raw = data["meta"]
            if raw.shape != () or raw.dtype.kind != "U":
                raise CheckpointError(f"{path}: its metadata is not a JSON string")
            meta = json.loads(str(raw[()]))
            arrays = {name: data[name] for name in names - {"meta"}}
    except (CheckpointError, FileNotFoundError):
        raise
    except Exception as exc:  # zipfile, zlib, numpy.lib.format, json: any reader's failure
        raise CheckpointError(
            f"{path} is not a readable xpopt checkpoint (truncated or "
            f"corrupt?): {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        if found in OLD_FORMATS:
            raise CheckpointError(
                f"{path} was written by an older xpopt ({found}), without "
                f"record_every and the data's fingerprint: it cannot be "
                f"resumed safely; start the run again"
            )
        raise CheckpointError(f"{path} is not an {FORMAT} file (format {found!r})")
    check_meta(path, meta)
    check_arrays(path, meta, arrays)
    return Checkpoint(meta, arrays.pop("parameters"), arrays)
