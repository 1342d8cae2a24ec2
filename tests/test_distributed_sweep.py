"""A sweep split over the ranks of an MPI job, ``xpopt train --distributed`` and ``xpopt info``.

Every MPI run is a real job (``mpiexec -n N python -m mpi4py -m xpopt ...``) with a timeout;
without mpi4py or mpiexec these tests skip, visibly (under ``CI=true`` they fail instead:
see ``require_mpi`` in tests/test_distributed.py).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import xpopt
from test_distributed import TIMEOUT, require_mpi, single_process
from xpopt import cli
from xpopt.distributed import describe
from xpopt.distributed.sweep import rank_checkpoint

SRC = str(Path(xpopt.__file__).resolve().parents[1])
GRID = [
    "--optimizer",
    "adam,momentum",
    "--learning-rate",
    "1e-3,1e-2",
    "--seeds",
    "0-2",
    "--epochs",
    "40",
    "--record-every",
    "10",
    "--sort",
    "accuracy",
]


def run(command: list[str], n: int | None, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m xpopt COMMAND`` alone (n None) or as ``n`` ranks of an MPI job."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XPOPT_", "PMI_"))}
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    python = [sys.executable, "-m", "xpopt", *command]
    if n is not None:
        python = [require_mpi(), "-n", str(n), sys.executable, "-m", "mpi4py", *python[1:]]
    return subprocess.run(python, capture_output=True, text=True, timeout=TIMEOUT, env=env, cwd=cwd)


def table(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("model "))
    end = lines.index("", start)
    return lines[start:end]


# ------------------------------------------------------------------ sweep over ranks
@pytest.mark.parametrize("n", [1, 2])
def test_a_sweep_split_over_ranks_is_the_plain_sweep(tmp_path, n):
    pytest.importorskip("matplotlib", reason="figures need matplotlib (the plot extra)")
    require_mpi()
    plain = run(["sweep", *GRID, "--out", str(tmp_path / "plain")], None, tmp_path)
    assert plain.returncode == 0, plain.stderr
    job = run(["sweep", *GRID, "--out", str(tmp_path / "job")], n, tmp_path)
    assert job.returncode == 0, job.stderr
    assert table(job.stdout) == table(plain.stdout)  # every model's row, the same bits
    assert len(table(job.stdout)) == 1 + 1 + 12
    assert job.stdout.count("model  optimizer") == 1  # rank 0 alone prints
    assert job.stdout.count("figures: ") == 1
    header = job.stdout.splitlines()[0]
    assert ("split over 2 ranks" in header) == (n == 2)
    assert sorted(p.name for p in (tmp_path / "job").iterdir()) == ["costs.png", "heatmap.png"]


def test_a_split_sweep_checkpoints_per_rank_and_resumes(tmp_path):
    require_mpi()
    path = tmp_path / "sweep.npz"
    args = ["sweep", *GRID, "--no-plots", "--checkpoint", str(path), "--checkpoint-every", "15"]
    first = run(args, 2, tmp_path)
    assert first.returncode == 0, first.stderr
    files = sorted(p.name for p in tmp_path.glob("sweep*.npz"))
    assert files == [rank_checkpoint(path, r, 2).name for r in (0, 1)]
    resumed = run([*args, "--resume"], 2, tmp_path)  # every block done: nothing to train
    assert resumed.returncode == 0, resumed.stderr
    assert table(resumed.stdout) == table(first.stdout)
    other = run(
        [
            "sweep",
            "--learning-rate",
            "1e-3,1e-2",
            "--epochs",
            "40",
            "--no-plots",
            "--checkpoint",
            str(path),
            "--resume",
        ],
        2,
        tmp_path,
    )
    assert other.returncode == 1
    assert "checkpoint of another sweep" in other.stderr and "final cost" not in other.stdout


# ------------------------------------------------------------ xpopt train --distributed
def test_train_distributed_prints_the_course_lines_once(tmp_path):
    proc = run(["train", "--distributed", "--epochs", "300", "--print-every", "100"], 2, tmp_path)
    assert proc.returncode == 0, proc.stderr
    _, printed = single_process("course")
    lines = proc.stdout.splitlines()
    assert lines[:3] == printed.splitlines()  # the course's lines, printed by rank 0 alone
    assert sum(line.startswith("ranks ") for line in lines) == 1
    assert "2 (mpi;" in proc.stdout and "train accuracy : 0.8900" in proc.stdout


def test_train_distributed_writes_trains_figures(tmp_path):
    pytest.importorskip("matplotlib", reason="figures need matplotlib (the plot extra)")
    from xpopt.cli.output import BOUNDARY_FIGURE, COST_FIGURE  # noqa: PLC0415

    proc = run(
        ["train", "--distributed", "--epochs", "50", "--quiet", "--plot-dir", "figs"], 2, tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == sorted(
        [COST_FIGURE, BOUNDARY_FIGURE]
    )  # the names xpopt train --plot-dir writes
    assert proc.stdout.count("figures ") == 1


def test_train_distributed_at_one_rank_is_train(tmp_path):
    one = run(
        [
            "train",
            "--distributed",
            "--epochs",
            "200",
            "--print-every",
            "50",
            "--optimizer",
            "momentum",
            "--learning-rate",
            "0.01",
        ],
        1,
        tmp_path,
    )
    alone = run(
        [
            "train",
            "--epochs",
            "200",
            "--print-every",
            "50",
            "--optimizer",
            "momentum",
            "--learning-rate",
            "0.01",
        ],
        None,
        tmp_path,
    )
    assert one.returncode == alone.returncode == 0, one.stderr + alone.stderr

    def course(text):
        return [l for l in text.splitlines() if l.startswith("Cost after")]

    def cost(text):
        return re.search(r"final cost\s+: (\S+)", text)[1]

    assert course(one.stdout) == course(alone.stdout) and len(course(one.stdout)) == 4
    assert cost(one.stdout) == cost(alone.stdout)


def test_info_names_the_distributed_engines():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["info"]) == 0
    line = next(l for l in out.getvalue().splitlines() if l.startswith("distributed"))
    info = describe()
    assert f"mpi4py {info['mpi4py']}" in line and info["mpiexec"] in line
    assert "NumPy -> mpi, CuPy -> nccl" in line
    assert "mpi4py.MPI" not in sys.modules  # describing initialised nothing


def test_rank_checkpoint_names():
    assert rank_checkpoint("a/run.npz", 0, 1) == Path("a/run.npz")
    assert rank_checkpoint("a/run.npz", 1, 4) == Path("a/run.rank1-of-4.npz")
    assert rank_checkpoint(None, 0, 2) is None
