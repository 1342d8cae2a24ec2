"""Group 7: strong scaling of data-parallel training (xpopt.distributed) over MPI ranks.

A wide MLP, ``[784, 1024, 1024, 1]`` (1.85M parameters; the course's network has one sigmoid
output, so the 10-way softmax of MNIST is replaced by random binary labels), trained with
Adam at a GLOBAL batch of 1024 in float32, on 4096 random examples (4 steps per epoch).
The global batch stays the same as ranks are added (strong scaling): each rank computes
1024 / n columns, then one all-reduce of the 7.4 MB gradient buffer.

Contestants (each an ``mpiexec`` job of this file's worker, see the bottom):

- 1 rank, 1 BLAS thread: the baseline of the scaling;
- 2 ranks, 1 BLAS thread each: the same two cores as data parallelism;
- 1 rank, 2 BLAS threads: what one process gets from the same two cores without MPI.

The timed function is the whole job (launch and set-up included); the figures that matter
are in ``extra_info``: ``step_s`` (wall time per step, median of the epochs), ``allreduce_s``
(per step, inside training, waiting for the slower rank included), ``allreduce_share``,
``allreduce_alone_s`` (the same buffer all-reduced on its own), ``update_s`` (the Adam
update of the whole model, which every rank applies) and the cost model's prediction
``model_step_s = (step_s(1) - update_s) / n + update_s + allreduce_alone_s``.

``XPOPT_BENCH_QUICK=1`` shrinks the network to ``[64, 64, 64, 1]``, batch 128.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy
import pytest

import harness

HERE = Path(__file__).resolve()
DIMS, BATCH, M, EPOCHS = (
    ([64, 64, 64, 1], 128, 512, 2) if harness.QUICK else ([784, 1024, 1024, 1], 1024, 4096, 4)
)
CONTESTANTS = {  # name: (ranks, BLAS threads per rank)
    "n1": (1, 1),
    "n2": (2, 1),
    "n1-2threads": (1, 2),
}
RESULTS: dict = {}
GROUP = f"distributed step: {DIMS}, global batch {BATCH}, float32, Adam"


def _mpiexec() -> str:
    try:
        import mpi4py  # noqa: F401, PLC0415
    except ImportError as exc:
        pytest.skip(f"mpi4py is not installed ({exc}); pip install mpi4py mpich")
    path = shutil.which(
        "mpiexec",
        path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    )
    if path is None:
        pytest.skip("no mpiexec (pip install mpich, or a system MPI)")
    return path


def _job(ranks: int, threads: int, out: Path) -> dict:
    env = dict(
        os.environ,
        OPENBLAS_NUM_THREADS=str(threads),
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
        XPOPT_NUM_THREADS=str(threads),
    )
    if ranks > (os.cpu_count() or 1):
        env["MPIR_CVAR_ENABLE_HEAVY_YIELD"] = "1"
    proc = subprocess.run(
        [_mpiexec(), "-n", str(ranks), sys.executable, "-m", "mpi4py", str(HERE), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    if proc.returncode != 0:
        raise AssertionError(f"mpiexec -n {ranks} failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(out.read_text())


@pytest.mark.parametrize("contestant", list(CONTESTANTS))
def test_distributed_step(benchmark, contestant, tmp_path):
    ranks, threads = CONTESTANTS[contestant]
    out = tmp_path / "result.json"
    label = (
        f"xpopt.distributed, {ranks} rank{'s' * (ranks > 1)} (MPI), "
        f"{threads} BLAS thread{'s' * (threads > 1)} each"
    )
    rounds = []

    def job():
        rounds.append(_job(ranks, threads, out))
        return rounds[-1]

    harness.measure(
        benchmark,
        job,
        group=GROUP,
        contestant=label,
        device="cpu",
        rounds=3,
        warmup=0,
        baseline=contestant == "n1",
        ranks=ranks,
        threads=threads,
    )
    # each round's figures are medians over its epochs; the report takes the median round
    figures = dict(rounds[-1])
    for key in ("step_s", "allreduce_s", "allreduce_alone_s", "update_s"):
        figures[key] = statistics.median(r[key] for r in rounds)
    figures["step_s_rounds"] = [r["step_s"] for r in rounds]
    figures["allreduce_share"] = figures["allreduce_s"] / figures["step_s"]
    RESULTS[contestant] = figures
    info = benchmark.extra_info
    info.update({k: v for k, v in figures.items() if k != "ranks_detail"})
    base = RESULTS.get("n1")
    if base is not None:
        info["speedup_vs_1_rank"] = base["step_s"] / figures["step_s"]
        # the cost model: the batch's forward/backward divides among the ranks, the update
        # (replicated on every rank) does not, and the all-reduce is added
        divisible = base["step_s"] - base["update_s"]
        info["model_step_s"] = divisible / ranks + base["update_s"] + figures["allreduce_alone_s"]
    assert numpy.isfinite(figures["final_cost"])


# ------------------------------------------------------------------------ worker
def _worker(out: str) -> None:  # pragma: no cover  (runs under mpiexec)
    from mpi4py import MPI  # noqa: PLC0415

    import xpopt  # noqa: PLC0415
    from xpopt.distributed import MpiEngine, train  # noqa: PLC0415

    comm = MPI.COMM_WORLD
    rng = numpy.random.default_rng(0)  # the same data on every rank
    X = rng.standard_normal((DIMS[0], M), dtype=numpy.float32)
    Y = (rng.random((1, M)) > 0.5).astype(numpy.float32)
    engine = MpiEngine(comm)
    params = xpopt.to_host(xpopt.initialize_parameters(DIMS, dtype=numpy.float32))
    opt = xpopt.Adam(0.001)
    kw = dict(mini_batch_size=BATCH, record_every=1000, check_every=None, engine=engine)
    train(X, Y, params.copy(), opt, num_epochs=1, **kw)  # warm-up: first touch, BLAS set-up
    per_epoch, reduce_per_step = [], []
    result = None
    for _ in range(EPOCHS):
        comm.Barrier()
        result = train(X, Y, params, opt, num_epochs=1, **kw)  # continues from params
        per_epoch.append(result.wall_time / result.steps)
        reduce_per_step.append(result.allreduce_seconds / result.steps)
    # the same buffer all-reduced on its own, as often as the timed steps
    buf = numpy.ones(params.flat.size, dtype=numpy.float32)
    alone = []
    for _ in range(5 * EPOCHS):
        comm.Barrier()
        t0 = time.perf_counter()
        if comm.Get_size() > 1:
            comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        alone.append(time.perf_counter() - t0)
    # the optimizer's update alone: every rank applies it to the whole model (not divided)
    scratch = params.copy()
    grads = scratch.zeros_like(prefix="d")
    grads.flat[...] = 1e-3
    step = opt.bind(scratch, grads, opt.init(scratch))
    step()
    updates = []
    for _ in range(5):
        t0 = time.perf_counter()
        step()
        updates.append(time.perf_counter() - t0)
    AL, _ = xpopt.forward_propagation(X, result.parameters)
    cost = float(xpopt.compute_cost(AL, Y)) / M
    mine = {
        "step_s": statistics.median(per_epoch),
        "allreduce_s": statistics.median(reduce_per_step),
        "allreduce_alone_s": statistics.median(alone),
        "update_s": statistics.median(updates),
    }
    everyone = comm.gather(mine)
    if comm.Get_rank() == 0:
        n = comm.Get_size()
        nbytes = params.flat.nbytes
        step = max(r["step_s"] for r in everyone)
        reduce = statistics.mean(r["allreduce_s"] for r in everyone)
        alone_s = max(r["allreduce_alone_s"] for r in everyone)
        # ring all-reduce: each rank sends and receives 2 (n - 1) / n of the buffer
        busbw = 2 * (n - 1) / n * nbytes / alone_s / 1e9 if n > 1 and alone_s > 0 else None
        report = {
            "ranks": n,
            "parameters": int(params.flat.size),
            "gradient_bytes": nbytes,
            "global_batch": BATCH,
            "step_s": step,
            "allreduce_s": reduce,
            "allreduce_share": reduce / step,
            "allreduce_alone_s": alone_s,
            "update_s": statistics.mean(r["update_s"] for r in everyone),
            "allreduce_bus_GBps": busbw,
            "final_cost": cost,
            "ranks_detail": everyone,
        }
        Path(out).write_text(json.dumps(report))


if __name__ == "__main__":  # pragma: no cover
    _worker(sys.argv[1])
