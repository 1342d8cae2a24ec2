"""What a GPU would pay for: launches, allocations, transfers and synchronisations."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
from collections.abc import Iterator, Mapping


class LaunchCounts(Mapping):
    """A read-only ``Counter`` of launches by kernel name: a missing name counts 0."""

    def __init__(self, counts=()):
        self._d = {k: v for k, v in dict(counts).items() if v}

    def __getitem__(self, name: str) -> int:
        return self._d.get(name, 0)

    def __iter__(self):
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)

    def __contains__(self, name) -> bool:
        return name in self._d

    def __eq__(self, other) -> bool:
        if isinstance(other, Mapping):
            return self._d == {k: v for k, v in other.items() if v}
        return NotImplemented

    def __repr__(self) -> str:
        return f"LaunchCounts({self._d})"


_FIELDS = (
    "launches",
    "allocations",
    "allocated_bytes",
    "h2d",
    "h2d_bytes",
    "d2h",
    "d2h_bytes",
    "syncs",
)


@dataclasses.dataclass(frozen=True)
class CounterSnapshot:
    """An immutable copy of :class:`Counters` (or the difference of two).

    Attributes
    ----------
    launches : int
        Kernel launches: ufuncs, reductions, ElementwiseKernels, copies, fills, gathers,
        matrix products.
    kernel_launches : LaunchCounts
        Launches by kernel name (``"multiply"``, ``"xpopt_adam"``, ``"copy"``, ...); a
        read-only mapping where a name never launched counts 0, like a ``Counter``.
    allocations, allocated_bytes : int
        New device arrays (views do not count) and their bytes.
    h2d, h2d_bytes, d2h, d2h_bytes : int
        Host-to-device and device-to-host copies and their bytes.
    syncs : int
        Waits for the device: every device-to-host copy, plus explicit synchronisations.
    """

    launches: int = 0
    kernel_launches: LaunchCounts = dataclasses.field(default_factory=LaunchCounts)
    allocations: int = 0
    allocated_bytes: int = 0
    h2d: int = 0
    h2d_bytes: int = 0
    d2h: int = 0
    d2h_bytes: int = 0
    syncs: int = 0

    def __sub__(self, other: CounterSnapshot) -> CounterSnapshot:
        names = collections.Counter(self.kernel_launches)
        names.subtract(other.kernel_launches)
        return CounterSnapshot(
            kernel_launches=LaunchCounts(names),
            **{f: getattr(self, f) - getattr(other, f) for f in _FIELDS},
        )


class Counters:
    """Live counts of one stand-in module (``cp.counters``); integers, plus a Counter by name."""

    # set by reset() (one per name in _FIELDS)
    launches: int
    allocations: int
    allocated_bytes: int
    h2d: int
    h2d_bytes: int
    d2h: int
    d2h_bytes: int
    syncs: int

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Set every count back to zero."""
        for f in _FIELDS:
            setattr(self, f, 0)
        self.kernel_launches: collections.Counter = collections.Counter()

    def snapshot(self) -> CounterSnapshot:
        """A plain immutable copy of the current counts."""
        return CounterSnapshot(
            kernel_launches=LaunchCounts(self.kernel_launches),
            **{f: getattr(self, f) for f in _FIELDS},
        )

    # The stand-in calls these; they are the only writers.
    def launch(self, name: str) -> None:
        self.launches += 1
        self.kernel_launches[name] += 1

    def allocate(self, nbytes: int) -> None:
        self.allocations += 1
        self.allocated_bytes += int(nbytes)

    def to_device(self, nbytes: int) -> None:
        self.h2d += 1
        self.h2d_bytes += int(nbytes)

    def to_host(self, nbytes: int) -> None:
        # cudaMemcpy device-to-host waits for the stream: every read is also a sync
        self.d2h += 1
        self.d2h_bytes += int(nbytes)
        self.syncs += 1

    def sync(self) -> None:
        self.syncs += 1

    def __repr__(self) -> str:
        body = ", ".join(f"{f}={getattr(self, f)}" for f in _FIELDS)
        return f"Counters({body}, kernel_launches={dict(self.kernel_launches)})"


class Counting:
    """What :func:`counting` yields: live deltas inside the block, frozen after it."""

    def __init__(self, counters: Counters):
        self._counters = counters
        self._start = counters.snapshot()
        self._result: CounterSnapshot | None = None

    def _close(self) -> None:
        self._result = self._counters.snapshot() - self._start

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        result = (
            self._result if self._result is not None else self._counters.snapshot() - self._start
        )
        return getattr(result, name)

    def snapshot(self) -> CounterSnapshot:
        """The deltas as a :class:`CounterSnapshot`."""
        return self._result if self._result is not None else self._counters.snapshot() - self._start

    def __repr__(self) -> str:
        return f"Counting({self.snapshot()})"


@contextlib.contextmanager
def counting(counters: Counters) -> Iterator[Counting]:
    """Yield an object whose fields are the counts accrued during the ``with`` block."""
    delta = Counting(counters)
    try:
        yield delta
    finally:
        delta._close()
