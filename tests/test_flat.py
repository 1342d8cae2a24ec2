"""FlatDict: named views into one buffer, course-style rebinding, repack, copies, moves."""

from __future__ import annotations

import copy
import pickle

import numpy
import pytest

from xpopt import FlatDict, to_host

LAYOUT = (("W1", (2, 3)), ("b1", (2, 1)), ("W2", (1, 2)), ("b2", (1, 1)))
SIZE = 6 + 2 + 2 + 1


def make(xp, dtype=numpy.float64) -> FlatDict:
    """A FlatDict over arange(11): W1 = 0..5, b1 = 6..7, W2 = 8..9, b2 = 10."""
    return FlatDict(xp.arange(SIZE, dtype=dtype), LAYOUT)


def host(a) -> numpy.ndarray:
    return numpy.asarray(to_host(a))


def test_views_follow_layout_order(xp):
    """Each key is its slice of the buffer, in layout order, with its shape."""
    p = make(xp)
    assert list(p) == ["W1", "b1", "W2", "b2"] and isinstance(p, dict)
    numpy.testing.assert_array_equal(host(p["W1"]), [[0, 1, 2], [3, 4, 5]])
    numpy.testing.assert_array_equal(host(p["b1"]), [[6], [7]])
    numpy.testing.assert_array_equal(host(p["W2"]), [[8, 9]])
    numpy.testing.assert_array_equal(host(p["b2"]), [[10]])
    assert p.packed and p.dtype == numpy.float64 and p.layout == LAYOUT


def test_views_share_the_buffer(xp):
    """Writing a view writes the buffer, and writing the buffer shows in the views."""
    p = make(xp)
    p["W1"][...] = -1
    p["b2"][0, 0] = 42
    numpy.testing.assert_array_equal(host(p.flat), [-1] * 6 + [6, 7, 8, 9, 42])
    p.flat[6:8] = xp.asarray([100.0, 200.0])
    numpy.testing.assert_array_equal(host(p["b1"]), [[100], [200]])
    if xp is numpy:
        for key in p:
            assert numpy.shares_memory(p[key], p.flat)


def test_inplace_update_keeps_packed(xp):
    """Augmented assignment (p[k] -= ...) writes in place and keeps the dict packed."""
    p = make(xp)
    p["W2"] -= 0.5
    p["b1"] *= 2
    assert p.packed
    numpy.testing.assert_array_equal(host(p.flat), [0, 1, 2, 3, 4, 5, 12, 14, 7.5, 8.5, 10])


def test_course_style_rebinding_then_repack(xp):
    """`p["W1"] = p["W1"] - 1` holds the right values, unpacks the dict; repack restores."""
    p = make(xp)
    old_flat = host(p.flat).copy()
    p["W1"] = p["W1"] - 1
    assert not p.packed
    numpy.testing.assert_array_equal(host(p["W1"]), [[-1, 0, 1], [2, 3, 4]])
    numpy.testing.assert_array_equal(host(p.flat), old_flat)  # the buffer is not the truth now
    assert p.repack() is p
    assert p.packed
    numpy.testing.assert_array_equal(host(p.flat), [-1, 0, 1, 2, 3, 4, 6, 7, 8, 9, 10])
    p["W1"][0, 0] = 99  # a view again
    assert float(p.flat[0]) == 99.0


def test_repack_rejects_incompatible_rebinding():
    """repack refuses a wrong shape, a wrong dtype, or added/removed keys, and says which."""
    p = make(numpy)
    p["W1"] = numpy.zeros((3, 2))
    with pytest.raises(ValueError, match="W1"):
        p.repack()
    p = make(numpy)
    p["b1"] = numpy.zeros((2, 1), numpy.float32)
    with pytest.raises(TypeError, match="b1"):
        p.repack()
    p = make(numpy)
    p["W3"] = numpy.zeros(1)
    assert not p.packed
    with pytest.raises(KeyError):
        p.repack()


def test_constructor_checks_buffer_size():
    """The buffer must be 1-D with exactly the layout's number of elements."""
    with pytest.raises(ValueError, match=str(SIZE)):
        FlatDict(numpy.zeros(SIZE + 1), LAYOUT)
    with pytest.raises(ValueError):
        FlatDict(numpy.zeros((1, SIZE)), LAYOUT)


def test_empty_pack_zeros_like(xp):
    """empty(fill=...), pack (a copy of separate arrays) and zeros_like("d") build correct dicts."""
    e = FlatDict.empty(LAYOUT, xp, numpy.float32, fill=3.0)
    assert e.dtype == numpy.float32 and e.packed
    numpy.testing.assert_array_equal(host(e.flat), numpy.full(SIZE, 3.0, numpy.float32))
    arrays = {"b": xp.ones((2, 1)), "a": xp.arange(4.0).reshape(2, 2)}
    packed = FlatDict.pack(arrays)
    assert list(packed) == ["b", "a"] and packed.packed
    numpy.testing.assert_array_equal(host(packed.flat), [1, 1, 0, 1, 2, 3])
    arrays["a"][0, 0] = 50  # pack copied: the source is independent
    assert float(packed["a"][0, 0]) == 0.0
    z = make(xp).zeros_like("d")
    assert list(z) == ["dW1", "db1", "dW2", "db2"] and z.packed
    assert type(z.flat) is type(make(xp).flat)
    numpy.testing.assert_array_equal(host(z.flat), numpy.zeros(SIZE))
    assert z.layout == tuple(("d" + k, s) for k, s in LAYOUT)


def test_pack_rejects_mixed_dtypes():
    """Arrays of different dtypes cannot share one buffer."""
    with pytest.raises(TypeError, match="dtype"):
        FlatDict.pack({"a": numpy.zeros(2), "b": numpy.zeros(2, numpy.float32)})


@pytest.mark.parametrize("how", ["copy", "copy.copy", "copy.deepcopy", "pickle"])
@pytest.mark.parametrize("rebound", [False, True])
def test_copies_are_independent_and_packed(how, rebound):
    """copy/copy.copy/deepcopy/pickle give a packed FlatDict over a new buffer, same values."""
    p = make(numpy)
    if rebound:
        p["W2"] = p["W2"] * 10
    expected = {k: numpy.array(v) for k, v in p.items()}
    q = {
        "copy": lambda x: x.copy(),
        "copy.copy": copy.copy,
        "copy.deepcopy": copy.deepcopy,
        "pickle": lambda x: pickle.loads(pickle.dumps(x)),
    }[how](p)
    assert type(q) is FlatDict and q.packed and q.layout == p.layout
    assert list(q) == list(p)
    for k in p:
        numpy.testing.assert_array_equal(q[k], expected[k])
        assert numpy.shares_memory(q[k], q.flat)
        assert not numpy.shares_memory(q[k], p.flat)
    q["W1"][...] = -7  # independent of the original
    numpy.testing.assert_array_equal(p["W1"], expected["W1"])
    assert p.packed is (not rebound)  # copying did not repack the original


def test_map_buffer(xp):
    """map_buffer gives a FlatDict over fn(flat); the identity keeps the same object."""
    p = make(xp)
    assert p.map_buffer(lambda f: f) is p
    doubled = p.map_buffer(lambda f: f * 2)
    assert isinstance(doubled, FlatDict) and doubled.packed and doubled.layout == LAYOUT
    numpy.testing.assert_array_equal(host(doubled["W2"]), [[16, 18]])
    numpy.testing.assert_array_equal(host(p["W2"]), [[8, 9]])
    as32 = p.map_buffer(lambda f: f.astype(numpy.float32))
    assert as32.dtype == numpy.float32
    p["b2"] = p["b2"] + 1  # rebound: map_buffer must see the dict's values, not the stale buffer
    moved = p.map_buffer(lambda f: f + 0)
    assert float(moved["b2"][0, 0]) == 11.0 and moved.packed
