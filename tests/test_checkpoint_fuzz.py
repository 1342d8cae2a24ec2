"""Fuzzing checkpoint.load: whatever happens to a real checkpoint's bytes (truncated at any
length, any byte flipped, several bytes changed), load() returns a checkpoint EQUAL to the
original or raises CheckpointError. Nothing else may come out (NotImplementedError,
AttributeError, TypeError, a silently different checkpoint, ...)."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest

import xpopt
from xpopt import checkpoint as ckpt
from xpopt.checkpoint import CheckpointError

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover
    given = None


@functools.cache
def original(tmp_factory_path: str) -> tuple[bytes, dict, dict]:
    """A real (small) Adam checkpoint: its bytes, and its content read with plain NumPy."""
    X, Y = xpopt.load_moons(n_samples=40)
    path = f"{tmp_factory_path}/orig.npz"
    xpopt.train(
        X,
        Y,
        [2, 3, 1],
        xpopt.Adam(0.01),
        num_epochs=3,
        mini_batch_size=16,
        checkpoint=path,
        record_every=2,
    )
    data = open(path, "rb").read()
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("meta")[()]))
    return data, meta, arrays


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return original(str(tmp_path_factory.mktemp("fuzz")))


def outcome(path) -> str:
    """'error' (CheckpointError), 'same' (equal to the original); anything else raises."""
    try:
        got = ckpt.load(path)
    except CheckpointError:
        return "error"
    return got


def assert_same_or_error(path, reference) -> str:
    _, meta, arrays = reference
    got = outcome(path)
    if got == "error":
        return got
    assert got.meta == meta, "a corrupted file loaded with other metadata"
    assert set(got.slots) | {"parameters"} == set(arrays)
    assert got.parameters.tobytes() == arrays["parameters"].tobytes()
    for k, a in got.slots.items():
        assert a.tobytes() == arrays[k].tobytes() and a.dtype == arrays[k].dtype
    return "same"


def test_every_truncation(tmp_path, reference):
    """The file cut at every length from 0 to its size - 1."""
    data = reference[0]
    path = tmp_path / "cut.npz"
    seen = set()
    for n in range(len(data)):
        path.write_bytes(data[:n])
        seen.add(assert_same_or_error(path, reference))
    assert "error" in seen


@pytest.mark.parametrize("mask", [0xFF, 0x01])
def test_every_byte_flipped(tmp_path, reference, mask):
    """Each byte of the file XOR-ed with the mask, one at a time, at every position."""
    data = reference[0]
    path = tmp_path / "flip.npz"
    counts = {"same": 0, "error": 0}
    for i in range(len(data)):
        flipped = bytearray(data)
        flipped[i] ^= mask
        path.write_bytes(bytes(flipped))
        counts[assert_same_or_error(path, reference)] += 1
    assert counts["error"] > len(data) // 2  # the check itself ran on corrupted content


if given is not None:

    @settings(
        max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    @given(
        changes=st.lists(
            st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=2, max_size=8
        ),
        cut=st.one_of(st.none(), st.integers(0, 10**6)),
    )
    def test_several_bytes_changed(tmp_path_factory, changes, cut):
        """Property (hypothesis, derandomized): several bytes changed, maybe a truncation."""
        folder = tmp_path_factory.getbasetemp() / "fuzz-hyp"
        folder.mkdir(exist_ok=True)
        ref = original(str(folder))
        data = bytearray(ref[0])
        for pos, mask in changes:
            data[pos % len(data)] ^= mask
        if cut is not None:
            data = data[: cut % (len(data) + 1)]
        path = folder / "many.npz"
        path.write_bytes(bytes(data))
        assert_same_or_error(path, ref)
