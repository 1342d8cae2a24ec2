"""Checkpoints: parameters, optimizer state, epoch, seed and t in one ``.npz``.

Written atomically (a temporary file in the same folder, flushed to disk, then renamed over
the old one), so an interrupted save leaves the last good checkpoint in place. Loaded with
``allow_pickle=False``: a checkpoint holds arrays and one JSON string, nothing executable.

Arrays are read and written BY KEY (``W1``, ``b1``, ...; ``dW1``, ... in the optimizer's
state), never by position, whatever the dicts are: packed :class:`~xpopt.flat.FlatDict`,
FlatDicts whose keys were rebound the course's way (``p["W1"] = p["W1"] - lr * dW1``), or
plain dicts in any key order. Restoring writes into the caller's own arrays, after checking
everything, so a refused restore changes nothing.

A file that is truncated, corrupt, foreign or crafted raises :class:`CheckpointError` from
:func:`load`, and nothing else: every metadata field is checked for type and range.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import secrets
import time
from dataclasses import dataclass

import numpy

from .backend import get_xp, is_cupy_array, to_host
from .flat import FlatDict

__all__ = ["CheckpointError", "Checkpoint", "check_writable", "data_fingerprint", "load", "save"]

FORMAT = "xpopt-checkpoint/2"
OLD_FORMATS = ("xpopt-checkpoint/1",)
ARRAYS = ("parameters", "v", "s")  # the arrays a checkpoint may hold, besides "meta"
SEED_MAX = 2**32 - 1  # numpy.random.RandomState accepts [0, 2**32 - 1]

# Temporary files of an atomic save: ".xpopt-<random>.npz.tmp" next to the checkpoint.
TMP_PREFIX, TMP_SUFFIX = ".xpopt-", ".npz.tmp"
_TMP_NAME = re.compile(r"\.xpopt-[A-Za-z0-9_]{6,32}\.npz\.tmp\Z")
STALE_TMP_SECONDS = 600  # a temporary file this old was left by a killed save


class CheckpointError(ValueError):
    """A checkpoint file is truncated, foreign, or does not match the run resuming from it."""


# ----------------------------------------------------------------------- by key
def _is_array(a) -> bool:
    return isinstance(a, numpy.ndarray) or is_cupy_array(a)


def _run_layout(parameters) -> tuple:
    """``((key, shape), ...)`` of the parameters: a FlatDict's layout (rebound or not), else
    the dict's keys and its arrays' shapes."""
    if not isinstance(parameters, dict) or not parameters:
        raise TypeError(f"parameters must be a non-empty dict of arrays, got {type(parameters).__name__}")
    if isinstance(parameters, FlatDict):
        return tuple(parameters.layout)
    for k, a in parameters.items():
        if not _is_array(a):
            raise TypeError(f"parameters[{k!r}] must be a NumPy or CuPy array, got {type(a).__name__}")
    return tuple((str(k), tuple(a.shape)) for k, a in parameters.items())


def _by_key(d, layout, prefix: str, what: str) -> tuple[list, list]:
    """The arrays of ``d`` for ``layout``'s keys (``prefix + key``), in layout order, and
    the problems found (missing or extra keys, non-arrays, wrong shapes)."""
    if not isinstance(d, dict):
        return [], [f"{what} must be a dict of arrays, got {type(d).__name__}"]
    want = [prefix + k for k, _ in layout]
    missing, extra = sorted(set(want) - set(d)), sorted(map(str, set(d) - set(want)))
    if missing or extra:
        return [], [f"{what} keys differ from the parameters' (missing {missing}, unexpected {extra})"]
    arrays, problems = [], []
    for key, (_, shape) in zip(want, layout):
        a = d[key]
        if not _is_array(a):
            problems.append(f"{what}[{key!r}] is a {type(a).__name__}, not an array")
        elif tuple(a.shape) != tuple(shape):
            problems.append(f"{what}[{key!r}] has shape {tuple(a.shape)}, expected {tuple(shape)}")
        arrays.append(a)
    return arrays, problems


def _packed_as(d, layout, prefix: str) -> bool:
    """True when ``d`` is a packed FlatDict whose buffer is ``layout`` in this order."""
    return (isinstance(d, FlatDict) and d.packed
            and tuple(d.layout) == tuple((prefix + k, tuple(s)) for k, s in layout))


def _host_by_key(d, arrays, layout, prefix: str) -> numpy.ndarray:
    """One host vector of ``d``'s arrays in ``layout`` order (one device read)."""
    if _packed_as(d, layout, prefix):
        return numpy.asarray(to_host(d.flat))
    xp = get_xp(*arrays)
    return numpy.asarray(to_host(xp.concatenate([xp.ravel(a) for a in arrays])))


def data_fingerprint(X, Y) -> dict:
    """Shapes, dtypes and a SHA-256 of the host bytes of (X, Y), to refuse resuming a run on
    other data. Computed once per training call (on CuPy: one device-to-host read of each)."""
    h = hashlib.sha256()
    for a in (X, Y):
        host = numpy.ascontiguousarray(to_host(a))
        h.update(f"{host.dtype.str}{host.shape};".encode())
        h.update(host.reshape(-1).view(numpy.uint8) if host.size else b"")
    return {"shapes": [list(X.shape), list(Y.shape)], "dtypes": [str(X.dtype), str(Y.dtype)],
            "sha256": h.hexdigest()}


# ------------------------------------------------------------------------- files
def _create_temp(folder: str) -> tuple[int, str]:
    """A new temporary file next to the checkpoint, created with mode 0o666 so that the
    umask applies as to any file the user writes (mkstemp would force 0600)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(folder, f"{TMP_PREFIX}{secrets.token_hex(8)}{TMP_SUFFIX}")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary file name in {folder}")


def _remove_stale_temps(folder: str, keep: str | None = None) -> None:
    """Delete temporary files of OUR saves (``.xpopt-<random>.npz.tmp``) in ``folder`` that
    are older than :data:`STALE_TMP_SECONDS`: what a save killed half-way leaves. Another
    process's save in progress writes a fresh file and is left alone; so is anything else."""
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if not _TMP_NAME.match(entry.name) or entry.path == keep:
            continue
        try:
            if (entry.is_file(follow_symlinks=False)
                    and now - entry.stat(follow_symlinks=False).st_mtime > STALE_TMP_SECONDS):
                os.unlink(entry.path)
        except OSError:
            pass


def check_writable(path) -> str:
    """Raise :class:`CheckpointError` unless a checkpoint can be saved at ``path`` (not a
    directory, in an existing folder where a file can be created); returns the path.

    Tried for real: a temporary file is created in the folder and removed again.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise CheckpointError(f"cannot save a checkpoint at {path}: it is a directory")
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = _create_temp(folder)
    except OSError as exc:
        raise CheckpointError(f"cannot save a checkpoint at {path}: "
                              f"{exc.strerror or exc} ({folder})") from None
    os.close(fd)
    os.unlink(tmp)
    return path


def save(path, *, parameters: dict, state, epoch: int, seed: int, learning_rate: float,
         learning_rates: list, costs: list, optimizer, mini_batch_size: int,
         schedule: dict | None = None, record_every: int | None = None,
         data: dict | None = None) -> None:
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
        "hyperparameters": {k: v for k, v in optimizer.hyperparameters().items() if k != "learning_rate"},
        "epoch": int(epoch), "seed": int(seed), "t": int(state.t),
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
    _check_meta(path, meta)
    _check_arrays(path, meta, arrays)
    arrays["meta"] = numpy.array(json.dumps(meta))
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = _create_temp(folder)
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
    _remove_stale_temps(folder)


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

    @property
    def record_every(self) -> int | None:
        return self.meta["record_every"]

    def layout(self) -> tuple:
        return tuple((k, tuple(s)) for k, s in self.meta["layout"])

    def check_progress(self, *, num_epochs: int, learning_rate0: float,
                       batches_per_epoch: int, path="checkpoint") -> None:
        """Refuse resuming a :func:`~xpopt.train` run whose counters do not add up: more
        epochs than ``num_epochs``, another initial learning rate, a learning rate per epoch
        and a cost per ``record_every`` epochs missing or extra, or ``t`` other than one
        step per mini-batch of each epoch done."""
        meta, epoch = self.meta, self.epoch
        if epoch > num_epochs:
            raise CheckpointError(f"{path} has done {epoch} epochs, more than "
                                  f"num_epochs={num_epochs}")
        if self.learning_rates and self.learning_rates[0] != learning_rate0:
            raise CheckpointError(f"{path} was trained from learning rate "
                                  f"{self.learning_rates[0]!r}, this run starts from {learning_rate0!r}")
        problems = []
        if len(self.learning_rates) != epoch:
            problems.append(f"{len(self.learning_rates)} learning rates for {epoch} epochs")
        every = meta["record_every"]
        if every is None or len(self.costs) != -(-epoch // every):
            problems.append(f"{len(self.costs)} costs for {epoch} epochs recorded every {every}")
        if self.t != epoch * batches_per_epoch:
            problems.append(f"t={self.t} after {epoch} epochs of {batches_per_epoch} mini-batches")
        if problems:
            raise CheckpointError(f"{path}: the run's counters do not add up: " + "; ".join(problems))

    def check_matches(self, parameters: dict, state, *, optimizer, seed: int,
                      mini_batch_size: int, schedule: dict | None = None,
                      record_every: int | None = None, data: dict | None = None) -> dict:
        """Raise :class:`CheckpointError` naming every way this checkpoint differs from the
        run (see :meth:`restore_into`); returns the arrays to restore into, by name."""
        meta = self.meta
        problems = []
        try:
            layout = _run_layout(parameters)
        except TypeError as exc:
            raise CheckpointError(f"cannot restore into these parameters: {exc}") from None
        saved_layout = self.layout()
        if dict(saved_layout) != dict(layout):
            problems.append(f"network layout {saved_layout} != {layout}")
            layout = ()
        targets = {}
        if layout:
            targets["parameters"], more = _by_key(parameters, layout, "", "parameters")
            problems += more
            dtypes = sorted({str(a.dtype) for a in targets["parameters"] if _is_array(a)})
            if dtypes and dtypes != [meta["dtype"]]:
                problems.append(f"dtype {meta['dtype']} != {', '.join(dtypes)}")
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
        if meta["record_every"] != record_every:
            problems.append(f"record_every {meta['record_every']} != {record_every} (the "
                            f"recorded costs would be of other epochs)")
        if meta["data"] != data:
            problems.append(_data_problem(meta["data"], data))
        for slot in ("v", "s"):
            value = getattr(state, slot, None)
            if (value is None) != (slot not in self.slots):
                problems.append(f"optimizer state {slot!r} present in only one of them")
            elif value is not None and layout:
                targets[slot], more = _by_key(value, layout, "d", f"state.{slot}")
                problems += more
        if not problems:
            every = [a for arrays in targets.values() for a in arrays]
            if {str(a.dtype) for a in every} != {meta["dtype"]}:
                problems.append(f"dtype {meta['dtype']} != the state's "
                                f"{sorted({str(a.dtype) for a in every})}")
            try:
                get_xp(*every)
            except TypeError as exc:
                problems.append(str(exc))
            if any(isinstance(a, numpy.ndarray) and not a.flags.writeable for a in every):
                problems.append("some of the arrays to restore into are read-only")
        if problems:
            raise CheckpointError("checkpoint does not match this run: " + "; ".join(problems))
        return targets

    def restore_into(self, parameters: dict, state, *, optimizer, seed: int,
                     mini_batch_size: int, schedule: dict | None = None,
                     record_every: int | None = None, data: dict | None = None) -> None:
        """Copy the saved parameters and state into a run's own arrays, by key, after
        checking that everything matches (:meth:`check_matches`); a refused restore
        changes nothing.

        ``parameters`` is a packed or rebound FlatDict or a plain dict; the state's ``v`` and
        ``s`` are keyed ``dW1, ...`` (FlatDicts or plain dicts, in any key order). The
        arrays the dicts hold now are the ones written into.
        """
        targets = self.check_matches(parameters, state, optimizer=optimizer, seed=seed,
                                     mini_batch_size=mini_batch_size, schedule=schedule,
                                     record_every=record_every, data=data)
        saved_layout, layout = self.layout(), _run_layout(parameters)
        offsets, at = {}, 0
        for key, shape in saved_layout:
            n = math.prod(shape)
            offsets[key] = (at, at + n)
            at += n
        sources = {"parameters": ("", parameters, self.parameters),
                   **{slot: ("d", getattr(state, slot), self.slots[slot]) for slot in targets
                      if slot != "parameters"}}
        for name, (prefix, d, saved) in sources.items():
            xp = get_xp(*targets[name])
            if _packed_as(d, saved_layout, prefix):
                d.flat[...] = xp.asarray(saved)
                continue
            for (key, shape), target in zip(layout, targets[name]):
                lo, hi = offsets[key]
                target[...] = xp.asarray(saved[lo:hi].reshape(shape))
        state.t = self.t


def _data_problem(saved, run) -> str:
    if saved is None or run is None:
        return (f"data fingerprint {'missing' if saved is None else 'present'} in the checkpoint, "
                f"{'missing' if run is None else 'present'} in this run")
    if saved.get("shapes") != run.get("shapes") or saved.get("dtypes") != run.get("dtypes"):
        return (f"the checkpoint was trained on other data (shapes {saved.get('shapes')} "
                f"{saved.get('dtypes')}, this run {run.get('shapes')} {run.get('dtypes')})")
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
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)
                and isinstance(item[1], list) and all(_is_int(d) and d >= 0 for d in item[1])):
            return False
        keys.append(item[0])
    return len(set(keys)) == len(keys)


def _dtype_ok(name) -> bool:
    try:
        return isinstance(name, str) and numpy.dtype(name).kind == "f" and str(numpy.dtype(name)) == name
    except (TypeError, ValueError):
        return False


def _fingerprint_ok(data) -> bool:
    if data is None:
        return True
    return (isinstance(data, dict) and set(data) == {"shapes", "dtypes", "sha256"}
            and isinstance(data["shapes"], list) and len(data["shapes"]) == 2
            and all(isinstance(s, list) and all(_is_int(d) and d >= 0 for d in s)
                    for s in data["shapes"])
            and isinstance(data["dtypes"], list) and all(isinstance(d, str) for d in data["dtypes"])
            and isinstance(data["sha256"], str) and re.fullmatch(r"[0-9a-f]{64}", data["sha256"]) is not None)


# Each field save() writes, with the test its value must pass: a file failing one is corrupt.
_META_FIELDS = {
    "layout": _layout_ok,
    "dtype": _dtype_ok,
    "optimizer": lambda x: isinstance(x, str) and x.isidentifier(),
    "hyperparameters": lambda x: isinstance(x, dict) and all(
        isinstance(k, str) and _is_number(v) and math.isfinite(v) for k, v in x.items()),
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


def _check_meta(path, meta: dict) -> None:
    """Raise CheckpointError naming every missing or malformed metadata field, and the
    fields that contradict each other."""
    missing = [k for k in _META_FIELDS if k not in meta]
    malformed = [k for k, ok in _META_FIELDS.items() if k in meta and not ok(meta[k])]
    if missing or malformed:
        raise CheckpointError(f"{path}: incomplete or malformed checkpoint metadata "
                              f"(missing {missing}, malformed {malformed})")
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


def _check_arrays(path, meta: dict, arrays: dict) -> None:
    """The arrays a checkpoint may hold, each of the layout's size and the dtype; moments
    all zero while no step was taken (t = 0)."""
    unexpected = sorted(set(arrays) - set(ARRAYS))
    if unexpected or "parameters" not in arrays:
        raise CheckpointError(f"{path}: unexpected arrays {unexpected} (a checkpoint holds "
                              f"{list(ARRAYS)}, 'parameters' always)")
    n = sum(math.prod(s) for _, s in meta["layout"])
    for name, a in arrays.items():
        if a.shape != (n,) or str(a.dtype) != meta["dtype"]:
            raise CheckpointError(f"{path}: array {name!r} has shape {a.shape} and dtype {a.dtype}, "
                                  f"expected ({n},) {meta['dtype']}")
    if meta["t"] == 0 and any(numpy.any(arrays[s] != 0) for s in ("v", "s") if s in arrays):
        raise CheckpointError(f"{path}: t = 0 (no step taken) but the optimizer's moments "
                              f"are not zero")


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
        raise CheckpointError(f"{path} is not a readable xpopt checkpoint (truncated or "
                              f"corrupt?): {type(exc).__name__}: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        if found in OLD_FORMATS:
            raise CheckpointError(f"{path} was written by an older xpopt ({found}), without "
                                  f"record_every and the data's fingerprint: it cannot be "
                                  f"resumed safely; start the run again")
        raise CheckpointError(f"{path} is not an {FORMAT} file (format {found!r})")
    _check_meta(path, meta)
    _check_arrays(path, meta, arrays)
    return Checkpoint(meta, arrays.pop("parameters"), arrays)
