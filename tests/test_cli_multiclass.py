"""The command line beyond the moons: --data digits, --output softmax, --save."""

import re

import numpy
import pytest

import xpopt
from xpopt import cli
from xpopt.params_io import load_parameters


def _summary(out: str) -> dict:
    return dict(re.findall(r"^(\w[\w -]*?)\s+: (.*)$", out, re.M))


def test_train_digits_saves_parameters_that_load_and_predict(capsys, tmp_path):
    pytest.importorskip("sklearn")
    from xpopt.digits import load_digits

    path = tmp_path / "sub" / "digits.npz"
    assert (
        cli.main(
            [
                "train",
                "--data",
                "digits",
                "--epochs",
                "20",
                "--learning-rate",
                "0.001",
                "--quiet",
                "--save",
                str(path),
            ]
        )
        == 0
    )
    info = _summary(capsys.readouterr().out)
    held = float(info["held-out accuracy"].split()[0])
    assert held > 0.9 and info["parameters"] == str(path)
    parameters = load_parameters(path, layer_dims=[64, 64, 10])
    X_train, Y_train, X_test, Y_test = load_digits()
    assert xpopt.accuracy(X_test, Y_test, parameters, output="softmax") == held
    # the same run through the API
    result = xpopt.train(
        X_train, Y_train, [64, 64, 10], xpopt.Adam(0.001), output="softmax", num_epochs=20
    )
    numpy.testing.assert_array_equal(result.parameters.flat, parameters.flat)


def test_compare_digits_prints_a_held_out_column(capsys):
    pytest.importorskip("sklearn")
    assert (
        cli.main(
            [
                "compare",
                "--data",
                "digits",
                "--optimizers",
                "gd,adam",
                "--epochs",
                "3",
                "--no-plots",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "digits (1347 training, 450 held-out examples), layers [64, 64, 10], softmax" in out
    header = next(line for line in out.splitlines() if line.startswith("optimizer"))
    assert header.split("  ")[0] == "optimizer" and "held-out accuracy" in header


def test_the_moons_with_a_softmax_over_two_units(capsys):
    assert cli.main(["train", "--output", "softmax", "--epochs", "300", "--quiet"]) == 0
    info = _summary(capsys.readouterr().out)
    X, Y = xpopt.load_moons()
    result = xpopt.train(X, Y, [2, 5, 2, 2], xpopt.Adam(0.0007), output="softmax", num_epochs=300)
    acc = xpopt.accuracy(X, Y, result.parameters, output="softmax")
    assert info["train accuracy"].startswith(f"{acc:.4f}")


def test_the_moons_default_is_unchanged(capsys):
    assert cli.main(["compare", "--epochs", "2", "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("moons (300 examples), layers [2, 5, 2, 1], 2 epochs")
    assert "held-out" not in out


def test_digits_need_the_softmax(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--data", "digits", "--output", "sigmoid"])
    assert exit_.value.code == 2
    assert "--data digits has 10 classes" in capsys.readouterr().err


def test_an_unwritable_save_path_fails_before_training(capsys, tmp_path):
    assert cli.main(["train", "--epochs", "5", "--quiet", "--save", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "cannot save the parameters there (--save)" in captured.err
    assert captured.out == ""


def test_digits_without_scikit_learn_exit_2_with_the_hint(capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    assert cli.main(["compare", "--data", "digits", "--epochs", "1", "--no-plots"]) == 2
    assert "pip install 'xpopt[digits]'" in capsys.readouterr().err
