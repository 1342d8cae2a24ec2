"""What an update checks before it touches any array: the one validation layer.

Every entry point that updates parameters in place (the course-named
``update_parameters_with_*`` functions, :meth:`Optimizer.update <xpopt.Optimizer.update>`,
:meth:`Optimizer.bind <xpopt.Optimizer.bind>` and through it :func:`xpopt.train`) builds an
:class:`~xpopt.optim.plan.UpdatePlan`, and the plan calls :func:`check_update` and
:func:`check_scalars` before it does anything else. What is refused, with a clear error and
nothing changed:

- dicts that do not match (keys ``W1`` <-> ``dW1``, array types, shapes): KeyError,
  TypeError, ValueError;
- arrays of more than one dtype or device, of a dtype the kernels are not built for
  (integers, float16, extended precision), or not in the machine's byte order: TypeError
  (the compiled and CUDA kernels read native float32 or float64 only; CuPy has no
  big-endian arrays either);
- a parameter or state array that is read-only (gradients are only read, so read-only ones
  are fine): ValueError. The compiled kernel writes through a raw pointer, which NumPy
  cannot stop;
- the same dict in two roles, or arrays of different roles (or two written arrays) over the
  same memory: ValueError. In-place rules read and write element by element; aliased
  arguments make the fused and the unfused paths disagree;
- a hyperparameter that is valid in double but not once cast to the arrays' dtype, as the
  kernels receive it (an epsilon of 0 or inf, an infinite learning rate, a beta of 1, a
  bias correction ``1 - beta**t`` of 0): ValueError.

All of it is host metadata (types, shapes, dtypes, flags, addresses) and a few scalar casts:
device arrays are never read. It runs once per plan. A training loop's steps reuse the plan
and only make sure the dicts still hold the same arrays: O(1) while no FlatDict anywhere was
rebound (``xpopt.flat.EDITS``), an identity check per key otherwise; a changed
hyperparameter is checked in the arrays' dtype before the next step uses it (see
``UpdatePlan.current`` and ``Optimizer.bind``). A kept plan that is handed a NEW gradients
dict (the course-named functions, :meth:`Optimizer.update`: a backward pass returns a new
one per call) takes it after :func:`check_new_grads` proved, in O(number of keys), what
:func:`check_update` would conclude, and checks again that the arrays it writes are
writeable (:func:`still_writeable`); anything it cannot prove goes to :func:`check_update`.
"""

from __future__ import annotations

import ctypes
import math
import numbers
from collections.abc import Iterable
from typing import Any, cast

import numpy

from .backend import get_xp, is_cupy_array
from .flat import FlatDict

__all__ = [
    "SUPPORTED_DTYPES",
    "check_beta",
    "check_dtype",
    "check_epsilon",
    "check_learning_rate",
    "check_new_grads",
    "check_parameters",
    "check_scalars",
    "check_step",
    "check_update",
    "still_writeable",
    "written_roots",
]

SUPPORTED_DTYPES = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))


# ----------------------------------------------------------------- scalars, in double
def check_learning_rate(learning_rate: Any) -> float:
    """A finite number >= 0, as a float; ValueError otherwise."""
    if (
        isinstance(learning_rate, bool)
        or not isinstance(learning_rate, numbers.Real)
        or not math.isfinite(learning_rate)
        or learning_rate < 0
    ):
        raise ValueError(f"learning_rate must be a finite number >= 0, got {learning_rate!r}")
    return float(learning_rate)


def check_beta(value: Any, name: str) -> float:
    """A number in [0, 1), as a float; ValueError naming ``name`` otherwise."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not (0.0 <= float(value) < 1.0)
    ):
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return float(value)


def check_epsilon(value: Any) -> float:
    """A finite number > 0, as a float; ValueError otherwise."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"epsilon must be a finite number > 0, got {value!r}")
    return float(value)


def check_step(t: Any) -> int:
    """Adam's step count: an integer >= 1 (not a bool); ValueError otherwise."""
    if isinstance(t, bool) or not isinstance(t, numbers.Integral) or t < 1:
        raise ValueError(f"t (the Adam step count, from 1) must be an integer >= 1, got {t!r}")
    return int(t)


# ------------------------------------------------------- scalars, in the arrays' dtype
# The kernels' scalar names -> (the user's name, the condition after the cast)
_SCALAR_RULES = {
    "lr": ("learning_rate", ">= 0", lambda x: x >= 0),
    "eps": ("epsilon", "> 0", lambda x: x > 0),
    "beta": ("beta", "in [0, 1)", lambda x: 0 <= x < 1),
    "beta1": ("beta1", "in [0, 1)", lambda x: 0 <= x < 1),
    "beta2": ("beta2", "in [0, 1)", lambda x: 0 <= x < 1),
    "one_minus_beta": ("1 - beta", "> 0", lambda x: x > 0),
    "one_minus_beta1": ("1 - beta1", "> 0", lambda x: x > 0),
    "one_minus_beta2": ("1 - beta2", "> 0", lambda x: x > 0),
    "bias1": ("the bias correction 1 - beta1**t", "> 0", lambda x: x > 0),
    "bias2": ("the bias correction 1 - beta2**t", "> 0", lambda x: x > 0),
}


def check_scalars(scalars: dict[str, float], dtype) -> None:
    """Each kernel scalar AS CAST TO ``dtype`` (what the kernels compute with) is finite and
    meets its rule; ValueError naming the hyperparameter otherwise.

    ``1e-50`` is a fine epsilon in double and 0 in float32; ``1e39`` a finite learning rate
    in double and inf in float32; ``1 - 1e-9`` a beta below 1 in double and 1 in float32.
    Checking Adam's bias corrections at ``t = 1`` covers every later step: ``1 - beta**t``
    only grows with ``t``.

    Parameters
    ----------
    scalars : dict of str to float
        The kernel's scalar arguments by name (``lr``, ``beta1``, ``one_minus_beta1``,
        ``bias1``, ``eps``, ...); names without a rule must only be finite.
    dtype : numpy.dtype
        The arrays' dtype.
    """
    dtype = numpy.dtype(dtype)
    if dtype == numpy.float64:  # a Python float is a double: the cast changes nothing
        cast = [float(v) for v in scalars.values()]
    elif dtype == numpy.float32:  # C's double -> float conversion, as the kernels' callers do
        cast = [ctypes.c_float(v).value for v in scalars.values()]
    else:
        with numpy.errstate(over="ignore", under="ignore"):
            cast = [float(dtype.type(v)) for v in scalars.values()]
    for (name, value), x in zip(scalars.items(), cast, strict=True):
        label, condition, rule = _SCALAR_RULES.get(name, (name, "", None))
        if not (math.isfinite(x) and (rule is None or rule(x))):
            raise ValueError(
                f"{label} = {value!r} is {x!r} in {dtype.name}, the arrays' dtype: it must "
                f"be finite{' and ' + condition if condition else ''} there"
            )


# ------------------------------------------------------------------------------ dtypes
def check_dtype(dtype) -> numpy.dtype:
    """``dtype`` if the update kernels handle it (native float32 or float64); TypeError
    saying why not otherwise (integers, float16, extended precision, swapped byte order)."""
    dtype = numpy.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"arrays must be floating point (float32 or float64), got {dtype}")
    if not dtype.isnative:
        order = {">": "big", "<": "little"}.get(dtype.byteorder, dtype.byteorder)
        raise TypeError(
            f"arrays must be in the machine's byte order, got {dtype} ({order}-endian); "
            f"convert them with a.astype(a.dtype.newbyteorder('='))"
        )
    if dtype not in SUPPORTED_DTYPES:
        raise TypeError(
            f"{dtype.name} is not supported: the update kernels are built for float32 and "
            f"float64 (and float16 cannot even hold the default epsilon 1e-8); convert with "
            f"astype(numpy.float32)"
        )
    return dtype


# ------------------------------------------------------------------------------ arrays
def _is_array(x) -> bool:
    return isinstance(x, numpy.ndarray) or is_cupy_array(x)


def _writeable(a) -> bool:
    # CuPy arrays are always writeable (and have no such flag on older versions)
    return getattr(a.flags, "writeable", True)


def _address(a) -> int | None:
    """The address of the first element (host metadata), None where not exposed."""
    if isinstance(a, numpy.ndarray):
        return a.__array_interface__["data"][0]
    ptr = getattr(getattr(a, "data", None), "ptr", None)  # cupy.ndarray.data.ptr
    return None if ptr is None else int(ptr)


def _extent(a) -> tuple[int, int]:
    """The byte range ``[lo, hi)`` a non-empty array with an address spans."""
    lo = _address(a)
    assert lo is not None, "_extent is given arrays with an address"
    hi = lo + a.itemsize
    for n, stride in zip(a.shape, a.strides, strict=True):
        if stride > 0:
            hi += (n - 1) * stride
        else:
            lo += (n - 1) * stride
    return lo, hi


def _share_memory(a, b) -> bool:
    """Whether two arrays whose byte ranges overlap share an element: exactly for NumPy
    arrays (``numpy.shares_memory``, bounded work); assumed for device arrays, whose exact
    answer (``cupy.shares_memory``) would launch kernels and read their result back."""
    if a is b:
        return True
    if isinstance(a, numpy.ndarray) and isinstance(b, numpy.ndarray):
        try:
            # NumPy's stubs allow only -1 and 0; its documentation a positive bound as well
            return bool(numpy.shares_memory(a, b, max_work=10_000))  # type: ignore[arg-type]
        except numpy.exceptions.TooHardError:
            return True
    return True


def _root(a) -> tuple[Any, bool]:
    """The array owning ``a``'s memory (following ``.base``), and whether that memory is
    foreign (an ``mmap``, a buffer object: not an array of this module) or unknown (an
    array that exposes no address): then it is compared with every other array."""
    if _address(a) is None:
        return a, True
    root = a
    while True:
        base = getattr(root, "base", None)
        if base is None:
            return root, False
        if not _is_array(base):
            return root, True
        root = base


def check_no_overlap(arrays: Iterable[tuple[str, Any, bool]]) -> None:
    """ValueError if two arrays share memory where at least one of them is written.

    Arrays that own their memory can only share it with their own views, so the arrays are
    grouped by owner and only groups of two or more are compared, by their byte ranges and
    then exactly (``numpy.shares_memory``): interleaved views that share no element are fine.
    Arrays over foreign memory (a memory map) are compared with every other array.

    Parameters
    ----------
    arrays : iterable of (label, array, written)
        Read-only roles (gradients) may share memory among themselves.
    """
    groups: dict[int, list] = {}
    foreign = False
    for item in arrays:
        if item[1].size:
            root, outside = _root(item[1])
            foreign |= outside
            groups.setdefault(id(root), []).append(item)
    if foreign:
        groups = {0: [item for group in groups.values() for item in group]}
    for group in groups.values():
        if len(group) > 1 and any(written for _, _, written in group):
            _sweep(group)


def _overlap_error(label_a: str, label_b: str) -> ValueError:
    return ValueError(
        f"{label_a} and {label_b} share memory: an update reads and writes each "
        f"element in place, so every array it writes (parameters, state) needs "
        f"memory of its own; pass separate arrays (e.g. copies)"
    )


def _sweep(arrays: list[tuple[str, Any, bool]]) -> None:
    """Compare by byte range (sorted: O(n log n)), then exactly; arrays without an address
    pairwise with every other, through their module's bounds check (host metadata)."""
    spans, opaque = [], []
    for label, a, written in arrays:
        if _address(a) is None:
            opaque.append((label, a, written))
            continue
        lo, hi = _extent(a)
        spans.append((lo, hi, label, a, written))
    for i, (label, a, written) in enumerate(opaque):
        may_share = getattr(get_xp(a), "may_share_memory", None)
        for other, b, other_written in opaque[i + 1 :] + [s[2:] for s in spans]:
            if (written or other_written) and (
                a is b or (may_share is not None and bool(may_share(a, b)))
            ):
                raise _overlap_error(label, other)
    spans.sort(key=lambda s: s[0])
    active: list[tuple] = []
    for span in spans:
        lo, _, label, a, written = span
        active = [s for s in active if s[1] > lo]
        for held in active:
            if (written or held[4]) and _share_memory(a, held[3]):
                raise _overlap_error(held[2], label)
        active.append(span)


def _check_dicts_distinct(dicts: dict[str, dict]) -> None:
    seen: dict[int, str] = {}
    for what, d in dicts.items():
        if id(d) in seen:
            raise ValueError(
                f"{seen[id(d)]} and {what} are the same dict: each role (parameters, "
                f"gradients, each state slot) needs its own dict of arrays"
            )
        seen[id(d)] = what


def check_parameters(parameters: dict) -> None:
    """A non-empty dict of NumPy or CuPy arrays, or TypeError."""
    if not isinstance(parameters, dict) or not parameters:
        raise TypeError("parameters must be a non-empty dict of arrays (W1, b1, ...)")
    for k, p in parameters.items():
        if not _is_array(p):
            raise TypeError(
                f"parameters[{k!r}] must be a NumPy or CuPy array, got {type(p).__name__}"
            )


def check_update(parameters: dict, grads: dict, state: dict[str, dict]) -> tuple[bool, numpy.dtype]:
    """Everything about the arrays of one update, or raise; nothing is written.

    Parameters
    ----------
    parameters : dict of str to ndarray
        ``W1, b1, ...``: written.
    grads : dict of str to ndarray
        ``dW1, db1, ...``: only read.
    state : dict of str to dict
        The rule's state dicts by slot (``{"v": v, "s": s}``), keyed like ``grads``: written.

    Returns
    -------
    packed : bool
        True when every dict is a packed :class:`~xpopt.flat.FlatDict` of one layout: the
        update may then run over the whole buffers at once.
    dtype : numpy.dtype
        The arrays' common dtype.

    Raises
    ------
    TypeError
        Not dicts, not arrays, NumPy and CuPy mixed, more than one dtype, or a dtype the
        kernels do not take (see :func:`check_dtype`).
    KeyError
        Keys not matching (``grads`` and each state dict must have the parameters' keys with
        a ``d`` prefix).
    ValueError
        Shapes not matching, a written array read-only, the same dict in two roles, or
        memory shared between arrays where one of them is written.
    """
    if not isinstance(parameters, dict) or not parameters:
        raise TypeError("parameters must be a non-empty dict of arrays (W1, b1, ...)")
    named = {"grads": grads, **state}
    for what, d in named.items():
        if not isinstance(d, dict):
            raise TypeError(f"{what} must be a dict of arrays, got {type(d).__name__}")
    _check_dicts_distinct({"parameters": parameters, **named})
    packed = _packed_together(parameters, named)
    if packed:
        # packed: all FlatDicts (_packed_together checked it)
        flats = {
            "parameters": cast(FlatDict, parameters).flat,
            **{w: cast(FlatDict, d).flat for w, d in named.items()},
        }
        get_xp(*flats.values())  # TypeError when NumPy and CuPy are mixed
        dtypes = {f.dtype for f in flats.values()}
        if len(dtypes) != 1:
            raise TypeError(f"all arrays must share one dtype, got {sorted(map(str, dtypes))}")
        dtype = check_dtype(dtypes.pop())
        for what, f in flats.items():
            if what != "grads" and not _writeable(f):
                raise ValueError(
                    f"{what} is read-only (its buffer's flags.writeable is False): "
                    f"an update writes the {what} in place"
                )
        check_no_overlap((f"{what} (buffer)", f, what != "grads") for what, f in flats.items())
        return True, dtype

    expected = {"d" + k for k in parameters}
    for what, d in named.items():
        if set(d) != expected:
            missing, extra = sorted(expected - set(d)), sorted(map(str, set(d) - expected))
            raise KeyError(
                f"{what} must have the keys of parameters with a 'd' prefix: "
                f"missing {missing}, unexpected {extra}"
            )
    arrays = []  # (label, array, written)
    for k, p in parameters.items():
        if not _is_array(p):
            raise TypeError(
                f"parameters[{k!r}] must be a NumPy or CuPy array, got {type(p).__name__}"
            )
        arrays.append((f"parameters[{k!r}]", p, True))
        for what, d in named.items():
            a = d["d" + k]
            if not _is_array(a):
                raise TypeError(
                    f"{what}['d{k}'] must be a NumPy or CuPy array, got {type(a).__name__}"
                )
            if a.shape != p.shape:
                raise ValueError(f"{what}['d{k}'] has shape {a.shape}, parameters[{k!r}] {p.shape}")
            arrays.append((f"{what}['d{k}']", a, what != "grads"))
    get_xp(*(a for _, a, _ in arrays))  # TypeError when NumPy and CuPy arrays are mixed
    dtypes = {a.dtype for _, a, _ in arrays}
    if len(dtypes) != 1:
        raise TypeError(f"all arrays must share one dtype, got {sorted(map(str, dtypes))}")
    dtype = check_dtype(dtypes.pop())
    for label, a, written in arrays:
        if written and not _writeable(a):
            raise ValueError(
                f"{label} is read-only (flags.writeable is False): an update "
                f"writes the parameters and the optimizer state in place"
            )
    # A FlatDict whose buffer was made read-only is read-only, rebound keys or not (its
    # views may predate the flag): the same answer as on the packed path.
    for what, d in {"parameters": parameters, **state}.items():
        if isinstance(d, FlatDict) and not _writeable(d.flat):
            raise ValueError(
                f"{what} is read-only (its buffer's flags.writeable is False): "
                f"an update writes the {what} in place"
            )
    check_no_overlap(arrays)
    return False, dtype


def _grad_layout(layout: tuple) -> tuple:
    return tuple(("d" + k, s) for k, s in layout)


def _packed_together(parameters: dict, named: dict[str, dict]) -> bool:
    """True when every dict is a packed FlatDict of the parameters' layout (keys ``d``-
    prefixed): O(number of keys), no array work."""
    if not (isinstance(parameters, FlatDict) and parameters.packed):
        return False
    want = _grad_layout(parameters.layout)
    return all(isinstance(d, FlatDict) and d.packed and d.layout == want for d in named.values())


# --------------------------------------------------------- a plan's new gradients, cheaply
def written_roots(groups: list[dict]) -> frozenset | None:
    """The identities of the arrays owning the memory of every array an update writes
    (``groups``: role -> array, the ``"grad"`` role only read), for :func:`check_new_grads`;
    None unless they are all NumPy arrays over NumPy memory."""
    roots = set()
    for group in groups:
        for role, a in group.items():
            if role != "grad":
                root, outside = _root(a)
                if outside or type(a) is not numpy.ndarray:
                    return None
                roots.add(id(root))
    return frozenset(roots)


def still_writeable(arrays: list) -> bool:
    """Whether every array (an update writes them) is still writeable: a flag can be
    cleared after a plan was made; a False sends the caller back to :func:`check_update`."""
    return all(map(_writeable, arrays))


def check_new_grads(grads: dict, plan) -> list | None:
    """The gradient arrays of a NEW gradients dict for a validated plan, one per group of
    the plan, when O(number of keys) checks prove :func:`check_update` would accept it in
    place of the plan's own; None when they cannot (then :func:`check_update` decides).

    Proven: the dict's type and keys are the old one's (a packed FlatDict: packed, of the
    same layout), and each array is a C-contiguous ``numpy.ndarray`` of the plan's dtype and
    its group's shape that owns its memory (NumPy only: a CuPy array can own none and still
    share another's), memory that no array the update writes lies in: their owners are
    known (``plan.written``, from :func:`written_roots`), and an array owning its memory
    shares it only with its own views, whose owner it is.

    Parameters
    ----------
    grads : dict
        The new gradients.
    plan : UpdatePlan
        Its ``packed``, ``dtype``, ``grads`` (the old dict), ``dicts``, ``arrays`` (the
        groups), ``grad_keys`` (the gradients' keys in the groups' order) and ``written``.
    """
    old = plan.grads
    if plan.written is None or type(grads) is not type(old) or any(grads is d for d in plan.dicts):
        return None
    if plan.packed:
        if not (
            isinstance(grads, FlatDict)
            and isinstance(old, FlatDict)
            and grads.packed
            and (grads.layout is old.layout or grads.layout == old.layout)
        ):
            return None
        arrays = [grads.flat]
    else:
        if dict.keys(grads) != dict.keys(old):
            return None
        arrays = list(map(grads.__getitem__, plan.grad_keys))  # the groups' order
    dtype, written = plan.dtype, plan.written
    for a, group in zip(arrays, plan.arrays, strict=True):
        if (
            type(a) is not numpy.ndarray
            or a.dtype != dtype
            or a.shape != group["param"].shape
            or not a.flags.c_contiguous
            or not a.flags.owndata
            or id(a) in written
        ):
            return None
    return arrays
