"""The command line: ``xpopt train`` and ``xpopt compare`` against the library they drive.

Runs are short (a few hundred epochs): what matters is that the CLI reproduces the course's
``model()`` for the same settings, not the 5000-epoch results themselves.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import textwrap
from functools import partial
from pathlib import Path

import pytest

import xpopt
from conftest import gpu_unavailable_reason, require_gpu
from xpopt import cli, experiment

SRC = str(Path(xpopt.__file__).resolve().parents[1])
MATPLOTLIB_HINT = "matplotlib is needed for figures: pip install 'xpopt[plot]' (or pass --no-plots)"


def course_lines(text: str) -> list[str]:
    return [
        l for l in text.splitlines() if l.startswith(("Cost after epoch", "learning rate after"))
    ]


def summary(text: str) -> dict[str, str]:
    """``key : value`` lines of ``xpopt train``'s summary."""
    return dict(re.findall(r"^(\w[\w ]*?)\s+: (.*)$", text, flags=re.M))


def table(text: str) -> list[list[str]]:
    """The body rows of compare's plain table (the lines under the dashed rule)."""
    lines = text.splitlines()
    rule = next(i for i, l in enumerate(lines) if re.fullmatch(r"[- ]+", l) and "--" in l)
    rows = []
    for line in lines[rule + 1 :]:
        if not line.strip():
            break
        rows.append(line.split())
    return rows


def run_cli(*args, env_extra=None, stderr=subprocess.PIPE, prelude=""):
    """``python -m xpopt ARGS`` (or ``prelude`` then cli.main) in a fresh interpreter."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("XPOPT_")}
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env.update(env_extra or {})
    if prelude:
        code = prelude + f"\nfrom xpopt.cli import main\nraise SystemExit(main({list(args)!r}))"
        command = [sys.executable, "-c", code]
    else:
        command = [sys.executable, "-m", "xpopt", *args]
    return subprocess.run(
        command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, timeout=120
    )


@pytest.fixture(scope="module")
def moons():
    return xpopt.load_moons()


# --------------------------------------------------------------------------- train
@pytest.mark.parametrize(
    "optimizer, extra, model_kwargs",
    [
        ("gd", [], {}),
        ("momentum", ["--beta", "0.8"], {"beta": 0.8}),
        (
            "rmsprop",
            ["--learning-rate", "0.001", "--beta2", "0.99"],
            {"learning_rate": 0.001, "beta2": 0.99},
        ),
        ("adam", ["--batch-size", "full"], {"mini_batch_size": 300}),
    ],
)
def test_train_prints_what_model_prints(capsys, moons, optimizer, extra, model_kwargs):
    X, Y = moons
    params = xpopt.model(X, Y, [2, 5, 2, 1], optimizer, num_epochs=1001, **model_kwargs)
    expected = capsys.readouterr().out

    assert cli.main(["train", "--optimizer", optimizer, "--epochs", "1001", *extra]) == 0
    out = capsys.readouterr().out
    assert course_lines(out) == course_lines(expected) and len(course_lines(out)) == 2
    info = summary(out)
    assert float(info["final cost"]) == pytest.approx(course_final_cost(X, Y, params), abs=1e-6)
    assert info["train accuracy"].startswith(f"{xpopt.accuracy(X, Y, params):.4f} (")
    assert info["backend"].startswith("cpu (")
    assert re.fullmatch(r"\d+\.\d\d s for 1001 epochs", info["wall time"])


def test_train_print_every_and_decay_match_train(capsys, moons):
    X, Y = moons
    decay = partial(xpopt.schedule_lr_decay, time_interval=100)
    xpopt.train(
        X,
        Y,
        [2, 5, 2, 1],
        xpopt.make_optimizer("momentum", 0.1),
        num_epochs=250,
        decay=decay,
        decay_rate=0.5,
        print_cost=True,
        print_every=50,
    )
    expected = course_lines(capsys.readouterr().out)

    assert (
        cli.main(
            [
                "train",
                "--optimizer",
                "momentum",
                "--learning-rate",
                "0.1",
                "--epochs",
                "250",
                "--decay",
                "schedule_lr_decay",
                "--decay-rate",
                "0.5",
                "--time-interval",
                "100",
                "--print-every",
                "50",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert course_lines(out) == expected and len(expected) == 10
    assert summary(out)["learning rate"] == "0.1 -> 0.05 in the last epoch"


def test_train_quiet_prints_the_summary_only(capsys):
    assert cli.main(["train", "--epochs", "30", "--quiet", "--dtype", "float32"]) == 0
    out = capsys.readouterr().out
    assert course_lines(out) == []
    info = summary(out)
    assert math.isfinite(float(info["final cost"]))
    assert 0 <= float(info["train accuracy"].split()[0]) <= 1


def test_train_resumes_from_a_checkpoint(capsys, tmp_path):
    path = tmp_path / "run.npz"
    common = ["train", "--optimizer", "adam", "--print-every", "100", "--checkpoint", str(path)]
    assert cli.main([*common, "--epochs", "200"]) == 0
    first = capsys.readouterr().out
    assert path.exists()
    assert cli.main([*common, "--epochs", "400", "--resume"]) == 0
    resumed = capsys.readouterr().out
    assert (
        cli.main(["train", "--optimizer", "adam", "--print-every", "100", "--epochs", "400"]) == 0
    )
    straight = capsys.readouterr().out

    assert f"Resuming from {path} at epoch 200" in resumed
    assert course_lines(first) + course_lines(resumed) == course_lines(straight)
    assert summary(resumed)["final cost"] == summary(straight)["final cost"]
    assert "for 200 epochs" in summary(resumed)["wall time"]


def test_train_refuses_a_checkpoint_of_another_run(capsys, tmp_path):
    path = tmp_path / "adam.npz"
    assert cli.main(["train", "--epochs", "10", "--quiet", "--checkpoint", str(path)]) == 0
    capsys.readouterr()
    status = cli.main(
        ["train", "--optimizer", "gd", "--epochs", "20", "--checkpoint", str(path), "--resume"]
    )
    err = capsys.readouterr().err
    assert status == 1
    assert "checkpoint does not match this run" in err and "optimizer Adam != GD" in err


def test_train_refuses_to_resume_past_its_epochs(capsys, tmp_path):
    path = tmp_path / "run.npz"
    assert cli.main(["train", "--epochs", "40", "--quiet", "--checkpoint", str(path)]) == 0
    capsys.readouterr()
    assert cli.main(["train", "--epochs", "20", "--checkpoint", str(path), "--resume"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == f"xpopt: {path} has done 40 epochs, more than num_epochs=20"


FIGURES = ("costs.png", "decision_boundaries.png")  # one naming for train and compare


def test_train_writes_its_figures(capsys, tmp_path):
    assert cli.main(["train", "--epochs", "200", "--quiet", "--plot-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in FIGURES:
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000
        assert str(tmp_path / name) in summary(out)["figures"]
    assert sorted(os.listdir(tmp_path)) == sorted(FIGURES)  # no old names beside them


# ------------------------------------------------------------------------- compare
def test_compare_has_one_row_per_optimizer_equal_to_model(capsys, moons):
    assert cli.main(["compare", "--epochs", "200", "--no-plots"]) == 0
    out = capsys.readouterr().out
    rows = table(out)
    assert [r[0] for r in rows] == ["gd", "momentum", "rmsprop", "adam"]
    for _name, cost, acc, seconds in rows:
        assert math.isfinite(float(cost)) and 0 <= float(acc) <= 1 and float(seconds) >= 0
    assert "200 epochs, mini-batch 64, learning rate 0.0007" in out

    X, Y = moons
    params = xpopt.model(X, Y, [2, 5, 2, 1], "adam", num_epochs=200, print_cost=False)
    assert float(rows[3][1]) == pytest.approx(course_final_cost(X, Y, params), abs=1e-6)
    assert rows[3][2] == f"{xpopt.accuracy(X, Y, params):.4f}"


def test_compare_selected_optimizers_in_markdown(capsys):
    assert (
        cli.main(
            [
                "compare",
                "--epochs",
                "50",
                "--no-plots",
                "--markdown",
                "--optimizers",
                "adam,gd",
                "momentum",
                "adam",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    start = lines.index(next(l for l in lines if l.startswith("| optimizer")))
    md = lines[start : start + 5]
    assert md[0].split("|")[1:-1] == [
        " optimizer ",
        " final cost ",
        " train accuracy ",
        " time (s) ",
    ]
    assert re.fullmatch(r"\| -+ \| -+: \| -+: \| -+: \|", md[1])
    assert [l.split("|")[1].strip() for l in md[2:]] == ["adam", "gd", "momentum"]
    assert len({len(l) for l in md}) == 1  # aligned columns
    assert start + 5 == len(lines) or not lines[start + 5].startswith("|")


def test_compare_decay_uses_the_notebooks_rate_unless_told(capsys):
    assert (
        cli.main(
            [
                "compare",
                "--epochs",
                "20",
                "--no-plots",
                "--optimizers",
                "gd",
                "--decay",
                "update_lr",
            ]
        )
        == 0
    )
    assert "learning rate 0.1, decay update_lr (rate 1)" in capsys.readouterr().out
    assert (
        cli.main(
            [
                "compare",
                "--epochs",
                "20",
                "--no-plots",
                "--optimizers",
                "gd",
                "--decay",
                "schedule_lr_decay",
                "--learning-rate",
                "0.05",
            ]
        )
        == 0
    )
    assert (
        "learning rate 0.05, decay schedule_lr_decay (rate 1, every 1000 epochs)"
        in capsys.readouterr().out
    )


def test_compare_verbose_prints_each_runs_course_lines(capsys):
    assert (
        cli.main(
            ["compare", "--epochs", "20", "--no-plots", "--verbose", "--optimizers", "gd", "adam"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert re.search(r"^gd:\nCost after epoch 0: 0\.\d{6}\nadam:\nCost after epoch 0: ", out, re.M)


def test_compare_writes_both_figures(capsys, tmp_path):
    out_dir = tmp_path / "figs"
    assert (
        cli.main(
            ["compare", "--epochs", "100", "--optimizers", "gd", "adam", "--out", str(out_dir)]
        )
        == 0
    )
    assert f"figures: {out_dir / FIGURES[0]}, {out_dir / FIGURES[1]}" in capsys.readouterr().out
    for name in FIGURES:
        data = (out_dir / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000
    assert sorted(os.listdir(out_dir)) == sorted(FIGURES)


def test_run_comparison_refuses_unknown_optimizers_before_training():
    with pytest.raises(ValueError, match="unknown optimizer"):
        experiment.run_comparison(["adam", "sgd"], num_epochs=10**9)


# ---------------------------------------------------------------- processes, ttys
def test_python_m_xpopt_runs_quietly_without_a_terminal():
    done = run_cli("compare", "--epochs", "100", "--optimizers", "adam", "--no-plots")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no progress bar: stderr is a pipe
    assert [r[0] for r in table(done.stdout)] == ["adam"]
    done = run_cli("train", "--epochs", "100")
    assert done.returncode == 0, done.stderr
    assert course_lines(done.stdout) == ["Cost after epoch 0: 0.702166"]


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX only")
def test_compare_shows_a_progress_bar_on_a_terminal():
    import pty

    master, slave = pty.openpty()
    try:
        done = run_cli(
            "compare", "--epochs", "150", "--optimizers", "gd", "adam", "--no-plots", stderr=slave
        )
    finally:
        os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the terminal's other end is closed and drained
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    bar = b"".join(chunks).decode()
    assert done.returncode == 0
    # tqdm's bar: label, percentage, count, elapsed<remaining (the ETA), rate, the cost
    for name in ("gd", "adam"):
        assert re.search(
            name + r" +: 100%\|\S+\| 150/150 \[\d\d:\d\d<\d\d:\d\d, +"
            r"[\d.]+epoch/s, cost 0\.\d{6}\]",
            bar,
        ), bar


# -------------------------------------------------------------------------- backend
def test_cuda_without_a_gpu_warns_once_and_runs_on_the_cpu():
    if gpu_unavailable_reason() is None:
        pytest.skip("a GPU is usable here, so --backend cuda does not fall back")
    done = run_cli(
        "compare", "--backend", "cuda", "--epochs", "20", "--optimizers", "gd", "adam", "--no-plots"
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("xpopt: warning: --backend cuda: ") == 1
    assert "Falling back to the CPU" in done.stderr and "--backend cpu" in done.stderr
    assert "backend cpu (" in done.stdout


@pytest.mark.parametrize(
    "args, env",
    [
        (["train", "--backend", "cuda", "--strict"], {}),
        (["compare", "--strict", "--no-plots"], {"XPOPT_BACKEND": "cuda"}),
    ],
)
def test_strict_cuda_without_a_gpu_exits_2_before_training(capsys, monkeypatch, args, env):
    if gpu_unavailable_reason() is None:
        pytest.skip("a GPU is usable here, so --strict has nothing to refuse")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert cli.main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    asked = "--backend cuda" if "--backend" in args else "XPOPT_BACKEND=cuda"
    assert captured.err.startswith(
        f"xpopt: {asked} in strict mode, but the GPU cannot be used: {gpu_unavailable_reason()}"
    )
    assert len(captured.err.strip().splitlines()) == 1


@pytest.mark.gpu
def test_compare_on_the_gpu(capsys):
    require_gpu()
    assert (
        cli.main(
            [
                "compare",
                "--backend",
                "cuda",
                "--strict",
                "--epochs",
                "100",
                "--no-plots",
                "--optimizers",
                "adam",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "backend cuda (" in out and [r[0] for r in table(out)] == ["adam"]


def test_info_still_works(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^backend +: cpu$", out, re.M) and "numpy" in out


# ---------------------------------------------------------------------- bad usage
@pytest.mark.parametrize(
    "args, message",
    [
        ([], "the following arguments are required"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["train", "--optimizer", "sgd"], "argument --optimizer: invalid choice: 'sgd'"),
        (["train", "--epochs", "-1"], "argument --epochs: expected an integer >= 0, got '-1'"),
        (["train", "--learning-rate", "abc"], "argument --learning-rate: expected a number > 0"),
        (["train", "--beta", "1.5"], "argument --beta: expected a number in [0, 1), got '1.5'"),
        (
            ["train", "--batch-size", "0"],
            "argument --batch-size: expected an integer >= 1 or 'full'",
        ),
        (["train", "--decay", "cosine"], "argument --decay: invalid choice: 'cosine'"),
        (["train", "--resume"], "--resume needs --checkpoint PATH"),
        (["compare", "--optimizers", "gd,sgd"], "argument --optimizers: invalid optimizer sgd"),
        (["compare", "--backend", "tpu"], "argument --backend: invalid choice: 'tpu'"),
    ],
)
def test_bad_arguments_exit_2_with_argparses_message(capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        cli.main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: xpopt") and "error: " in err and message in err


def test_a_bad_xpopt_backend_variable_is_a_usage_error(capsys, monkeypatch):
    monkeypatch.setenv("XPOPT_BACKEND", "gpu")
    assert cli.main(["train", "--epochs", "1"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "xpopt: XPOPT_BACKEND='gpu' is not understood: use cpu, cuda or auto (or unset it)\n"
    )


# ------------------------------------------------------------------ no matplotlib
NO_MATPLOTLIB = "import sys\nsys.modules['matplotlib'] = None  # import matplotlib -> ImportError"


def test_compare_without_matplotlib_fails_before_training():
    done = run_cli("compare", "--epochs", "100000", prelude=NO_MATPLOTLIB)
    assert done.returncode == 2
    assert done.stdout == ""  # not even the header: nothing was trained
    assert done.stderr.strip() == f"xpopt: {MATPLOTLIB_HINT}"


def test_train_without_matplotlib_names_its_own_option():
    done = run_cli("train", "--epochs", "100000", "--plot-dir", "never", prelude=NO_MATPLOTLIB)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == (
        "xpopt: matplotlib is needed for figures: "
        "pip install 'xpopt[plot]' (or leave out --plot-dir)"
    )


def test_no_plots_needs_no_matplotlib():
    done = run_cli(
        "compare",
        "--epochs",
        "20",
        "--optimizers",
        "gd",
        "--no-plots",
        prelude=NO_MATPLOTLIB
        + textwrap.dedent("""
                       import atexit
                       atexit.register(lambda: print('matplotlib loaded:', any(
                           m.startswith('matplotlib.') for m in sys.modules), file=sys.stderr))
                       """),
    )
    assert done.returncode == 0, done.stderr
    assert [r[0] for r in table(done.stdout)] == ["gd"]
    assert done.stderr.strip() == "matplotlib loaded: False"


# ------------------------------------------------------------ issue 11: faults
def course_final_cost(X, Y, params) -> float:
    """The course's cost of the trained parameters over all of (X, Y), divided by m,
    computed with the course's own functions (tests/course_reference.py)."""
    import numpy as np

    import course_reference as course

    a, _ = course.forward_propagation(np.array(X), {k: np.array(v) for k, v in params.items()})
    return float(course.compute_cost(a, np.array(Y))) / X.shape[1]


def course_model(optimizer, **kw):
    import contextlib
    import io

    import numpy as np

    import course_reference as course

    X, Y = xpopt.load_moons()
    with contextlib.redirect_stdout(io.StringIO()):
        return course.model(np.array(X), np.array(Y), [2, 5, 2, 1], optimizer, **kw)


def test_final_cost_is_the_courses_cost_over_m(moons):
    """experiment.final_cost against the course's forward pass and compute_cost / m (not
    against itself): the cost of the course's trained parameters."""
    X, Y = moons
    params, _ = course_model("adam", num_epochs=300)
    want = course_final_cost(X, Y, params)
    assert 0.05 < want < 1.0  # a trained network's mean cross-entropy, not a sum
    assert experiment.final_cost(X, Y, params) == pytest.approx(want, rel=1e-12)


def test_train_summary_reports_the_courses_final_cost(capsys, moons):
    """The CLI's final cost is the course's cost of the course's parameters / m."""
    X, Y = moons
    params, _ = course_model("momentum", num_epochs=300)
    assert cli.main(["train", "--optimizer", "momentum", "--epochs", "300", "--quiet"]) == 0
    got = float(summary(capsys.readouterr().out)["final cost"])
    assert got == pytest.approx(course_final_cost(X, Y, params), abs=1e-6)


def test_full_batch_comparison_takes_one_step_per_epoch(moons):
    """run_comparison(mini_batch_size=None) is batch gradient descent: all m = 300 examples
    in one batch, so one step per epoch (t = epochs) and the course's model() with
    mini_batch_size=300."""
    rows = experiment.run_comparison(
        ["gd", "adam"], num_epochs=30, mini_batch_size=None, learning_rate=0.05
    )
    for row in rows:
        assert row.result.state.t == 30
        params, costs = course_model(
            row.optimizer, num_epochs=30, mini_batch_size=300, learning_rate=0.05
        )
        for k in params:
            assert (row.result.parameters[k] == params[k]).all(), k


def test_compare_full_batch_on_the_command_line(capsys, moons):
    X, Y = moons
    assert (
        cli.main(
            [
                "compare",
                "--epochs",
                "30",
                "--no-plots",
                "--optimizers",
                "gd",
                "--batch-size",
                "full",
                "--learning-rate",
                "0.05",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    params, _ = course_model("gd", num_epochs=30, mini_batch_size=300, learning_rate=0.05)
    assert "full batch" in out
    assert float(table(out)[0][1]) == pytest.approx(course_final_cost(X, Y, params), abs=1e-6)


@pytest.mark.parametrize(
    "command", [["train", "--quiet"], ["compare", "--no-plots", "--optimizers", "gd", "adam"]]
)
def test_divergence_is_reported_and_exits_1(capsys, monkeypatch, command):
    """A final cost that is not finite used to print 'final cost : nan' and exit 0: now the
    summary (or table) is printed, then a clear message on stderr, exit status 1."""
    monkeypatch.setattr(experiment, "final_cost", lambda X, Y, p: float("nan"))
    assert cli.main([*command, "--epochs", "5"]) == 1
    captured = capsys.readouterr()
    assert "nan" in captured.out
    assert "diverged" in captured.err and "learning rate" in captured.err


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--seed", str(2**32 - 3), "--epochs", "5"], "seed"),
        (["train", "--seed", "-5", "--epochs", "5"], "seed"),
        (["compare", "--seed", str(2**32), "--epochs", "5", "--no-plots"], "seed"),
    ],
)
def test_seed_outside_numpys_range_is_a_usage_error(capsys, args, message):
    """A seed whose epochs leave NumPy's range failed with a traceback at epoch 1-2: now
    exit 2 with argparse's message, before any epoch (nothing on stdout)."""
    with pytest.raises(SystemExit) as exc:
        cli.main(args)
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err and "2**32" in captured.err


@pytest.mark.parametrize("where", ["a-directory", "parent-is-a-file"])
def test_unusable_checkpoint_path_exits_2_before_training(capsys, tmp_path, where):
    if where == "a-directory":
        path = tmp_path / "adir"
        path.mkdir()
    else:
        (tmp_path / "afile").write_text("x")
        path = tmp_path / "afile" / "run.npz"
    status = cli.main(["train", "--epochs", "5", "--checkpoint", str(path)])
    captured = capsys.readouterr()
    assert status == 2 and captured.out == ""
    assert "checkpoint" in captured.err
    assert sorted(os.listdir(tmp_path)) == ["adir" if where == "a-directory" else "afile"]
    if where == "a-directory":
        assert os.listdir(path) == []


@pytest.mark.parametrize(
    "command, option",
    [(["train", "--epochs", "5"], "--plot-dir"), (["compare", "--epochs", "5"], "--out")],
)
def test_unusable_figure_folder_exits_2_before_training(capsys, tmp_path, command, option):
    """An unwritable figure folder failed after training, losing the summary: now it is
    checked first (exit 2, nothing trained, nothing printed on stdout)."""
    (tmp_path / "afile").write_text("x")
    status = cli.main([*command, option, str(tmp_path / "afile" / "figs")])
    captured = capsys.readouterr()
    assert status == 2 and captured.out == ""
    assert "figures" in captured.err and "afile" in captured.err
    assert sorted(os.listdir(tmp_path)) == ["afile"]


def test_figures_failing_after_training_keep_the_summary(capsys, monkeypatch, tmp_path):
    """If writing the figures fails after training anyway (disk full, ...), the summary is
    printed all the same, then the error, exit status 1 (it used to be a traceback)."""
    from xpopt import plots

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(plots, "plot_costs", full_disk)
    status = cli.main(["train", "--epochs", "5", "--quiet", "--plot-dir", str(tmp_path)])
    captured = capsys.readouterr()
    assert status == 1
    assert "final cost" in summary(captured.out) and "figures" not in summary(captured.out)
    assert "cannot write the figures" in captured.err and "No space left" in captured.err
