"""What a checkpoint file must hold: the format's name, each metadata field with its test."""

from __future__ import annotations

import math
import re

import numpy

__all__ = ["ARRAYS", "FORMAT", "OLD_FORMATS", "CheckpointError", "check_arrays", "check_meta"]

FORMAT = "xpopt-checkpoint/2"
OLD_FORMATS = ("xpopt-checkpoint/1",)
ARRAYS = ("parameters", "v", "s")  # the arrays a checkpoint may hold, besides "meta"
SEED_MAX = 2**32 - 1  # numpy.random.RandomState accepts [0, 2**32 - 1]


class CheckpointError(ValueError):
    """A checkpoint file is truncated, foreign, or does not match the run resuming from it."""


def data_problem(saved, run) -> str:
    if saved is None or run is None:
        return (
            f"data fingerprint {'missing' if saved is None else 'present'} in the checkpoint, "
            f"{'missing' if run is None else 'present'} in this run"
        )
    if saved.get("shapes") != run.get("shapes") or saved.get("dtypes") != run.get("dtypes"):
        return (
            f"the checkpoint was trained on other data (shapes {saved.get('shapes')} "
            f"{saved.get('dtypes')}, this run {run.get('shapes')} {run.get('dtypes')})"
        )
    return "the checkpoint was trained on other data (same shapes, other values)"


# --------------------------------------------------------------------- checking
def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _is_rate(x) -> bool:
    return _is_number(x) and math.isfinite(x) and x >= 0


def _layout_ok(layout) -> bool:
    if not isinstance(layout, list) or not layout:
        return False
    keys = []
    for item in layout:
        if not (
            isinstance(item, list)
            and len(item) == 2
            and isinstance(item[0], str)
            and isinstance(item[1], list)
            and all(_is_int(d) and d >= 0 for d in item[1])
        ):
            return False
        keys.append(item[0])
    return len(set(keys)) == len(keys)


def _dtype_ok(name) -> bool:
    try:
        return (
            isinstance(name, str)
            and numpy.dtype(name).kind == "f"
            and str(numpy.dtype(name)) == name
        )
    except (TypeError, ValueError):
        return False


def _fingerprint_ok(data) -> bool:
    if data is None:
        return True
    return (
        isinstance(data, dict)
        and set(data) == {"shapes", "dtypes", "sha256"}
        and isinstance(data["shapes"], list)
        and len(data["shapes"]) == 2
        and all(
            isinstance(s, list) and all(_is_int(d) and d >= 0 for d in s) for s in data["shapes"]
        )
        and isinstance(data["dtypes"], list)
        and all(isinstance(d, str) for d in data["dtypes"])
        and isinstance(data["sha256"], str)
        and re.fullmatch(r"[0-9a-f]{64}", data["sha256"]) is not None
    )


# Each field save() writes, with the test its value must pass: a file failing one is corrupt.
_META_FIELDS = {
    "layout": _layout_ok,
    "dtype": _dtype_ok,
    "optimizer": lambda x: isinstance(x, str) and x.isidentifier(),
    "hyperparameters": lambda x: (
        isinstance(x, dict)
        and all(isinstance(k, str) and _is_number(v) and math.isfinite(v) for k, v in x.items())
    ),
    "epoch": lambda x: _is_int(x) and x >= 0,
    "seed": lambda x: _is_int(x) and -1 <= x < SEED_MAX,
    "t": lambda x: _is_int(x) and x >= 0,
    "mini_batch_size": lambda x: _is_int(x) and x >= 1,
    "schedule": lambda x: x is None or isinstance(x, dict),
    "record_every": lambda x: x is None or (_is_int(x) and x >= 1),
    "data": _fingerprint_ok,
    "learning_rate": _is_rate,
    "learning_rates": lambda x: isinstance(x, list) and all(map(_is_rate, x)),
    "costs": lambda x: isinstance(x, list) and all(map(_is_number, x)),
}


def check_meta(path, meta: dict) -> None:
    """Raise CheckpointError naming every missing or malformed metadata field, and the
    fields that contradict each other."""
    missing = [k for k in _META_FIELDS if k not in meta]
    malformed = [k for k, ok in _META_FIELDS.items() if k in meta and not ok(meta[k])]
    if missing or malformed:
        raise CheckpointError(
            f"{path}: incomplete or malformed checkpoint metadata "
            f"(missing {missing}, malformed {malformed})"
        )
    epoch, problems = meta["epoch"], []
    if meta["seed"] + max(epoch, 1) > SEED_MAX:
        problems.append(f"seed {meta['seed']} + {epoch} epochs leaves NumPy's seed range")
    if len(meta["learning_rates"]) > epoch:
        problems.append(f"{len(meta['learning_rates'])} learning rates for {epoch} epochs")
    every = meta["record_every"]
    if every is not None and len(meta["costs"]) > -(-epoch // every):
        problems.append(f"{len(meta['costs'])} costs for {epoch} epochs recorded every {every}")
    if problems:
        raise CheckpointError(f"{path}: inconsistent checkpoint metadata: " + "; ".join(problems))


def check_arrays(path, meta: dict, arrays: dict) -> None:
    """The arrays a checkpoint may hold, each of the layout's size and the dtype; moments
    all zero while no step was taken (t = 0)."""
    unexpected = sorted(set(arrays) - set(ARRAYS))
    if unexpected or "parameters" not in arrays:
        raise CheckpointError(
            f"{path}: unexpected arrays {unexpected} (a checkpoint holds "
            f"{list(ARRAYS)}, 'parameters' always)"
        )
    n = sum(math.prod(s) for _, s in meta["layout"])
    for name, a in arrays.items():
        if a.shape != (n,) or str(a.dtype) != meta["dtype"]:
            raise CheckpointError(
                f"{path}: array {name!r} has shape {a.shape} and dtype {a.dtype}, "
                f"expected ({n},) {meta['dtype']}"
            )
    if meta["t"] == 0 and any(numpy.any(arrays[s] != 0) for s in ("v", "s") if s in arrays):
        raise CheckpointError(
            f"{path}: t = 0 (no step taken) but the optimizer's moments are not zero"
        )
