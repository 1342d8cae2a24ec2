"""The parameters' layout: keys ``W1, b1, ..., WL, bL`` and shapes, checked; what plain calls reuse.

A forward or backward pass called without a workspace (the course's way) finds and checks the
parameters' arrays through :func:`plan_for`: a one-entry :class:`Plan` of the latest
parameters, reused while the dict holds the same arrays.
"""

from __future__ import annotations

import functools
import math
import numbers
import operator
import re
from collections.abc import Sequence

from .flat import EDITS, FlatDict

__all__ = ["Plan", "parameter_layout", "plan_for"]


def _check_layer_dims(layer_dims) -> list[int]:
    dims = list(layer_dims) if not isinstance(layer_dims, (str, bytes)) else []
    if len(dims) < 2 or any(
        isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 1 for d in dims
    ):
        raise ValueError(
            f"layer_dims must list at least two positive integers "
            f"[n_x, n_1, ..., n_L], got {layer_dims!r}"
        )
    return [int(d) for d in dims]


def parameter_layout(layer_dims: Sequence[int]) -> tuple:
    """``(("W1", (n_1, n_0)), ("b1", (n_1, 1)), ...)``: the keys and shapes, in buffer order."""
    dims = _check_layer_dims(layer_dims)
    layout = []
    for l in range(1, len(dims)):
        layout += [(f"W{l}", (dims[l], dims[l - 1])), (f"b{l}", (dims[l], 1))]
    return tuple(layout)


_LAYER_KEY = re.compile(r"[Wb]([1-9][0-9]*)")


@functools.lru_cache(maxsize=32)
def _layer_keys(L: int) -> frozenset:
    return frozenset(f"{p}{l}" for l in range(1, L + 1) for p in ("W", "b"))


def _num_layers(parameters: dict) -> int:
    """L, for parameters holding exactly ``W1, b1, ..., WL, bL``; KeyError naming what is
    missing or unexpected otherwise (a missing ``bL`` must not make a smaller network)."""
    n = len(parameters)
    L = n // 2
    if n and not n % 2 and parameters.keys() == _layer_keys(L):
        return L
    keys = set(parameters)
    numbers = [
        int(m.group(1)) for k in keys if isinstance(k, str) and (m := _LAYER_KEY.fullmatch(k))
    ]
    expected = _layer_keys(max(numbers, default=1))
    missing, extra = sorted(expected - keys), sorted(map(str, keys - expected))
    raise KeyError(
        f"parameters must hold exactly W1, b1, ..., WL, bL: missing {missing}, unexpected {extra}"
    )


def _check_shapes(Ws, bs, n_x: int | None = None) -> None:
    """``W_l`` of shape (n_l, n_{l-1}) and ``b_l`` of shape (n_l, 1), chained from ``n_x``:
    ValueError naming the key (a (1, 1) or (n,) bias would broadcast silently)."""
    previous = n_x
    for l, (W, b) in enumerate(zip(Ws, bs, strict=True), start=1):
        if len(W.shape) != 2 or (previous is not None and W.shape[1] != previous):
            want = f"(n_{l}, {previous})" if previous is not None else "2-D"
            raise ValueError(
                f"W{l} has shape {tuple(W.shape)}, expected {want}"
                + (" (X has that many rows)" if l == 1 else "")
            )
        if tuple(b.shape) != (W.shape[0], 1):
            raise ValueError(f"b{l} has shape {tuple(b.shape)}, expected ({W.shape[0]}, 1)")
        previous = W.shape[0]


def _new_grads(parameters: dict, xp, dtype) -> FlatDict:
    return plan_for(parameters).new_grads(xp, dtype)[0]


class Plan:
    """What a call without a workspace reuses from the previous call with the same
    parameters: their arrays in layer order, found and checked once (keys, shapes), and the
    gradients' layout. It stays valid while the dict holds the same arrays, checked at each
    call with one identity test per key."""

    __slots__ = (
        "parameters",
        "keys",
        "arrays",
        "shapes",
        "Ws",
        "bs",
        "grad_layout",
        "grad_slices",
        "grad_size",
        "gW_at",
        "gb_at",
        "edits",
    )

    def __init__(self, parameters: dict):
        L = _num_layers(parameters)
        self.keys = tuple(f"{p}{l}" for l in range(1, L + 1) for p in ("W", "b"))
        self.arrays = tuple(parameters[k] for k in self.keys)
        self.Ws, self.bs = self.arrays[0::2], self.arrays[1::2]
        _check_shapes(self.Ws, self.bs)
        self.shapes = tuple(tuple(a.shape) for a in self.arrays)
        order = (
            [k for k, _ in parameters.layout] if isinstance(parameters, FlatDict) else self.keys
        )  # a FlatDict's gradients follow its buffer's order
        self.grad_layout = tuple(
            ("d" + k, tuple(int(d) for d in parameters[k].shape)) for k in order
        )
        self.grad_slices, at = [], 0
        for _, shape in self.grad_layout:
            n = math.prod(shape)
            self.grad_slices.append((slice(at, at + n), shape))
            at += n
        self.grad_size = at
        where = {k: i for i, (k, _) in enumerate(self.grad_layout)}
        self.gW_at = tuple(where["d" + k] for k in self.keys[0::2])
        self.gb_at = tuple(where["d" + k] for k in self.keys[1::2])
        self.parameters = parameters
        # A FlatDict's keys can only be rebound through methods that count in EDITS.
        self.edits = EDITS[0] if isinstance(parameters, FlatDict) else None

    def holds(self, parameters: dict) -> bool:
        """True while ``parameters`` is the dict planned for, holding the same arrays of the
        same shapes (a FlatDict: no key rebound anywhere since, in O(1))."""
        if parameters is not self.parameters:
            return False
        if self.edits is None or self.edits != EDITS[0]:
            if len(parameters) != len(self.keys) or not all(
                map(operator.is_, map(parameters.__getitem__, self.keys), self.arrays)
            ):
                return False
            if self.edits is not None:
                self.edits = EDITS[0]
        return tuple([a.shape for a in self.arrays]) == self.shapes

    def new_grads(self, xp, dtype) -> tuple[FlatDict, tuple]:
        """A new gradient FlatDict, ``FlatDict.empty(grad_layout, xp, dtype)`` built from the
        slices worked out once (the constructor would check the layout again: a third of a
        small network's backward pass), and its views in ``grad_layout`` order."""
        flat = xp.empty(self.grad_size, dtype)
        views = tuple([flat[where].reshape(shape) for where, shape in self.grad_slices])
        grads = FlatDict.__new__(FlatDict)
        dict.update(grads, zip([k for k, _ in self.grad_layout], views, strict=True))
        grads.flat, grads.layout, grads._views = flat, self.grad_layout, views
        return grads, views


_last_plan: Plan | None = None  # one entry: the parameters of the latest call


def plan_for(parameters: dict) -> Plan:
    global _last_plan
    plan = _last_plan
    if plan is None or not plan.holds(parameters):
        plan = _last_plan = Plan(parameters)
    return plan
