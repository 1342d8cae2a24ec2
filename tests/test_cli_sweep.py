"""``xpopt sweep``: the grid from the options, each model's row against xpopt.train, refusals.

Every row of the printed table is checked against values computed here independently: the
model trained alone by :func:`xpopt.train` from the row's settings, its final cost by the
course's own functions (tests/course_reference.py) and its accuracy by NumPy.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import course_reference as course
import xpopt
from xpopt import cli, stacked
from xpopt.cli import sweep as cli_sweep

SWEEP_COLUMNS = {
    "optimizer": str,
    "learning_rate": float,
    "beta": float,
    "beta1": float,
    "beta2": float,
    "epsilon": float,
    "seed": int,
    "init_seed": int,
    "num_epochs": int,
    "mini_batch_size": int,
    "decay": str,
    "decay_rate": float,
}


def rows(text: str) -> list[dict]:
    """The plain table's rows as dicts (header names as keys, values as strings)."""
    lines = text.splitlines()
    rule = next(i for i, l in enumerate(lines) if re.fullmatch(r"[- ]+", l) and "--" in l)
    header = re.split(r"\s{2,}", lines[rule - 1].strip())
    body = []
    for line in lines[rule + 1 :]:
        if not line.strip():
            break
        body.append(dict(zip(header, line.split(), strict=True)))
    return body


def expected_row(X, Y, settings: dict) -> tuple[str, str]:
    """(final cost, accuracy) as the table prints them, for the model trained alone."""
    s = settings
    decay = {
        "none": None,
        "update_lr": xpopt.update_lr,
        "schedule_lr_decay": xpopt.schedule_lr_decay,
    }[s.get("decay", "none")]
    opt = xpopt.make_optimizer(
        s["optimizer"],
        s["learning_rate"],
        beta=s.get("beta", 0.9),
        beta1=s.get("beta1", 0.9),
        beta2=s.get("beta2", 0.999),
    )
    init = xpopt.initialize_parameters([2, 5, 2, 1], seed=s.get("init_seed", 3))
    result = xpopt.train(
        X,
        Y,
        init,
        opt,
        seed=s.get("seed", 10),
        mini_batch_size=s.get("mini_batch_size", 64),
        num_epochs=s["num_epochs"],
        decay=decay,
        decay_rate=s.get("decay_rate", 1),
    )
    p = {k: np.array(v) for k, v in result.parameters.items()}
    a, _ = course.forward_propagation(np.array(X), p)
    cost = float(course.compute_cost(a, np.array(Y))) / X.shape[1]
    accuracy = float(np.mean((a > 0.5) == np.array(Y)))
    return f"{cost:.6f}", f"{accuracy:.4f}"


@pytest.fixture(scope="module")
def moons():
    return xpopt.load_moons()


def typed(row: dict) -> dict:
    return {k: SWEEP_COLUMNS[k](v) for k, v in row.items() if k in SWEEP_COLUMNS}


# ------------------------------------------------------------- rows against train
def test_every_row_is_the_model_train_trains(capsys, moons):
    X, Y = moons
    status = cli.main(
        [
            "sweep",
            "--optimizer",
            "adam,momentum",
            "--learning-rate",
            "1e-3,1e-2",
            "--beta1",
            "0.8,0.9",
            "--seeds",
            "0-1",
            "--init-seeds",
            "5",
            "--epochs",
            "30",
            "--decay",
            "none,update_lr",
            "--decay-rate",
            "0.3",
            "--no-plots",
        ]
    )
    out = capsys.readouterr().out
    assert status == 0
    table = rows(out)
    assert len(table) == 2 * 2 * 2 * 2 * 2 and "32 models" in out
    assert set(table[0]) == {
        "model",
        "optimizer",
        "learning_rate",
        "beta1",
        "seed",
        "decay",
        "final cost",
        "train accuracy",
    }  # fixed values are no columns
    for row in table:
        s = typed(row)
        s.update(init_seed=5, num_epochs=30, decay_rate=0.3)
        assert (row["final cost"], row["train accuracy"]) == expected_row(X, Y, s), row


def test_batch_sizes_epochs_and_shared_shuffle(capsys, moons):
    X, Y = moons
    assert (
        cli.main(
            [
                "sweep",
                "--optimizer",
                "rmsprop",
                "--learning-rate",
                "0.01",
                "--batch-size",
                "50,full",
                "--epochs",
                "3-4",
                "--seeds",
                "7",
                "--shuffle",
                "shared",
                "--record-every",
                "2",
                "--no-plots",
            ]
        )
        == 0
    )
    table = rows(capsys.readouterr().out)
    assert [(r["num_epochs"], r["mini_batch_size"]) for r in table] == [
        ("3", "50"),
        ("3", "300"),
        ("4", "50"),
        ("4", "300"),
    ]  # AXES order, last fastest
    for row in table:
        s = typed(row)
        s.update(optimizer="rmsprop", learning_rate=0.01, seed=7)
        assert (row["final cost"], row["train accuracy"]) == expected_row(X, Y, s), row


def test_sorted_markdown(capsys):
    assert (
        cli.main(
            [
                "sweep",
                "--learning-rate",
                "1e-4,1e-2,1e-1",
                "--epochs",
                "20",
                "--sort",
                "accuracy",
                "--markdown",
                "--no-plots",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    body = [l for l in out.splitlines() if l.startswith("| ") and "---" not in l][1:]
    accuracies = [float(l.strip("| ").split("|")[-1]) for l in body]
    assert len(body) == 3 and accuracies == sorted(accuracies, reverse=True)


# --------------------------------------------------------------- the options' values
@pytest.mark.parametrize(
    "option, text, value",
    [
        ("--seeds", "0-3", [0, 1, 2, 3]),
        ("--seeds", "4", 4),  # a single value stays fixed
        ("--seeds", "1,5-6", [1, 5, 6]),
        ("--seeds", "2-2", [2]),  # a range is an axis, even of one
        ("--learning-rate", "1e-4,3e-4", [1e-4, 3e-4]),
        ("--learning-rate", "1e-3", 1e-3),
        ("--batch-size", "full", 300),
        ("--batch-size", "64,full", [64, 300]),
        ("--optimizer", "adam,GD", ["adam", "gd"]),
        ("--decay", "none,update_lr", ["none", "update_lr"]),
        ("--heatmap", "learning-rate,seeds", ("learning_rate", "seed")),
    ],
)
def test_comma_lists_are_axes_ranges_are_ranges(option, text, value):
    args = cli.build_parser().parse_args(["sweep", option, text])
    dest = option[2:].replace("-", "_")
    assert getattr(args, dest) == value


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if the command reaches training or loads the data."""

    def refuse(*args, **kwargs):
        raise AssertionError("work started before the arguments were checked")

    monkeypatch.setattr(cli_sweep, "load_moons", refuse)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--learning-rate", "1e-3,abc"], "argument --learning-rate: expected numbers > 0"),
        (["--learning-rate", "1e-3,,1e-2"], "argument --learning-rate: empty value"),
        (["--seeds", "5-3"], "argument --seeds: empty range '5-3'"),
        (["--optimizer", "adam,sgd"], "argument --optimizer: invalid optimizer 'sgd'"),
        (["--beta1", "0.9,1.0"], "argument --beta1: expected numbers in [0, 1)"),
        (["--batch-size", "0"], "argument --batch-size: expected integers >= 1 or 'full'"),
        (["--decay", "cosine"], "argument --decay: invalid decay 'cosine'"),
        (["--epochs", "2.5"], "argument --epochs: expected integers >= 0"),
        (["--heatmap", "learning_rate"], "argument --heatmap: expected two different axes"),
        (["--heatmap", "beta,seed", "--seeds", "0-1"], "--heatmap: beta is not an axis"),
        (["--shuffle", "shared", "--seeds", "1,2"], "one seed"),
        (["--seeds", "4294967290", "--epochs", "100"], "outside NumPy's range"),
        (["--resume"], "--resume needs --checkpoint PATH"),
        (["--best", "0"], "argument --best: expected an integer >= 1"),
    ],
)
def test_bad_values_exit_2_before_any_training(capsys, no_training, args, message):
    with pytest.raises(SystemExit) as exc:
        cli.main(["sweep", *args])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    errors = [l for l in captured.err.splitlines() if "error:" in l]
    assert len(errors) == 1 and errors[0].startswith("xpopt sweep: error: ")
    assert message in errors[0]
    assert captured.err.startswith("usage: xpopt sweep")


def test_progress_bars_on_request(capsys):
    assert (
        cli.main(
            [
                "sweep",
                "--optimizer",
                "adam,gd",
                "--learning-rate",
                "1e-3,1e-2",
                "--epochs",
                "6",
                "--record-every",
                "2",
                "--no-plots",
                "--progress",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "adam x2, best:" in err and "gd x2, best:" in err and err.count("6/6") == 2
    assert cli.main(["sweep", "--epochs", "3", "--no-plots", "--no-progress"]) == 0
    assert capsys.readouterr().err == ""
    with pytest.raises(SystemExit):
        cli.main(["sweep", "--progress", "--no-progress"])


# ------------------------------------------------------------------------ figures
def test_figures_named_as_compares(capsys, tmp_path):
    pytest.importorskip("matplotlib", reason="figures need matplotlib (the plot extra)")
    out = tmp_path / "figs"
    assert (
        cli.main(
            [
                "sweep",
                "--learning-rate",
                "1e-3,1e-2",
                "--seeds",
                "0-1",
                "--epochs",
                "20",
                "--record-every",
                "5",
                "--heatmap",
                "seed,learning_rate",
                "--best",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert f"figures: {out / 'heatmap.png'}, {out / 'costs.png'}" in printed
    assert sorted(p.name for p in out.iterdir()) == ["costs.png", "heatmap.png"]
    assert all(p.stat().st_size > 0 for p in out.iterdir())


def test_one_axis_draws_the_best_curves_only(capsys, tmp_path):
    pytest.importorskip("matplotlib", reason="figures need matplotlib (the plot extra)")
    assert (
        cli.main(["sweep", "--learning-rate", "1e-3,1e-2", "--epochs", "5", "--out", str(tmp_path)])
        == 0
    )
    assert f"figures: {tmp_path / 'costs.png'}" in capsys.readouterr().out
    assert not (tmp_path / "heatmap.png").exists()


# -------------------------------------------------------------------- checkpoints
def test_checkpoint_resume_and_refusal(capsys, tmp_path, monkeypatch):
    path = tmp_path / "sweep.npz"
    common = [
        "sweep",
        "--optimizer",
        "adam,gd",
        "--learning-rate",
        "1e-3,1e-2",
        "--epochs",
        "30",
        "--record-every",
        "5",
        "--no-plots",
    ]
    assert cli.main(common) == 0
    straight = rows(capsys.readouterr().out)

    calls = []
    real_run = stacked.StackedTrainer.run

    def interrupted(self, *args, **kwargs):  # the third piece of training is interrupted
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(stacked.StackedTrainer, "run", interrupted)
    assert cli.main([*common, "--checkpoint", str(path), "--checkpoint-every", "10"]) == 130
    assert path.exists()
    monkeypatch.setattr(stacked.StackedTrainer, "run", real_run)
    capsys.readouterr()
    assert (
        cli.main([*common, "--checkpoint", str(path), "--checkpoint-every", "10", "--resume"]) == 0
    )
    assert rows(capsys.readouterr().out) == straight

    status = cli.main(
        [
            "sweep",
            "--optimizer",
            "adam",
            "--learning-rate",
            "1e-3,1e-2",
            "--epochs",
            "30",
            "--record-every",
            "5",
            "--no-plots",
            "--checkpoint",
            str(path),
            "--resume",
        ]
    )
    captured = capsys.readouterr()
    assert status == 1 and "checkpoint of another sweep" in captured.err
    assert "final cost" not in captured.out  # no table: nothing trained
