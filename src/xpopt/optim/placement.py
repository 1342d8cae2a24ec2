"""Where an update runs, chosen once per plan: one runner per place.

:func:`place` looks at the arrays once and returns one of:

- :class:`CupyRunner` -- CuPy arrays and ``fused``: the rule's kernel, one launch per group
  (one for the whole model when the dicts are packed FlatDicts);
- :class:`HostRunner` -- NumPy, ``fused`` and the compiled CPU kernels built
  (:mod:`xpopt.hostkernels`, the same operation text compiled for the host): one call per
  piece, a single pass over memory, no temporaries;
- :class:`TwinRunner` -- otherwise the rule's NumPy twin: on NumPy in cache-sized chunks of
  :data:`CHUNK` elements (its temporaries stay in the CPU cache), on CuPy whole (one launch
  per operation: the unfused baseline).

A group is the arrays updated together (``{"param": ..., "grad": ..., "v": ...}``). On the
CPU, models of :data:`THREADED_MIN` elements or more are cut into one share per thread (the
compiled kernels and NumPy both release the GIL). Every runner is called as
``runner.run(scalars)`` and takes a new gradient array per group with
``runner.rebind_grads(arrays)`` (the same shapes, validated by the caller).
"""

from __future__ import annotations

import operator
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy

from .. import hostkernels, kernels
from ..backend import get_xp, is_cupy_array

CHUNK = 32768  # elements per NumPy pass: 2 scratch + 5 streams of float64 fit in a 2 MiB L2
# From this many elements on, the CPU paths split the work among threads: NumPy releases
# the GIL inside each operation, and one core cannot saturate memory bandwidth.
THREADED_MIN = 1 << 22  # measured: below 4M elements two threads cost more than they save


@dataclass
class Scratch:
    """Reusable temporaries of the NumPy twin: two 1-D buffers per (module, dtype, worker)."""

    buffers: dict = field(default_factory=dict)

    def get(self, xp, dtype, n: int, worker: int = 0):
        key = (xp.__name__, numpy.dtype(dtype).str, worker)
        buf = self.buffers.get(key)
        if buf is None or buf.shape[1] < n:
            buf = xp.empty((2, n), dtype=dtype)
            self.buffers[key] = buf
        return buf[0, :n], buf[1, :n]


def groups(parameters: Any, named: dict[str, Any], packed: bool) -> list[dict[str, Any]]:
    """The arrays updated together: ``{"param": ..., "grad": ..., "v": ...}`` each; one group
    of whole buffers when ``packed``, else one per parameter (``named``: role -> dict)."""
    if packed:
        return [{"param": parameters.flat, **{role: d.flat for role, d in named.items()}}]
    return [
        {"param": p, **{role: d["d" + k] for role, d in named.items()}}
        for k, p in parameters.items()
    ]


def place(
    spec: kernels.KernelSpec, rule: Callable, arrays: list[dict], *, fused: bool, scratch: Scratch
):
    """The runner for these groups (``arrays``), chosen once."""
    first = arrays[0]["param"]
    if fused and is_cupy_array(first):
        return CupyRunner(spec, arrays)
    xp = get_xp(first)
    on_cpu = xp is numpy
    host = hostkernels.host_function(spec, first.dtype) if fused and on_cpu else None
    contiguous = all(a.flags.c_contiguous for group in arrays for a in group.values())
    total = sum(group["param"].size for group in arrays)
    workers = num_threads() if on_cpu and total >= THREADED_MIN else 1
    if host is not None and contiguous:  # the compiled kernel takes contiguous arrays only
        return HostRunner(spec, host, arrays, _cut(arrays, lambda n: -(-n // workers), workers))
    size = (lambda n: min(n, CHUNK)) if on_cpu else (lambda n: n)
    return TwinRunner(rule, xp, arrays, _cut(arrays, size, workers), scratch)


def _cut(arrays: list[dict], size: Callable[[int], int], workers: int) -> list[list[tuple]]:
    """Pieces ``(group, lo, hi)`` of ``size(n)`` elements, dealt out to at most ``workers``
    parts in order; a group holding a strided (non-contiguous) array is one whole piece
    ``(group, None, None)``."""
    pieces: list[tuple[int, int | None, int | None]] = []
    for g, group in enumerate(arrays):
        if not all(a.flags.c_contiguous for a in group.values()):
            pieces.append((g, None, None))
            continue
        n = group["param"].size
        step = max(size(n), 1)  # an empty array: no piece, and no zero range step
        pieces += [(g, lo, min(lo + step, n)) for lo in range(0, n, step)]
    workers = max(1, min(workers, len(pieces)))
    return [
        pieces[w * len(pieces) // workers : (w + 1) * len(pieces) // workers]
        for w in range(workers)
    ]


class CupyRunner:
    """CuPy and ``fused``: one kernel launch per group."""

    def __init__(self, spec, arrays):
        self.spec, self.arrays = spec, arrays

    def run(self, scalars: dict) -> None:
        for group in self.arrays:
            kernels.launch(self.spec, group, scalars)

    def rebind_grads(self, grads: list) -> None:
        for group, grad in zip(self.arrays, grads, strict=True):
            group["grad"] = grad


class _PieceRunner:
    """Pieces dealt out to parts (one per thread), a call per piece; ``run`` runs them all.
    A piece's call reads its arguments from lists of its own, which a rebinding rewrites."""

    def __init__(self, arrays, parts):
        self.arrays = arrays
        self.pieces = [
            [(g, lo, hi, self._arguments(g, lo, hi, w)) for g, lo, hi in part]
            for w, part in enumerate(parts)
        ]
        self.calls = [[self._call(args) for *_, args in part] for part in self.pieces]
        # the common case, one piece: run is that call itself
        self.run = self.calls[0][0] if sum(map(len, self.calls)) == 1 else self._run_all

    def _arguments(self, g: int, lo, hi, worker: int) -> Any:
        raise NotImplementedError  # what a piece's call reads: a list, or lists

    def _call(self, args) -> Callable[[dict], None]:
        raise NotImplementedError

    def _regrad(self, args, grad, lo, hi) -> None:
        raise NotImplementedError  # put the piece of ``grad`` where the call reads it

    def _run_all(self, scalars: dict) -> None:
        if len(self.calls) == 1:
            for call in self.calls[0]:
                call(scalars)
            return
        list(_pool().map(lambda part: [call(scalars) for call in part], self.calls))

    def rebind_grads(self, grads: list) -> None:
        for group, grad in zip(self.arrays, grads, strict=True):
            group["grad"] = grad
        for part in self.pieces:
            for g, lo, hi, args in part:
                self._regrad(args, grads[g], lo, hi)


class HostRunner(_PieceRunner):
    """The compiled CPU kernel over contiguous pieces, through raw pointers into this
    runner's ``arrays`` (kept alive with the calls that hold their addresses)."""

    def __init__(self, spec, function, arrays, parts):
        self.function, self.itemsize = function, arrays[0]["param"].itemsize
        roles = [role for role, _, _ in spec.params]
        first, last = roles.index("scalar"), len(roles) - roles[::-1].index("scalar")
        if roles[first:last].count("scalar") != last - first:
            raise ValueError(f"{spec.name}: the host build wants its scalars side by side")
        names = [name for _, _, name in spec.params]
        self.head, self.tail, scalars = names[:first], names[last:], names[first:last]
        self.get = (
            operator.itemgetter(*scalars)
            if len(scalars) > 1
            else lambda values: (values[scalars[0]],)
        )
        self.addresses = [
            {role: hostkernels.address(a) for role, a in group.items()} for group in arrays
        ]
        super().__init__(arrays, parts)

    def _arguments(self, g, lo, hi, worker) -> tuple[list, list]:
        """The addresses at ``lo`` before the scalars, and after them (then ``hi - lo``)."""
        at, skip = self.addresses[g], lo * self.itemsize
        return [at[r] + skip for r in self.head], [at[r] + skip for r in self.tail] + [hi - lo]

    def _call(self, args) -> Callable[[dict], None]:
        function, get, (head, tail) = self.function, self.get, args
        return lambda scalars: function(*head, *get(scalars), *tail)

    def _regrad(self, args, grad, lo, hi) -> None:
        head, tail = args
        where, names = (head, self.head) if "grad" in self.head else (tail, self.tail)
        where[names.index("grad")] = hostkernels.address(grad) + lo * self.itemsize


class TwinRunner(_PieceRunner):
    """The rule's NumPy twin, per piece, with reused temporaries (one pair per thread)."""

    def __init__(self, rule, xp, arrays, parts, scratch):
        self.rule, self.xp, self.scratch = rule, xp, scratch
        self.widths = [
            max((hi - lo for _, lo, hi in part if lo is not None), default=0) for part in parts
        ]
        super().__init__(arrays, parts)

    def _arguments(self, g, lo, hi, worker) -> list:
        """``[param, grad, *state, a, b]`` of the piece (``a``, ``b``: temporaries)."""
        xp, group = self.xp, self.arrays[g]
        if lo is None:  # strided arrays: the update over them whole, temporaries of their own
            first = group["param"]
            return [*group.values(), xp.empty_like(first), xp.empty_like(first)]
        a, b = self.scratch.get(xp, group["param"].dtype, self.widths[worker], worker=worker)
        return [*(x.reshape(-1)[lo:hi] for x in group.values()), a[: hi - lo], b[: hi - lo]]

    def _call(self, args) -> Callable[[dict], None]:
        rule, xp = self.rule, self.xp
        return lambda scalars: rule(xp, *args, **scalars)

    def _regrad(self, args, grad, lo, hi) -> None:
        args[1] = grad if lo is None else grad.reshape(-1)[lo:hi]


_pool_lock = threading.Lock()
_pool_executor: ThreadPoolExecutor | None = None


def num_threads() -> int:
    """Threads for large CPU updates: ``XPOPT_NUM_THREADS``, else up to 4 cores."""
    value = os.environ.get("XPOPT_NUM_THREADS", "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"XPOPT_NUM_THREADS must be a positive integer, got {value!r}")
        return int(value)
    return max(1, min(4, os.cpu_count() or 1))


def _pool() -> ThreadPoolExecutor:
    global _pool_executor
    with _pool_lock:
        if _pool_executor is None:
            _pool_executor = ThreadPoolExecutor(
                max_workers=num_threads(), thread_name_prefix="xpopt-update"
            )
        return _pool_executor
