"""xpopt.digits: scikit-learn's 8x8 digits, scaled, as columns, split stratified and fixed."""

import sys

import numpy
import pytest

import xpopt
from xpopt.digits import load_digits, stratified_split

pytest.importorskip("sklearn")


def test_shapes_scale_and_labels():
    X_train, Y_train, X_test, Y_test = load_digits()
    assert X_train.shape == (64, 1347) and Y_train.shape == (1, 1347)
    assert X_test.shape == (64, 450) and Y_test.shape == (1, 450)
    assert X_train.dtype == numpy.float64 and Y_train.dtype == numpy.int64
    for X in (X_train, X_test):
        assert X.min() == 0.0 and X.max() == 1.0
        assert X.flags.c_contiguous
    assert set(numpy.unique(Y_train)) == set(range(10)) == set(numpy.unique(Y_test))


def test_the_columns_are_sklearns_images_divided_by_16():
    from sklearn.datasets import load_digits as sk

    data = sk()
    X_train, Y_train, X_test, Y_test = load_digits()
    train, test = stratified_split(data.target, 0.25, 0)
    numpy.testing.assert_array_equal(X_train, data.data[train].T / 16)
    numpy.testing.assert_array_equal(X_test, data.data[test].T / 16)
    numpy.testing.assert_array_equal(Y_test[0], data.target[test])


def test_the_split_is_stratified_disjoint_and_complete():
    labels = numpy.repeat(numpy.arange(10), [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
    train, test = stratified_split(labels, 0.25, seed=0)
    assert len(test) == 450 and len(train) == 1347
    assert numpy.intersect1d(train, test).size == 0
    numpy.testing.assert_array_equal(
        numpy.sort(numpy.concatenate([train, test])), numpy.arange(labels.size)
    )
    counts = numpy.bincount(labels)
    share = numpy.bincount(labels[test]) / counts
    assert numpy.all(numpy.abs(share - 0.25) < 1.0 / counts.min())


def test_the_split_is_fixed_by_the_seed():
    a = load_digits(seed=0)
    b = load_digits(seed=0)
    c = load_digits(seed=1)
    for x, y in zip(a, b, strict=True):
        numpy.testing.assert_array_equal(x, y)
    assert not numpy.array_equal(a[3], c[3])


def test_the_split_is_pinned():
    """The documented algorithm, pinned: a change of it changes every published figure."""
    labels = numpy.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2])
    train, test = stratified_split(labels, 0.3, seed=0)
    assert test.tolist() == [2, 5, 7]  # one of each class: shares 0.9, 1.2, 0.9 of 3 places
    assert train.tolist() == [0, 1, 3, 4, 6, 8, 9]


@pytest.mark.parametrize("test_size", [0, 1.0, 1.5, -0.1, 1797, "0.2", True])
def test_bad_test_sizes(test_size):
    with pytest.raises((ValueError, TypeError), match="test_size"):
        load_digits(test_size=test_size)


def test_int_test_size_and_float32():
    X_train, Y_train, X_test, Y_test = load_digits(test_size=100, dtype=numpy.float32)
    assert X_test.shape == (64, 100) and X_train.dtype == numpy.float32


def test_without_scikit_learn_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"pip install 'xpopt\[digits\]'"):
        load_digits()


@pytest.mark.gpu
def test_born_on_the_configured_backend(cupy):
    with xpopt.use_backend("cuda"):
        parts = load_digits()
    assert all(isinstance(a, cupy.ndarray) for a in parts)
    numpy.testing.assert_array_equal(xpopt.to_host(parts[3]), load_digits()[3])
