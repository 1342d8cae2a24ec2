"""Figures of a multi-class run (xpopt.class_plots): validation curves, confusion matrices."""

import numpy
import pytest

import xpopt
from xpopt import class_plots
from xpopt.softmax import one_hot

pytest.importorskip("matplotlib")


def _run():
    rng = numpy.random.RandomState(0)
    y = numpy.arange(90) % 3
    X = rng.randn(4, 3)[:, y] * 4 + rng.randn(4, 90) * 0.5
    Y = y.reshape(1, -1)
    result = xpopt.train(
        X,
        Y,
        [4, 6, 3],
        xpopt.Adam(0.01),
        output="softmax",
        num_epochs=12,
        record_every=3,
        validation=(X[:, :30], Y[:, :30]),
    )
    return X, Y, result


def test_confusion_matrix_counts_true_against_predicted():
    X, Y, result = _run()
    matrix = class_plots.confusion_matrix(X, Y, result.parameters)
    assert matrix.shape == (3, 3) and matrix.dtype == numpy.int64 and matrix.sum() == 90
    p = xpopt.predict(X, result.parameters, output="softmax")[0]
    for i in range(3):
        for j in range(3):
            assert matrix[i, j] == numpy.sum((Y[0] == i) & (p == j))
    assert numpy.trace(matrix) / 90 == xpopt.accuracy(X, Y, result.parameters, output="softmax")
    numpy.testing.assert_array_equal(
        class_plots.confusion_matrix(X, one_hot(Y, 3), result.parameters), matrix
    )


def test_the_figures_are_written(tmp_path):
    X, Y, result = _run()
    curves = class_plots.plot_validation({"adam": result, "again": result}, tmp_path / "v.png")
    matrices = {"adam": class_plots.confusion_matrix(X, Y, result.parameters)}
    confusion = class_plots.plot_confusion_matrices(matrices, tmp_path / "c" / "m.png")
    for path in (curves, confusion):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="no confusion matrix"):
        class_plots.plot_confusion_matrices({}, tmp_path / "x.png")
