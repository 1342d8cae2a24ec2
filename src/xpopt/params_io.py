"""Trained parameters kept in a file: :func:`save_parameters` and :func:`load_parameters`.

The file is an ordinary ``.npz``: one array per parameter under its own name (``W1``,
``b1``, ...; ``numpy.load(path)["W1"]`` reads one without xpopt) and a JSON string under
``__xpopt__`` holding the format's name, the layout (keys and shapes, in order) and the
dtype. Written atomically, as checkpoints are (a temporary file in the same folder, flushed
to disk, then renamed over the old one); read with ``allow_pickle=False`` and every field
checked, so a truncated, foreign or edited file raises :class:`ParameterFileError` and
nothing else.

:func:`load_parameters` also reads the parameters of a checkpoint written by
``xpopt.train(..., checkpoint=path)`` (:func:`parameters_from_checkpoint`): both give a
packed :class:`~xpopt.flat.FlatDict` on the configured backend, which every function of
xpopt accepts.
"""

from __future__ import annotations

import json
import math
import os

import numpy

from .backend import get_xp, to_device
from .checkpoint import CheckpointError
from .checkpoint import load as _load_checkpoint
from .checkpoint.files import write_npz_atomically
from .checkpoint.format import FORMAT as CHECKPOINT_FORMAT
from .checkpoint.format import _dtype_ok, _layout_ok
from .checkpoint.keys import _by_key, _host_by_key, _run_layout
from .flat import FlatDict

__all__ = [
    "FORMAT",
    "ParameterFileError",
    "load_parameters",
    "parameters_from_checkpoint",
    "save_parameters",
]

FORMAT = "xpopt-parameters/1"
META = "__xpopt__"  # the npz entry holding the JSON metadata; no parameter may be named so


class ParameterFileError(ValueError):
    """A parameter file is truncated, corrupt, foreign, or not what the caller expects."""


def save_parameters(path, parameters: dict) -> None:
    """Write a network's parameters to ``path`` (an ``.npz`` file, written atomically).

    Parameters
    ----------
    path : str or os.PathLike
        Used as given (no ``.npz`` is appended). An existing file is replaced only once the
        new one is complete.
    parameters : dict
        ``W1, b1, ...`` (any keys, in any order; the order is kept): a FlatDict, packed or
        rebound the course's way, or a plain dict of NumPy or CuPy arrays, all of one
        floating dtype and one device. Read from the device once.

    Raises
    ------
    TypeError
        Not a dict of arrays, mixed dtypes or devices, a non-floating dtype.
    ValueError
        An empty dict, a key named ``__xpopt__``, a non-string key.
    """
    path = os.fspath(path)
    if not isinstance(parameters, dict) or not parameters:
        raise TypeError(
            f"parameters must be a non-empty dict of arrays, got "
            f"{type(parameters).__name__}" + (" (empty)" if parameters == {} else "")
        )
    if any(not isinstance(k, str) for k in parameters):
        raise ValueError(f"parameter names must be strings, got {list(parameters)}")
    if META in parameters:
        raise ValueError(f"a parameter may not be named {META!r} (the file's metadata entry)")
    layout = _run_layout(parameters)
    arrays, problems = _by_key(parameters, layout, "", "parameters")
    if problems:
        raise ValueError("cannot save these parameters: " + "; ".join(problems))
    dtypes = {str(a.dtype) for a in arrays}
    if len(dtypes) != 1:
        raise TypeError(f"cannot save parameters of mixed dtypes {sorted(dtypes)}")
    dtype = dtypes.pop()
    if not _dtype_ok(dtype):
        raise TypeError(f"parameters must be floating point, got {dtype}")
    get_xp(*arrays)  # TypeError naming both when NumPy and CuPy arrays are mixed
    flat = _host_by_key(parameters, arrays, layout, "")  # the one read from the device
    meta = {"format": FORMAT, "layout": [[k, list(s)] for k, s in layout], "dtype": dtype}
    host, at = {}, 0
    for key, shape in layout:
        n = math.prod(shape)
        host[key] = flat[at : at + n].reshape(shape)
        at += n
    host[META] = numpy.array(json.dumps(meta))
    write_npz_atomically(path, host)


def load_parameters(path, *, layer_dims=None, dtype=None, backend: str | None = None) -> FlatDict:
    """Read parameters saved by :func:`save_parameters`, or those of a checkpoint.

    Parameters
    ----------
    path : str or os.PathLike
    layer_dims : sequence of int, optional
        ``[n_x, n_1, ..., n_L]``: refuse a file whose layout is not that network's
        (``W_l`` (n_l, n_{l-1}), ``b_l`` (n_l, 1)).
    dtype : dtype, optional
        Refuse a file of another dtype (nothing is converted silently).
    backend : {"cpu", "cuda", "auto"}, optional
        Where the arrays go; default the configured backend (:func:`xpopt.to_device`).

    Returns
    -------
    FlatDict
        ``W1, b1, ...`` in the saved order and dtype, packed (views into one buffer).

    Raises
    ------
    ParameterFileError
        The file is truncated, corrupt or foreign, its arrays disagree with its stored
        layout or dtype, or it is not the network or dtype asked for.
    FileNotFoundError
        There is no file.
    """
    path = os.fspath(path)
    try:
        data = numpy.load(path, allow_pickle=False)
        if not hasattr(data, "files"):  # a bare .npy file: numpy.load gave the array
            raise ParameterFileError(f"{path} is not an xpopt parameter file (a single array)")
        with data:
            names = set(data.files)
            if META not in names:
                if "meta" in names and "parameters" in names:  # an xpopt checkpoint
                    checkpoint = True
                else:
                    raise ParameterFileError(
                        f"{path} is not an xpopt parameter file (arrays {sorted(names)[:10]})"
                    )
            else:
                checkpoint = False
                raw = data[META]
                if not isinstance(raw, numpy.ndarray) or raw.shape != () or raw.dtype.kind != "U":
                    raise ParameterFileError(f"{path}: its metadata is not a JSON string")
                meta = json.loads(str(raw[()]))
                arrays = {name: data[name] for name in names - {META}}
    except (ParameterFileError, FileNotFoundError):
        raise
    except Exception as exc:  # zipfile, zlib, numpy.lib.format, json: any reader's failure
        raise ParameterFileError(
            f"{path} is not a readable xpopt parameter file (truncated "
            f"or corrupt?): {type(exc).__name__}: {exc}"
        ) from exc
    if checkpoint:
        params = _checkpoint_parameters(path)
    else:
        params = _check_file(path, meta, arrays)
    _check_expected(path, params, layer_dims, dtype)
    return to_device(params, backend)


def parameters_from_checkpoint(path, *, backend: str | None = None) -> FlatDict:
    """The parameters of an xpopt checkpoint (``xpopt.train(..., checkpoint=path)``) as a
    packed FlatDict on the configured backend (or ``backend``), like :func:`load_parameters`.

    Raises
    ------
    ParameterFileError
        The checkpoint is corrupt or foreign (its :class:`~xpopt.checkpoint.CheckpointError`
        is the cause).
    """
    return to_device(_checkpoint_parameters(os.fspath(path)), backend)


# ------------------------------------------------------------------------------ checks
def _checkpoint_parameters(path: str) -> FlatDict:
    try:
        saved = _load_checkpoint(path)
    except CheckpointError as exc:
        raise ParameterFileError(f"cannot read the parameters of checkpoint {path}: {exc}") from exc
    return FlatDict(saved.parameters, saved.layout())  # the flat vector is in layout order


def _check_file(path: str, meta, arrays: dict) -> FlatDict:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        hint = (
            " (a checkpoint: load_parameters reads its parameters)"
            if found == CHECKPOINT_FORMAT
            else ""
        )
        raise ParameterFileError(f"{path} is not an {FORMAT} file (format {found!r}){hint}")
    if not _layout_ok(meta.get("layout")) or not _dtype_ok(meta.get("dtype")):
        raise ParameterFileError(
            f"{path}: malformed metadata (layout {meta.get('layout')!r}, "
            f"dtype {meta.get('dtype')!r})"
        )
    layout = tuple((k, tuple(s)) for k, s in meta["layout"])
    if META in dict(layout):
        raise ParameterFileError(f"{path}: malformed metadata (a parameter named {META!r})")
    want = {k for k, _ in layout}
    if set(arrays) != want:
        raise ParameterFileError(
            f"{path}: its arrays {sorted(arrays)} are not the layout's {sorted(want)}"
        )
    foreign = sorted(k for k, a in arrays.items() if not isinstance(a, numpy.ndarray))
    if foreign:
        raise ParameterFileError(f"{path}: entries {foreign} are not arrays")
    problems = [
        f"{k!r} has shape {arrays[k].shape} and dtype {arrays[k].dtype}, the layout "
        f"says {shape} {meta['dtype']}"
        for k, shape in layout
        if arrays[k].shape != shape or str(arrays[k].dtype) != meta["dtype"]
    ]
    if problems:
        raise ParameterFileError(f"{path}: " + "; ".join(problems))
    params = FlatDict.empty(layout, numpy, numpy.dtype(meta["dtype"]))
    for k, _ in layout:
        params[k][...] = arrays[k]
    return params


def _check_expected(path: str, params: FlatDict, layer_dims, dtype) -> None:
    if dtype is not None and numpy.dtype(dtype) != params.flat.dtype:
        raise ParameterFileError(
            f"{path} holds {params.flat.dtype} parameters, "
            f"{numpy.dtype(dtype)} were asked for (convert after "
            f"loading if that is meant)"
        )
    if layer_dims is not None:
        from .layout import _check_layer_dims, parameter_layout  # noqa: PLC0415

        want = tuple((k, tuple(s)) for k, s in parameter_layout(_check_layer_dims(layer_dims)))
        if dict(params.layout) != dict(want):
            raise ParameterFileError(
                f"{path} holds the network {list(params.layout)}, not "
                f"layer_dims {list(layer_dims)} ({list(want)})"
            )
