"""xpopt.distributed: data-parallel training under ``mpiexec``, against the single-process train.

Every MPI run is a real job: ``mpiexec -n N python -m mpi4py tests/test_distributed.py SPEC``
(this file is also the workers' script, see ``worker`` at the bottom), with a timeout. The
jobs of the exactness tests run once per module and are compared with :func:`xpopt.train`
in this process:

- n = 1: bit for bit (parameters, moments, step count, recorded costs, printed lines);
- n = 2, 4: to ``tolerance`` (see there) and to the same training accuracy.

Without mpi4py or mpiexec these tests skip, visibly; under ``CI=true`` they fail instead.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import xpopt
from xpopt import checkpoint as ckpt
from xpopt.distributed import ShardPlan, batch_widths, shard_bounds
from xpopt.distributed.gradient import shard_backward

IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
HERE = Path(__file__).resolve()
TIMEOUT = 60  # seconds for any one mpiexec job (they take 1-3 s here)


# n = 2, 4 against one process: the same operations except the ORDER of the additions that
# form each step's gradient (MPI adds the ranks' partial sums, (r0 + r1) + (r2 + r3) at
# n = 4, where one process's BLAS adds the columns in its own blocked order). Each step's
# gradient therefore differs by a few ulps of its magnitude; the training map carries such
# a difference along without amplifying it here (no ReLU flips, no divergence), so after S
# steps it is at most about S * eps relative. The tolerance leaves a factor of 5 above that:
# 5 * 1500 steps * 2.2e-16 = 1.7e-12 for the course's 300 epochs in float64 (measured:
# <= 4e-16), 5 * 1500 * 1.2e-7 = 9e-4 in float32 (measured: <= 2e-6).
def tolerance(steps: int, dtype=np.float64) -> float:
    """The relative difference allowed between n ranks and one process after ``steps``."""
    return 5 * steps * float(np.finfo(dtype).eps)


# ------------------------------------------------------------------------- gates
def require_mpi() -> str:
    """The mpiexec to launch with (the venv's first); skip without mpi4py or mpiexec,
    except under CI=true, where that is a failure."""
    why = None
    try:
        import mpi4py  # noqa: F401, PLC0415  (not mpi4py.MPI: this process stays MPI-free)
    except ImportError as exc:
        why = f"mpi4py is not installed ({exc}); pip install mpi4py mpich"
    path = shutil.which(
        "mpiexec",
        path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    )
    if why is None and path is None:
        why = "no mpiexec on PATH (pip install mpich, or a system MPI)"
    if why is not None:
        if IN_CI:
            pytest.fail(f"distributed tests need MPI under CI=true: {why}")
        pytest.skip(why)
    return path


def mpirun(n: int, spec: dict, tmp: Path, *, timeout: float = TIMEOUT, check: bool = True):
    """Run this file as the workers of an ``n``-rank job on ``spec``; the completed process."""
    mpiexec = require_mpi()
    spec_path = tmp / f"spec-{spec['mode']}-{n}-{time.monotonic_ns()}.json"
    spec_path.write_text(json.dumps(spec))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if n > (os.cpu_count() or 1):  # more ranks than cores: MPICH's busy wait would starve
        env.setdefault("MPIR_CVAR_ENABLE_HEAVY_YIELD", "1")  # the rank it waits for
    proc = subprocess.run(
        [mpiexec, "-n", str(n), sys.executable, "-m", "mpi4py", str(HERE), str(spec_path)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"mpiexec -n {n} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


# ------------------------------------------------------------------------- cases
# The course experiment (adam, mini-batches of 64: a short last batch of 44), a wider
# network with a batch size that splits unevenly at every n (37 = 18 + 19 = 9+9+9+10, last
# batch 4) and a decaying rate, and stochastic gradient descent (batches of one: empty
# shards on every rank but one).
CASES = {
    "course": dict(
        layers=[2, 5, 2, 1],
        optimizer="adam",
        learning_rate=0.0007,
        mini_batch_size=64,
        num_epochs=300,
        print_every=100,
    ),
    "wide": dict(
        layers=[2, 64, 64, 1],
        optimizer="rmsprop",
        learning_rate=0.001,
        mini_batch_size=37,
        num_epochs=150,
        decay="update_lr",
        decay_rate=0.01,
        print_every=50,
    ),
    "sgd": dict(
        layers=[2, 5, 2, 1],
        optimizer="gd",
        learning_rate=0.01,
        mini_batch_size=1,
        num_epochs=2,
        print_every=1,
        record_every=1,
    ),
    "float32": dict(
        layers=[2, 16, 8, 1],
        optimizer="adam",
        learning_rate=0.001,
        mini_batch_size=64,
        num_epochs=300,
        print_every=100,
        dtype="float32",
    ),
}
DECAYS = {None: None, "update_lr": xpopt.update_lr, "schedule_lr_decay": xpopt.schedule_lr_decay}


def train_kwargs(case: dict) -> dict:
    return dict(
        mini_batch_size=case["mini_batch_size"],
        num_epochs=case["num_epochs"],
        decay=DECAYS[case.get("decay")],
        decay_rate=case.get("decay_rate", 1),
        print_cost=True,
        print_every=case["print_every"],
        record_every=case.get("record_every", 10),
    )


def make_opt(case: dict):
    return xpopt.make_optimizer(case["optimizer"], case["learning_rate"])


@functools.cache
def single_process(name: str):
    """xpopt.train on the case, here: (result, printed lines)."""
    case = CASES[name]
    X, Y = xpopt.load_moons(dtype=case.get("dtype", "float64"))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = xpopt.train(X, Y, case["layers"], make_opt(case), **train_kwargs(case))
    return result, out.getvalue()


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    """Every case at n = 1, 2, 4: one mpiexec job per n. ``{n: {case: npz}}``."""
    require_mpi()
    tmp = tmp_path_factory.mktemp("distributed")
    out = {}
    for n in (1, 2, 4):
        folder = tmp / f"n{n}"
        folder.mkdir()
        mpirun(n, {"mode": "cases", "cases": CASES, "out": str(folder)}, tmp)
        out[n] = {name: dict(np.load(folder / f"{name}.npz")) for name in CASES}
    return out


def _rel(a, b) -> float:
    """max |a - b| relative to max |b|."""
    scale = float(np.max(np.abs(b), initial=0))
    diff = float(np.max(np.abs(a - b), initial=0))
    return diff / scale if scale else diff


def _state(result, slot):
    value = getattr(result.state, slot)
    return None if value is None else value.flat


# ------------------------------------------------------------------ exactness
@pytest.mark.parametrize("name", list(CASES))
def test_one_rank_is_train_bit_for_bit(jobs, name):
    """mpiexec -n 1 gives xpopt.train's run exactly: parameters, moments, t, recorded costs,
    learning rates and the printed lines."""
    got = jobs[1][name]
    ref, printed = single_process(name)
    assert np.array_equal(got["parameters"], ref.parameters.flat)
    for slot in ("v", "s"):
        if _state(ref, slot) is not None:
            assert np.array_equal(got[slot], _state(ref, slot)), slot
    assert int(got["t"]) == ref.state.t
    assert got["costs"].tolist() == ref.costs
    assert got["learning_rates"].tolist() == ref.learning_rates
    assert str(got["printed"]) == printed


@pytest.mark.parametrize("n", [2, 4])
@pytest.mark.parametrize("name", list(CASES))
def test_more_ranks_match_train_to_rounding(jobs, name, n):
    """n = 2 and 4: parameters, moments and recorded costs within ``tolerance`` of one
    process (the order of the gradient's additions differs, see there); the same step
    count, learning rates and training accuracy."""
    got = jobs[n][name]
    ref, _ = single_process(name)
    tol = tolerance(ref.state.t, ref.parameters.dtype)
    assert got["parameters"].dtype == ref.parameters.dtype
    assert _rel(got["parameters"], ref.parameters.flat) <= tol
    for slot in ("v", "s"):
        if _state(ref, slot) is not None:
            assert _rel(got[slot], _state(ref, slot)) <= tol, slot
    np.testing.assert_allclose(got["costs"], ref.costs, rtol=tol, atol=0)
    assert int(got["t"]) == ref.state.t
    assert got["learning_rates"].tolist() == ref.learning_rates
    X, Y = xpopt.load_moons(dtype=ref.parameters.dtype)
    params = xpopt.FlatDict(got["parameters"], ref.parameters.layout)
    assert xpopt.accuracy(X, Y, params) == xpopt.accuracy(X, Y, ref.parameters)
    assert got["costs"][-1] < got["costs"][0]  # honest: the run trained


def test_cli_under_mpiexec_prints_the_course_lines(tmp_path):
    """python -m xpopt.distributed at n = 2: rank 0 alone prints the course's lines (the
    values of xpopt.train to 6 decimals) and the summary, and saves the checkpoint."""
    mpiexec = require_mpi()
    path = tmp_path / "run.npz"
    proc = subprocess.run(
        [
            mpiexec,
            "-n",
            "2",
            sys.executable,
            "-m",
            "mpi4py",
            "-m",
            "xpopt.distributed",
            "--epochs",
            "300",
            "--print-every",
            "100",
            "--checkpoint",
            str(path),
            "--checkpoint-every",
            "100",
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    ref, printed = single_process("course")
    lines = proc.stdout.splitlines()
    assert lines[:3] == printed.splitlines()  # three "Cost after epoch" lines, once
    assert sum(line.startswith("ranks ") for line in lines) == 1
    assert "2 (mpi;" in proc.stdout and "train accuracy : 0.8900" in proc.stdout
    saved = ckpt.load(path)
    assert saved.epoch == 300 and _rel(saved.parameters, ref.parameters.flat) <= tolerance(1500)


# ------------------------------------------------------------------------ resume
def test_resume_across_a_change_of_ranks(tmp_path):
    """150 epochs at n = 2, then the rest at n = 4 from its checkpoint; the same checkpoint
    resumed by the single-process xpopt.train: both end within tolerance of an uninterrupted
    run."""
    case = dict(CASES["course"])
    path = tmp_path / "c.npz"
    mpirun(
        2,
        {
            "mode": "cases",
            "cases": {"a": case},
            "out": str(tmp_path),
            "checkpoint": str(path),
            "stop_after": 150,
        },
        tmp_path,
    )
    assert ckpt.load(path).epoch == 150
    shutil.copy(path, tmp_path / "copy.npz")
    mpirun(
        4,
        {
            "mode": "cases",
            "cases": {"b": case},
            "out": str(tmp_path),
            "checkpoint": str(path),
            "resume": True,
        },
        tmp_path,
    )
    four = np.load(tmp_path / "b.npz")
    ref, _ = single_process("course")
    tol = tolerance(ref.state.t)
    assert _rel(four["parameters"], ref.parameters.flat) <= tol
    np.testing.assert_allclose(four["costs"], ref.costs, rtol=tol, atol=0)
    assert ckpt.load(path).epoch == 300 and int(four["t"]) == ref.state.t
    # the same file, resumed in one process by xpopt.train itself
    X, Y = xpopt.load_moons()
    kw = train_kwargs(case) | {"print_cost": False}
    here = xpopt.train(
        X, Y, case["layers"], make_opt(case), checkpoint=tmp_path / "copy.npz", resume=True, **kw
    )
    assert _rel(here.parameters.flat, ref.parameters.flat) <= tol
    assert here.state.t == ref.state.t


def test_a_refused_resume_is_refused_on_every_rank(tmp_path):
    """A checkpoint of another run (other seed): CheckpointError on every rank, no hang."""
    case = dict(CASES["course"], num_epochs=20)
    path = tmp_path / "c.npz"
    mpirun(
        2,
        {"mode": "cases", "cases": {"a": case}, "out": str(tmp_path), "checkpoint": str(path)},
        tmp_path,
    )
    proc = mpirun(
        2,
        {
            "mode": "cases",
            "cases": {"b": case},
            "out": str(tmp_path),
            "checkpoint": str(path),
            "resume": True,
            "seed": 11,
            "expect_error": True,
        },
        tmp_path,
    )
    errors = json.loads((tmp_path / "errors.json").read_text())
    assert len(errors) == 2, (errors, proc.stderr)
    assert all(
        e["type"] == "CheckpointError" and "seed 10 != 11" in e["message"] for e in errors
    ), errors


# ------------------------------------------------------------------------ faults
def test_a_killed_rank_ends_the_job_and_the_checkpoint_stays_loadable(tmp_path):
    """Rank 1 is killed (SIGKILL) in epoch 70 of a run that checkpoints every 20 epochs: the
    job ends within seconds with mpiexec's message naming the signal, and the checkpoint
    (epoch 60) loads and resumes."""
    path = tmp_path / "c.npz"
    case = dict(CASES["course"], num_epochs=100000, print_every=100000)
    start = time.monotonic()
    proc = mpirun(
        2,
        {
            "mode": "cases",
            "cases": {"a": case},
            "out": str(tmp_path),
            "checkpoint": str(path),
            "checkpoint_every": 20,
            "kill_at": 70,
        },
        tmp_path,
        timeout=30,
        check=False,
    )
    elapsed = time.monotonic() - start
    assert proc.returncode != 0
    assert elapsed < 15, f"the job took {elapsed:.1f} s to end"
    said = proc.stdout + proc.stderr
    assert "signal 9" in said, said  # MPICH: "Killed (signal 9)"; Open MPI: "exited on signal 9"
    saved = ckpt.load(path)
    assert saved.epoch == 60
    X, Y = xpopt.load_moons()
    more = xpopt.train(
        X,
        Y,
        case["layers"],
        make_opt(case),
        checkpoint=path,
        resume=True,
        **(train_kwargs(case) | {"print_cost": False, "stop_after": 1}),
    )
    assert more.epochs == 61


def test_diverged_replicas_and_different_runs_are_named_on_every_rank(tmp_path):
    """Rank 1's gradient nudged once (one part in 1e9) in epoch 3: the checksums differ at the next
    check and every rank raises ReplicaDivergenceError; ranks given different data refuse
    to start, on every rank."""
    case = dict(CASES["course"], num_epochs=10)
    mpirun(2, {"mode": "faults", "cases": {"a": case}, "out": str(tmp_path)}, tmp_path)
    errors = json.loads((tmp_path / "errors.json").read_text())
    diverged = [e for e in errors if e["case"] == "nudge"]
    assert len(diverged) == 2
    assert all(
        e["type"] == "ReplicaDivergenceError"
        and "by epoch 5" in e["message"]
        and "ranks [1]" in e["message"]
        for e in diverged
    )
    other = [e for e in errors if e["case"] == "other-data"]
    assert len(other) == 2 and all(
        e["type"] == "ValueError" and "data" in e["message"] for e in other
    )


# ---------------------------------------------------------------- GPU path (stand-in)
def test_nccl_engine_on_the_cupy_standin_transfers_nothing_per_step(tmp_path):
    """The CuPy path at n = 2 on xpopt's stand-in, NCCL replaced by a host-side fake
    collective: 10 more epochs (50 more steps) cost exactly 10 more host-to-device copies
    (each epoch's permutation, as xpopt.train) and no device-to-host copy or sync; one
    all-reduce per step; the parameters equal the NumPy run's bit for bit."""
    mpirun(2, {"mode": "standin", "out": str(tmp_path)}, tmp_path)
    got = json.loads((tmp_path / "standin.json").read_text())
    short, long = got["10"], got["20"]
    assert long["steps"] - short["steps"] == 50
    # one all-reduce per step, and one of the cost in each epoch that records it (0, last)
    assert short["calls"] == short["steps"] + 2 and long["calls"] == long["steps"] + 2
    assert long["h2d"] - short["h2d"] == 10
    assert long["d2h"] - short["d2h"] == 0 and long["syncs"] - short["syncs"] == 0
    assert got["same_as_numpy"] and got["engine"] == "nccl"


@pytest.mark.real_gpu
def test_nccl_on_real_gpus(tmp_path):
    """ci/gpu.sh, on a machine with two GPUs and the NCCL wheel: two ranks, one GPU each,
    NCCL's all-reduce on device buffers; the result matches the CPU's xpopt.train to GPU
    rounding (CUDA's exp/log and CuPy's reductions differ from NumPy's by ulps) and reaches
    the same accuracy."""
    mpiexec = require_mpi()
    import cupy  # noqa: PLC0415  (real CuPy: the real_gpu marker skips without a device)

    if cupy.cuda.runtime.getDeviceCount() < 2:
        pytest.skip("two NCCL ranks need two GPUs (NCCL refuses one GPU twice)")
    path = tmp_path / "gpu.npz"
    proc = subprocess.run(
        [
            mpiexec,
            "-n",
            "2",
            sys.executable,
            "-m",
            "mpi4py",
            "-m",
            "xpopt.distributed",
            "--backend",
            "cuda",
            "--strict",
            "--epochs",
            "300",
            "--print-every",
            "100",
            "--checkpoint",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "2 (nccl;" in proc.stdout
    ref, _ = single_process("course")
    saved = ckpt.load(path)
    assert _rel(saved.parameters, ref.parameters.flat) <= 1e-8
    assert "train accuracy : 0.8900" in proc.stdout


# ------------------------------------------------------------ in-process pieces
def test_shards_cover_each_batch_once_in_order():
    for m, b in [(300, 64), (300, 37), (10, 1), (5, 300)]:
        widths = batch_widths(m, b)
        assert sum(widths) == m
        for n in (1, 2, 3, 4, 7):
            plans = [ShardPlan.build(m, b, n, r) for r in range(n)]
            every = np.sort(np.concatenate([p.positions for p in plans]))
            assert np.array_equal(every, np.arange(m))
            for k, width in enumerate(widths):
                bounds = [shard_bounds(width, n, r) for r in range(n)]
                sizes = [hi - lo for lo, hi in bounds]
                assert sum(sizes) == width and max(sizes) - min(sizes) <= 1
                assert all(bounds[r][1] == bounds[r + 1][0] for r in range(n - 1))  # contiguous
                for p in plans:
                    lo, hi = p.shards[k]
                    assert hi - lo == sizes[p.rank]
    assert np.array_equal(ShardPlan.build(300, 64, 1, 0).positions, np.arange(300))


def test_shard_backward_of_a_whole_batch_is_backward_propagation():
    """At one rank the shard is the batch: the same gradient bits as network's backward."""
    X, Y = xpopt.load_moons()
    params = xpopt.initialize_parameters([2, 16, 8, 1])
    from xpopt.network import Workspace  # noqa: PLC0415

    for lo, hi in [(0, 64), (256, 300)]:
        bx, by = np.ascontiguousarray(X[:, lo:hi]), np.ascontiguousarray(Y[:, lo:hi])
        ws = Workspace(params, hi - lo)
        _, caches = xpopt.forward_propagation(bx, params, ws)
        ours = shard_backward(by, caches, hi - lo).flat.copy()
        _, caches = xpopt.forward_propagation(bx, params)
        ref = xpopt.backward_propagation(bx, by, caches)
        assert np.array_equal(ours, ref.flat)


def test_checksum_sees_one_ulp():
    from xpopt.distributed import checksum  # noqa: PLC0415

    a = np.linspace(-1, 1, 1001)
    b = a.copy()
    b[500] = np.nextafter(b[500], 2)
    assert checksum(a) == checksum(a.copy()) and checksum(a) != checksum(b)
    a32 = a.astype(np.float32)
    b32 = a32.copy()
    b32[7] = np.nextafter(b32[7], np.float32(2))
    assert checksum(a32, a) != checksum(b32, a) and checksum(a32, a) == checksum(a32.copy(), a)


def test_describe_names_the_engines_without_starting_mpi():
    from xpopt.distributed import describe  # noqa: PLC0415

    info = describe()
    assert info["engine_numpy"] == "mpi" and info["engine_cupy"] == "nccl"
    assert {"mpi4py", "mpiexec", "nccl"} <= set(info)
    assert "mpi4py.MPI" not in sys.modules  # describing initialised nothing


# ------------------------------------------------------------------------ worker
def _worker(spec_path: str) -> None:  # pragma: no cover  (runs under mpiexec)
    from mpi4py import MPI  # noqa: PLC0415

    from xpopt.distributed import NcclEngine, ReplicaDivergenceError, choose_engine, train  # noqa: PLC0415

    spec = json.loads(Path(spec_path).read_text())
    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    out = Path(spec["out"])
    X, Y = xpopt.load_moons()
    errors = []

    def save(name, result, printed):
        if rank != 0:
            return
        arrays = {
            "parameters": result.parameters.flat,
            "t": result.state.t,
            "costs": np.asarray(result.costs),
            "printed": printed,
            "learning_rates": np.asarray(result.learning_rates),
        }
        for slot in ("v", "s"):
            if getattr(result.state, slot) is not None:
                arrays[slot] = getattr(result.state, slot).flat
        np.savez(out / f"{name}.npz", **arrays)

    def run(name, case, engine=None, data=None, **extra):
        data = data if data is not None else xpopt.load_moons(dtype=case.get("dtype", "float64"))
        kw = train_kwargs(case)
        for key in ("checkpoint", "resume", "stop_after", "checkpoint_every", "seed"):
            if key in spec:
                kw[key] = spec[key]
        kw.update(extra)
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                result = train(
                    *data, case["layers"], make_opt(case), engine=engine, check_every=5, **kw
                )
        except (ValueError, TypeError, ReplicaDivergenceError) as exc:
            errors.append(
                {"case": name, "rank": rank, "type": type(exc).__name__, "message": str(exc)}
            )
            return
        save(name, result, printed.getvalue())

    if spec["mode"] == "cases":
        engine = None
        if spec.get("kill_at") is not None:  # rank 1 dies in the first step of that epoch

            class Killing(type(choose_engine(np, comm))):
                steps = 0

                def allreduce(self, buf):
                    self.steps += 1
                    if self.rank == 1 and self.steps == spec["kill_at"] * 5 + 1:
                        os.kill(os.getpid(), signal.SIGKILL)
                    super().allreduce(buf)

            engine = Killing(comm)
        for name, case in spec["cases"].items():
            run(name, case, engine=engine)
    elif spec["mode"] == "faults":
        case = spec["cases"]["a"]

        class Nudging(type(choose_engine(np, comm))):
            steps = 0

            def allreduce(self, buf):
                super().allreduce(buf)
                self.steps += 1
                if self.rank == 1 and self.steps == 3 * 5 + 1:  # a step of epoch 3
                    buf[0] *= 1 + 1e-9

        run("nudge", case, engine=Nudging(comm))
        data = (X, Y) if rank == 0 else (X, 1 - Y)
        run("other-data", case, data=data)
    elif spec["mode"] == "standin":
        from xpopt.distributed.fake import HostCollective  # noqa: PLC0415
        from xpopt.testing import cupy_standin  # noqa: PLC0415

        report = {}
        with cupy_standin(strict_scalars=True) as cp:
            dX, dY = cp.asarray(X), cp.asarray(Y)
            collective = HostCollective(comm)
            engine = NcclEngine(comm, collective)
            for epochs in (10, 20):
                opt = xpopt.make_optimizer("adam", 0.0007)
                with cp.counting() as counts:
                    result = train(
                        dX,
                        dY,
                        [2, 5, 2, 1],
                        opt,
                        num_epochs=epochs,
                        record_every=1000,
                        check_every=None,
                        engine=engine,
                    )
                report[str(epochs)] = {
                    "h2d": counts.h2d,
                    "d2h": counts.d2h,
                    "syncs": counts.syncs,
                    "steps": result.steps,
                    "calls": collective.calls,
                }
                collective.calls = 0
            params = result.parameters.flat.get()
        ref = train(
            X,
            Y,
            [2, 5, 2, 1],
            xpopt.make_optimizer("adam", 0.0007),
            num_epochs=20,
            record_every=1000,
        )
        report["same_as_numpy"] = bool(np.array_equal(params, ref.parameters.flat))
        report["engine"] = result.engine
        if rank == 0:
            (out / "standin.json").write_text(json.dumps(report))
    everyone = comm.gather(errors)
    if rank == 0 and (spec.get("expect_error") or spec["mode"] == "faults"):
        (out / "errors.json").write_text(json.dumps([e for part in everyone for e in part]))


if __name__ == "__main__":  # pragma: no cover
    _worker(sys.argv[1])
