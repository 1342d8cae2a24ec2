"""The command line's rough edges (issue 14), each checked against a fact found elsewhere:
the installed metadata and pyproject.toml, NumPy itself, the course's reference code, the
terminal's bytes.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import sys
import warnings
from functools import partial
from pathlib import Path

import numpy
import pytest

import xpopt
from conftest import gpu_unavailable_reason
from test_cli import course_final_cost, course_model, run_cli, table
from xpopt import cli, experiment, settings

ROOT = Path(__file__).resolve().parents[1]


def fields(text: str) -> list[tuple[str, str]]:
    """``key : value`` lines, in order (keys may repeat: that is what is tested)."""
    return re.findall(r"^(\w[\w ]*?)\s+: (.*)$", text, flags=re.M)


def pyproject_version() -> str:
    tomllib = pytest.importorskip("tomllib")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def read_pty(master: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the other end is closed and drained
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return b"".join(chunks).decode()


def run_on_a_terminal(*args, env_extra=None):
    """``python -m xpopt ARGS`` with stderr on a pseudo-terminal: (process, stderr text)."""
    import pty

    master, slave = pty.openpty()
    try:
        done = run_cli(*args, stderr=slave, env_extra=env_extra)
    finally:
        os.close(slave)
    return done, read_pty(master)


# ------------------------------------------------------------------------ --version
def test_version_is_the_installed_distributions():
    done = run_cli("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"xpopt {importlib.metadata.version('xpopt')}\n"
    assert done.stdout == f"xpopt {pyproject_version()}\n"


# ----------------------------------------------------------------------------- info
def test_info_prints_each_field_once_with_the_versions():
    done = run_cli("info")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    pairs = fields(done.stdout)
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), keys  # "backend" was printed twice
    assert len(pairs) == len(done.stdout.splitlines())  # nothing but fields
    info = dict(pairs)
    assert {"xpopt", "python", "numpy", "cupy", "backend", "device", "host kernels"} <= set(info)
    assert info["xpopt"] == pyproject_version()
    assert info["numpy"] == numpy.__version__
    assert info["python"] == ".".join(map(str, sys.version_info[:3]))
    assert info["backend"] == "cpu"
    assert info["device"].endswith(f", {os.cpu_count()} cores")


def _installed_cupy_versions() -> list[str]:
    return [
        d.version
        for d in importlib.metadata.distributions()
        if re.fullmatch(
            r"cupy(-cuda\d+x?|-rocm-\d+-\d+)?",
            re.sub(r"[-_.]+", "-", d.metadata["Name"] or "").lower(),
        )
    ]


def test_info_names_cupys_version_and_why_it_is_unusable():
    done = run_cli("info")
    cupy_line = dict(fields(done.stdout))["cupy"]
    versions = _installed_cupy_versions()
    why = gpu_unavailable_reason()
    if not versions:
        assert cupy_line.startswith("not installed")
    else:
        assert versions[0] in cupy_line
        if why is None:
            assert cupy_line.endswith("(usable)")
        else:
            assert "unusable" in cupy_line and why in cupy_line
    assert "Traceback" not in done.stderr


def test_info_without_cupy_says_not_installed():
    # No CuPy importable and no CuPy distribution: what a CPU-only install looks like.
    prelude = (
        "import sys\nsys.modules['cupy'] = None\n"
        "import xpopt._cupy_builds as builds\n"
        "builds.installed_cupy_builds = lambda path=None: []"
    )
    done = run_cli("info", prelude=prelude)
    assert done.returncode == 0, done.stderr
    assert dict(fields(done.stdout))["cupy"] == (
        "not installed (for the GPU: pip install 'xpopt[cuda]')"
    )


def test_info_says_whether_the_compiled_cpu_kernels_are_used():
    built = importlib.util.find_spec("xpopt._hostkernels") is not None
    info = dict(fields(run_cli("info").stdout))
    assert info["host kernels"] == ("compiled, in use" if built else info["host kernels"])
    if not built:
        assert info["host kernels"].startswith("not used: ")
    off = dict(fields(run_cli("info", env_extra={"XPOPT_HOST_KERNELS": "0"}).stdout))
    assert off["host kernels"].startswith("not used: ")
    assert "XPOPT_HOST_KERNELS" in off["host kernels"]


def test_info_fields_are_a_list_to_extend(capsys, monkeypatch):
    from xpopt.cli import output

    monkeypatch.setattr(output, "INFO_FIELDS", [*output.INFO_FIELDS, ("extra", lambda i: "yes")])
    assert cli.main(["info"]) == 0
    assert ("extra", "yes") in fields(capsys.readouterr().out)


# ----------------------------------------------------------- environment variables
BAD_ENVIRONMENT = [
    ("XPOPT_BACKEND", "gpu", "use cpu, cuda or auto"),
    ("XPOPT_STRICT", "maybe", "use 1, true, yes, on, 0, false, no, off"),
    ("XPOPT_NUM_THREADS", "0", "use a positive integer"),
    ("XPOPT_NUM_THREADS", "two", "use a positive integer"),
    ("XPOPT_HOST_KERNELS", "no", "use 1 (use the compiled CPU kernels) or 0"),
]


@pytest.mark.parametrize("name, value, allowed", BAD_ENVIRONMENT)
@pytest.mark.parametrize(
    "command",
    [
        ["info"],
        ["train", "--epochs", "100000000"],
        ["compare", "--epochs", "100000000", "--no-plots"],
    ],
)
def test_a_bad_environment_value_exits_2_on_one_line(
    capsys, monkeypatch, name, value, allowed, command
):
    monkeypatch.setattr(experiment, "train_timed", None)  # training would be a TypeError
    monkeypatch.setenv(name, value)
    assert cli.main(command) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"xpopt: {name}={value!r} is not understood: {allowed} (or unset it)\n"


def test_xpopt_backend_gpu_info_has_no_traceback():
    done = run_cli("info", env_extra={"XPOPT_BACKEND": "gpu"})
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "XPOPT_BACKEND" in done.stderr and "cpu, cuda or auto" in done.stderr


@pytest.mark.parametrize(
    "name, value",
    [
        ("XPOPT_BACKEND", " CPU "),
        ("XPOPT_STRICT", "0"),
        ("XPOPT_STRICT", "Yes"),
        ("XPOPT_NUM_THREADS", "2"),
        ("XPOPT_HOST_KERNELS", "1"),
        ("XPOPT_BACKEND", ""),
    ],
)
def test_good_environment_values_pass(name, value):
    settings.check_environment({name: value})


def test_a_reader_that_leaves_early_gets_no_traceback():
    """``xpopt info | head -1``: stdout's reader is gone before xpopt writes."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("XPOPT_")}
    with subprocess.Popen(
        [sys.executable, "-m", "xpopt", "info"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as process:
        process.stdout.close()  # before the interpreter has even started
        err = process.stderr.read().decode()
        status = process.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert status in (0, 141)  # 0 only if the pipe took the output before the close


# ------------------------------------------------------------------- output paths
def test_compare_out_an_existing_file_exits_2_before_training(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(experiment, "run_comparison", None)  # training would be a TypeError
    target = tmp_path / "results.txt"
    target.write_text("keep me")
    assert cli.main(["compare", "--epochs", "5", "--out", str(target)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "--out" in captured.err and "a file" in captured.err
    assert target.read_text() == "keep me"


@pytest.mark.parametrize("command, option", [(["train"], "--plot-dir"), (["compare"], "--out")])
def test_a_figure_name_taken_by_a_folder_exits_2_before_training(
    capsys, monkeypatch, tmp_path, command, option
):
    monkeypatch.setattr(experiment, "train_timed", None)
    monkeypatch.setattr(experiment, "run_comparison", None)
    (tmp_path / "costs.png").mkdir()
    assert cli.main([*command, "--epochs", "5", option, str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "costs.png" in captured.err


# ------------------------------------------------------------------ fallback warning
def _without_gpu():
    if gpu_unavailable_reason() is None:
        pytest.skip("a GPU is usable here: nothing falls back")
    return gpu_unavailable_reason()


@pytest.mark.parametrize("how", ["option", "environment"])
def test_the_fallback_warning_names_the_fix_for_how_the_gpu_was_asked_for(how):
    why = _without_gpu()
    if how == "option":
        done = run_cli("train", "--epochs", "1", "--quiet", "--backend", "cuda")
    else:
        done = run_cli("train", "--epochs", "1", "--quiet", env_extra={"XPOPT_BACKEND": "cuda"})
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("xpopt: warning: ")
    line = lines[0]
    assert why in line and "pip install 'xpopt[cuda]'" in line
    assert len(line.replace(why, "")) < 160  # the old one was about 480 characters
    if how == "option":
        assert "--backend cpu" in line and "XPOPT_BACKEND" not in line
    else:
        assert "XPOPT_BACKEND=cpu" in line and "--backend" not in line


def test_the_librarys_fallback_warning_is_short_and_names_the_fixes():
    why = _without_gpu()
    code = (
        "import warnings, xpopt\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    xpopt.set_backend('cuda')\n"
        "print(str(w[0].message))"
    )
    done = run_cli(prelude=code + "\nraise SystemExit(0)")
    message = done.stdout.strip()
    assert why in message
    for part in ("pip install 'xpopt[cuda]'", "XPOPT_BACKEND=cpu", "set_backend('cpu')", "CPU"):
        assert part in message
    assert len(message.replace(why, "")) < 230


# --------------------------------------------------------------------- progress bar
@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX only")
def test_the_bar_shows_the_courses_cost_at_its_last_recorded_epoch():
    """101 epochs: the bar's last draw is epoch 100's cost, the course's second record."""
    done, bar = run_on_a_terminal(
        "compare", "--epochs", "101", "--optimizers", "adam", "--no-plots"
    )
    assert done.returncode == 0
    _, costs = course_model("adam", num_epochs=101)
    assert re.search(
        r"adam +: 100%\|\S+\| 101/101 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+epoch/s, "
        + re.escape(f"cost {costs[1]:.6f}]"),
        bar,
    ), bar


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX only")
@pytest.mark.parametrize("command", [["compare", "--optimizers", "gd", "--no-plots"], ["train"]])
def test_no_progress_turns_the_bar_off_on_a_terminal(command):
    done, on = run_on_a_terminal(*command, "--epochs", "150")
    assert done.returncode == 0 and "150/150" in on  # not vacuous: there is a bar by default
    done, off = run_on_a_terminal(*command, "--epochs", "150", "--no-progress")
    assert done.returncode == 0 and off.strip() == ""


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX only")
def test_train_on_a_terminal_keeps_the_courses_lines_on_stdout():
    done, bar = run_on_a_terminal("train", "--optimizer", "gd", "--epochs", "1001")
    _, costs = course_model("gd", num_epochs=1001)
    assert [l for l in done.stdout.splitlines() if l.startswith("Cost after")] == [
        f"Cost after epoch 0: {costs[0]:f}",
        f"Cost after epoch 1000: {costs[10]:f}",
    ]
    assert re.search(r"gd: 100%\|\S+\| 1001/1001", bar), bar


def test_the_bar_is_drawn_only_at_recorded_epochs(monkeypatch):
    """Each draw reads the cost from the device: only where train records it (and the
    last epoch), never per step."""
    from xpopt import run

    draws, made = [], []

    class Recorder:
        def __init__(self, total, label="", stream=None, initial=0):
            made.append(total)

        def show(self, done, cost):
            draws.append(done)

        def clear(self):
            pass

        def close(self):
            pass

    monkeypatch.setattr(run, "_Progress", Recorder)
    X, Y = xpopt.load_moons()
    xpopt.train(X, Y, [2, 5, 2, 1], xpopt.make_optimizer("gd"), num_epochs=250, progress=True)
    assert made == [250] and draws == [1, 101, 201, 250]
    xpopt.train(X, Y, [2, 5, 2, 1], xpopt.make_optimizer("gd"), num_epochs=250, progress=False)
    assert made == [250]


def test_the_bar_is_on_by_default_on_a_terminal_only(monkeypatch):
    from xpopt import run

    made = []

    class Recorder:
        def __init__(self, total, label="", stream=None, initial=0):
            made.append(total)

        def show(self, done, cost):
            pass

        def close(self):
            pass

    class Terminal:
        def __init__(self, tty):
            self.tty = tty

        def isatty(self):
            return self.tty

        def write(self, text):
            pass

        def flush(self):
            pass

    monkeypatch.setattr(run, "_Progress", Recorder)
    X, Y = xpopt.load_moons()
    for tty, epochs in ((False, 3), (True, 4)):
        monkeypatch.setattr(sys, "stderr", Terminal(tty))
        xpopt.train(X, Y, [2, 5, 2, 1], xpopt.make_optimizer("gd"), num_epochs=epochs)
    assert made == [4]


def test_a_resumed_runs_bar_counts_from_the_checkpoint(monkeypatch, tmp_path):
    from xpopt import run

    calls = []

    class Recorder:
        def __init__(self, total, label="", stream=None, initial=0):
            calls.append(("total", total))

        def resume_at(self, done):
            calls.append(("resume_at", done))

        def show(self, done, cost):
            calls.append(("show", done))

        def clear(self):
            pass

        def close(self):
            pass

    X, Y = xpopt.load_moons()
    path = tmp_path / "run.npz"
    xpopt.train(X, Y, [2, 5, 2, 1], xpopt.make_optimizer("gd"), num_epochs=200, checkpoint=path)
    monkeypatch.setattr(run, "_Progress", Recorder)
    xpopt.train(
        X,
        Y,
        [2, 5, 2, 1],
        xpopt.make_optimizer("gd"),
        num_epochs=300,
        checkpoint=path,
        resume=True,
        progress=True,
    )
    assert calls == [("total", 300), ("resume_at", 200), ("show", 201), ("show", 300)]


def test_the_bar_is_tqdm_with_eta_rate_and_cost(tmp_path):
    pytest.importorskip("tqdm")
    with open(tmp_path / "bar.txt", "w") as stream:
        bar = settings._Progress(300, "adam     ", stream=stream)
        bar.show(1, 0.7)
        bar.show(300, 0.123456)
        bar.close()
    text = (tmp_path / "bar.txt").read_text()
    assert re.search(
        r"adam +: 100%\|\S*\| 300/300 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+epoch/s, "
        r"cost 0\.123456\]",
        text,
    ), text


# ------------------------------------------------------------- too few epochs to plot
def test_a_short_run_writes_a_cost_figure_that_says_so(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    assert cli.main(["train", "--epochs", "50", "--quiet", "--plot-dir", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert (tmp_path / "costs.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "too few recorded epochs" in captured.err and "100 epochs" in captured.err


# ------------------------------------------------------------------- decay comparison
NOTEBOOK_DECAY = {"gd": 0.1, "momentum": 0.1, "adam": 0.01}  # the notebook's section 7.2


def test_compare_decay_runs_the_notebooks_decay_section(capsys):
    import course_reference as course

    X, Y = xpopt.load_moons()
    assert (
        cli.main(
            [
                "compare",
                "--epochs",
                "300",
                "--no-plots",
                "--decay",
                "schedule_lr_decay",
                "--time-interval",
                "100",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    rows = table(out)
    assert [r[0] for r in rows] == list(NOTEBOOK_DECAY)  # no RMSprop: not in the notebook
    assert "learning rates 0.1 (gd, momentum), 0.01 (adam)" in out
    for name, cost, *_ in rows:
        params, _ = course_model(
            name,
            num_epochs=300,
            learning_rate=NOTEBOOK_DECAY[name],
            decay=partial(course.schedule_lr_decay, time_interval=100),
        )
        assert float(cost) == pytest.approx(course_final_cost(X, Y, params), abs=1e-6), name


def test_compare_decay_writes_its_own_folder(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    assert (
        cli.main(["compare", "--epochs", "200", "--optimizers", "gd", "--out", str(tmp_path)]) == 0
    )
    before = {p: p.read_bytes() for p in tmp_path.iterdir()}
    assert (
        cli.main(
            [
                "compare",
                "--epochs",
                "200",
                "--optimizers",
                "gd",
                "--decay",
                "update_lr",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert f"figures: {tmp_path / 'update_lr' / 'costs.png'}" in capsys.readouterr().out
    assert {p: p.read_bytes() for p in before} == before  # the no-decay figures are kept
    assert sorted(os.listdir(tmp_path / "update_lr")) == ["costs.png", "decision_boundaries.png"]


def test_a_run_that_learns_nothing_is_named(capsys):
    """RMSprop at the notebook's decay rate 0.1 stays at cost ln 2 (output 0.5 everywhere):
    said on stderr, not silently tabled."""
    assert (
        cli.main(
            [
                "compare",
                "--epochs",
                "300",
                "--no-plots",
                "--optimizers",
                "rmsprop",
                "--decay",
                "schedule_lr_decay",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    cost = float(table(captured.out)[0][1])
    assert abs(cost - numpy.log(2)) < 1e-3
    assert "rmsprop" in captured.err and "did not learn" in captured.err


def test_run_comparison_takes_a_rate_per_optimizer():
    rows = experiment.run_comparison(
        ["gd", "adam"], num_epochs=20, learning_rate={"gd": 0.1, "adam": 0.01}
    )
    assert [r.result.learning_rate for r in rows] == [0.1, 0.01]
    with pytest.raises(ValueError, match="no rate for"):
        experiment.run_comparison(["gd", "adam"], num_epochs=20, learning_rate={"gd": 0.1})


def test_warnings_filter_left_as_it_was():
    """main() installs its one-line warning printer only for its own call."""
    before = warnings.showwarning
    cli.main(["info"])
    assert warnings.showwarning is before
