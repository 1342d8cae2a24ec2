"""The backend shim: fallback paths produced for real, contexts, dispatch, transfers.

The fallback conditions are created, never mocked: CuPy made unimportable in a fresh
interpreter (``sys.modules['cupy'] = None``), and CuPy installed on a machine without a
device (the test extra installs ``cupy-cuda12x``). Warnings are counted in fresh
interpreters, because the "warn once" flag is process-wide.
"""

from __future__ import annotations

import collections
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import threading
import warnings

import numpy
import pytest

import xpopt
from conftest import IN_CI, gpu_unavailable_reason, require_gpu
from xpopt import backend

# the library's message and the command line's warning both name these (shorter since issue 14)
HINT_PARTS = ("pip install 'xpopt[cuda]'", "XPOPT_BACKEND=cpu")


# ------------------------------------------------------------------------ helpers
def run_python(
    code: str, *, env: dict | None = None, block_cupy: bool = False, args: list[str] | None = None
) -> subprocess.CompletedProcess:
    """Run ``code`` (or ``python ARGS``) in a fresh interpreter with a clean XPOPT_* env."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("XPOPT_")}
    full_env.update(env or {})
    if args is None:
        prelude = "import sys\nsys.modules['cupy'] = None\n" if block_cupy else ""
        args = ["-c", prelude + textwrap.dedent(code)]
    return subprocess.run(
        [sys.executable, *args], env=full_env, capture_output=True, text=True, timeout=120
    )


def last_json(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, f"rc={proc.returncode}\nstdout:{proc.stdout}\nstderr:{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def require_cupy_without_device() -> None:
    """Skip (fail under CI) unless CuPy imports here and sees no device."""
    if importlib.util.find_spec("cupy") is None:
        if IN_CI:
            pytest.fail(
                "CuPy must be installed under CI=true (the test extra installs "
                "cupy-cuda12x) to produce the 'importable, no device' fallback"
            )
        pytest.skip("CuPy is not installed: the 'importable but no device' path cannot be produced")
    why = gpu_unavailable_reason()
    if why is None:
        pytest.skip("a CUDA device is present: the no-device fallback cannot be produced here")
    if why.startswith("CuPy is not importable"):
        if IN_CI:
            pytest.fail(f"CuPy is installed but does not import under CI=true: {why}")
        pytest.skip(f"CuPy is installed but does not import: {why}")


def require_no_gpu() -> None:
    if gpu_unavailable_reason() is None:
        pytest.skip("a CUDA device is present: the CPU fallback cannot be produced in-process")


def effective() -> str:
    """get_backend(), or the name of the error it raises."""
    try:
        return backend.get_backend()
    except Exception as exc:  # noqa: BLE001 (recorded and compared by the tests)
        return f"error:{type(exc).__name__}"


# A script run under each fallback condition: "auto" first (must stay silent), then many
# "cuda" requests through every entry point (must warn exactly once).
FALLBACK_SCRIPT = """
import json, warnings
import numpy
import xpopt
from xpopt import backend
out = {}
with warnings.catch_warnings(record=True) as auto_w:
    warnings.simplefilter("always")
    out["auto"] = [xpopt.set_backend("auto"), xpopt.get_backend(),
                   xpopt.set_backend("auto", strict=True)]
    with xpopt.use_backend("auto") as eff:
        out["auto"].append(eff)
        out["auto"].append(xpopt.get_xp().__name__)
out["auto_warnings"] = len(auto_w)
xpopt.set_backend("cpu")
backend._process_choice = None   # back to XPOPT_BACKEND=cuda
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")   # so that a second warning could not be hidden
    out["cuda"] = [xpopt.get_backend() for _ in range(3)]
    out["cuda"].append(xpopt.set_backend("cuda"))
    out["cuda"].append(xpopt.set_backend("cuda"))
    out["cuda"].append(xpopt.get_backend())
    with xpopt.use_backend("cuda") as eff:
        out["cuda"].append(eff)
    out["cuda"].append(xpopt.get_xp().__name__)
    X, Y = xpopt.load_moons()
    out["cuda"].append(type(X).__module__)
    out["cuda"].append(type(xpopt.to_device(numpy.ones(2))).__module__)
    out["cuda"].append(xpopt.device_info()["backend"])
out["warnings"] = [[type(x.message).__name__, str(x.message)] for x in w]
out["reason"] = backend.cuda_unavailable_reason()
print(json.dumps(out))
"""

STRICT_SCRIPT = """
import json, warnings
import xpopt
out = {}
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    for label, call in [
        ("get_backend", lambda: xpopt.get_backend()),
        ("set_backend", lambda: xpopt.set_backend("cuda", strict=True)),
        ("use_backend", lambda: xpopt.use_backend("cuda", strict=True).__enter__()),
    ]:
        try:
            out[label] = ["ok", call()]
        except xpopt.BackendUnavailableError as exc:
            out[label] = ["BackendUnavailableError", str(exc)]
out["warnings"] = len(w)
out["reason"] = xpopt.backend.cuda_unavailable_reason()
print(json.dumps(out))
"""


# -------------------------------------------------------------------- import cost
def test_import_does_not_import_cupy():
    """`import xpopt` and CPU-only work load NumPy only, never CuPy."""
    proc = run_python("""
        import json, sys
        import xpopt
        after_import = "cupy" in sys.modules
        X, Y = xpopt.load_moons()
        p = xpopt.initialize_parameters([2, 5, 2, 1])
        AL, caches = xpopt.forward_propagation(X, p)
        xpopt.backward_propagation(X, Y, caches)
        xpopt.get_xp(X); xpopt.to_host(p); xpopt.to_device(X); xpopt.synchronize()
        print(json.dumps([after_import, "cupy" in sys.modules, xpopt.get_backend()]))
    """)
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [False, False, "cpu"], proc.stderr


# ----------------------------------------------------- fallback 1: CuPy not importable
def test_cupy_not_importable_warns_once_and_runs_on_cpu():
    """XPOPT_BACKEND=cuda without an importable CuPy: one warning (reason + hint), CPU arrays."""
    out = last_json(run_python(FALLBACK_SCRIPT, env={"XPOPT_BACKEND": "cuda"}, block_cupy=True))
    assert out["cuda"] == ["cpu"] * 6 + ["cpu", "numpy", "numpy", "numpy", "cpu"]
    assert len(out["warnings"]) == 1, out["warnings"]
    category, message = out["warnings"][0]
    assert category == "BackendFallbackWarning"
    assert out["reason"].startswith("CuPy is not importable")
    assert out["reason"] in message
    assert "ImportError" in message or "ModuleNotFoundError" in message
    assert "import of cupy halted" in message  # the import error's own text
    for part in HINT_PARTS:
        assert part in message


def test_cupy_not_importable_auto_is_silent():
    """ "auto" without an importable CuPy picks the CPU without any warning."""
    out = last_json(run_python(FALLBACK_SCRIPT, env={"XPOPT_BACKEND": "cuda"}, block_cupy=True))
    assert out["auto"] == ["cpu", "cpu", "cpu", "cpu", "numpy"]
    assert out["auto_warnings"] == 0
    assert len(out["warnings"]) == 1  # the same process does warn for "cuda": not vacuous


@pytest.mark.parametrize("strict_env", [True, False], ids=["XPOPT_STRICT=1", "strict=True"])
def test_cupy_not_importable_strict_raises(strict_env):
    """Strict mode (env or argument) raises BackendUnavailableError with the import reason."""
    env = {"XPOPT_BACKEND": "cuda", "XPOPT_STRICT": "1"} if strict_env else {}
    out = last_json(run_python(STRICT_SCRIPT, env=env, block_cupy=True))
    reason = out["reason"]
    assert reason.startswith("CuPy is not importable") and "import of cupy halted" in reason
    labels = (
        ["get_backend", "set_backend", "use_backend"]
        if strict_env
        else ["set_backend", "use_backend"]
    )
    for label in labels:
        kind, message = out[label]
        assert kind == "BackendUnavailableError", (label, out[label])
        assert reason in message
        for part in HINT_PARTS:
            assert part in message
    if not strict_env:
        assert out["get_backend"] == ["ok", "cpu"]  # the process default was not changed
    assert out["warnings"] == 0  # strict raises instead of warning


# ------------------------------------------- fallback 2: CuPy importable, no device
def test_no_device_cli_info_warns_once_and_reports_cpu():
    """`XPOPT_BACKEND=cuda python -m xpopt info` on a GPU-less machine: one warning, CPU, rc 0."""
    require_cupy_without_device()
    reason = gpu_unavailable_reason()
    proc = run_python("", env={"XPOPT_BACKEND": "cuda"}, args=["-m", "xpopt", "info"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("Falling back to the CPU") == 1, proc.stderr  # one warning
    assert proc.stderr.count(reason) == 1, proc.stderr
    for part in HINT_PARTS:
        assert part in proc.stderr
    assert "\nbackend      : cpu (asked for: cuda)\n" in proc.stdout  # info's aligned field
    assert "cores" in proc.stdout
    assert "Warning" not in proc.stdout


def test_no_device_cli_info_strict_fails_with_reason():
    """With XPOPT_STRICT=1 the same command exits non-zero and says why."""
    require_cupy_without_device()
    reason = gpu_unavailable_reason()
    proc = run_python(
        "", env={"XPOPT_BACKEND": "cuda", "XPOPT_STRICT": "1"}, args=["-m", "xpopt", "info"]
    )
    assert proc.returncode != 0
    assert reason in proc.stderr
    assert "backend " not in proc.stdout


def test_no_device_python_api_warns_once():
    """CuPy importable without a device: many "cuda" requests, one warning, CPU arrays."""
    require_cupy_without_device()
    out = last_json(run_python(FALLBACK_SCRIPT, env={"XPOPT_BACKEND": "cuda"}))
    assert out["cuda"] == ["cpu"] * 6 + ["cpu", "numpy", "numpy", "numpy", "cpu"]
    assert len(out["warnings"]) == 1, out["warnings"]
    assert out["warnings"][0][0] == "BackendFallbackWarning"
    assert out["reason"].startswith("CuPy ") and "installed" in out["reason"]
    assert out["reason"] in out["warnings"][0][1]
    assert out["auto"] == ["cpu", "cpu", "cpu", "cpu", "numpy"]
    assert out["auto_warnings"] == 0


def test_no_device_strict_raises():
    """CuPy importable without a device: strict requests raise with the probe's reason."""
    require_cupy_without_device()
    out = last_json(run_python(STRICT_SCRIPT, env={"XPOPT_BACKEND": "cuda", "XPOPT_STRICT": "1"}))
    for label in ("get_backend", "set_backend", "use_backend"):
        assert out[label][0] == "BackendUnavailableError"
        assert out["reason"] in out[label][1]


def test_in_process_fallback_without_gpu():
    """In this process: "cuda" falls back to the CPU, strict raises, "auto" never warns."""
    require_no_gpu()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", backend.BackendFallbackWarning)
        assert xpopt.set_backend("cuda") == "cpu"
        assert xpopt.get_xp() is numpy
    with pytest.raises(xpopt.BackendUnavailableError) as info:
        xpopt.set_backend("cuda", strict=True)
    assert gpu_unavailable_reason() in str(info.value)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert xpopt.set_backend("auto") == "cpu"
        assert xpopt.set_backend("auto", strict=True) == "cpu"


@pytest.mark.gpu
def test_cuda_backend_with_gpu():
    """With a device, "cuda" and "auto" give CuPy arrays for new data."""
    require_gpu()
    import cupy

    assert xpopt.set_backend("cuda", strict=True) == "cuda"
    assert xpopt.get_xp() is cupy
    X, Y = xpopt.load_moons()
    assert isinstance(X, cupy.ndarray) and isinstance(Y, cupy.ndarray)
    with xpopt.use_backend("cpu") as eff:
        assert eff == "cpu" and isinstance(xpopt.load_moons()[0], numpy.ndarray)
    assert xpopt.set_backend("auto") == "cuda"
    info = xpopt.device_info()
    assert info["backend"] == "cuda" and info["memory_bytes"] > 0


# ------------------------------------------------------------------ names, contexts
@pytest.mark.parametrize(
    "call",
    [
        lambda: xpopt.set_backend("bogus"),
        lambda: xpopt.set_backend(None),
        lambda: xpopt.use_backend("gpu").__enter__(),
        lambda: xpopt.to_device(numpy.ones(1), "tpu"),
        lambda: xpopt.device_info("metal"),
    ],
    ids=["set_backend", "set_backend-None", "use_backend", "to_device", "device_info"],
)
def test_invalid_backend_name_raises_value_error(call):
    """An unknown backend name is a ValueError that lists the valid ones."""
    with pytest.raises(ValueError, match="cpu"):
        call()


def test_invalid_env_backend_raises_value_error(monkeypatch):
    """XPOPT_BACKEND=bogus is a ValueError naming the variable, not a silent CPU."""
    monkeypatch.setenv("XPOPT_BACKEND", "bogus")
    with pytest.raises(ValueError, match="XPOPT_BACKEND.*bogus"):
        xpopt.get_backend()


def test_env_backend_cpu_is_default(monkeypatch):
    """No setting at all and XPOPT_BACKEND=cpu both mean the CPU."""
    assert xpopt.get_backend() == "cpu"
    monkeypatch.setenv("XPOPT_BACKEND", "cpu")
    assert xpopt.get_backend() == "cpu" and xpopt.get_xp() is numpy


def _default_expectation() -> str:
    """What get_backend() gives under XPOPT_BACKEND=cuda XPOPT_STRICT=1 here."""
    return "cuda" if gpu_unavailable_reason() is None else "error:BackendUnavailableError"


def test_use_backend_is_scoped_and_restored(monkeypatch):
    """use_backend overrides the default only inside the block, also when the block raises."""
    monkeypatch.setenv("XPOPT_BACKEND", "cuda")
    monkeypatch.setenv("XPOPT_STRICT", "1")
    outside = _default_expectation()
    assert effective() == outside
    with xpopt.use_backend("cpu") as eff:
        assert eff == "cpu" and effective() == "cpu"
        with xpopt.use_backend("auto"):
            assert effective() == ("cuda" if outside == "cuda" else "cpu")
        assert effective() == "cpu"
    assert effective() == outside
    with pytest.raises(KeyError):
        with xpopt.use_backend("cpu"):
            raise KeyError("boom")
    assert effective() == outside


def test_use_backend_is_thread_local(monkeypatch):
    """Two threads in different use_backend blocks each see their own; the default is unchanged."""
    monkeypatch.setenv("XPOPT_BACKEND", "cuda")
    monkeypatch.setenv("XPOPT_STRICT", "1")
    default = _default_expectation()
    gpu = gpu_unavailable_reason() is None
    barrier = threading.Barrier(3, timeout=30)
    seen: dict[str, list] = collections.defaultdict(list)

    def worker(label, name):
        def look():
            seen[label].append((effective(), backend.requested().name))

        if name is None:
            barrier.wait()
            look()
            barrier.wait()
            look()
            barrier.wait()
            return
        with xpopt.use_backend(name):
            barrier.wait()  # all three threads are inside their blocks now
            look()
            barrier.wait()
            look()
        barrier.wait()

    threads = [
        threading.Thread(target=worker, args=a)
        for a in (("cpu", "cpu"), ("auto", "auto"), ("none", None))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert seen["cpu"] == [("cpu", "cpu")] * 2
    assert seen["auto"] == [("cuda" if gpu else "cpu", "auto")] * 2
    assert seen["none"] == [(default, "cuda")] * 2
    assert effective() == default
    assert backend.requested().name == "cuda"


# ------------------------------------------------------------------------ get_xp
def test_get_xp_numpy_ignores_scalars_and_none():
    """NumPy arrays decide; Python scalars and None are ignored."""
    a = numpy.zeros(3)
    assert xpopt.get_xp(a) is numpy
    assert xpopt.get_xp(None, 1, a, 2.5, True, 3j) is numpy
    assert xpopt.get_xp(numpy.float32(1.0)) is numpy


def test_get_xp_without_arrays_is_configured_module():
    """No arrays (or only scalars/None): the configured backend's module."""
    assert xpopt.get_xp() is numpy
    assert xpopt.get_xp(None, 1, 2.0) is numpy
    with xpopt.use_backend("cpu"):
        assert xpopt.get_xp() is numpy


@pytest.mark.parametrize("bad", [[1.0, 2.0], (1,), "abc", object(), {"a": 1}])
def test_get_xp_rejects_non_arrays(bad):
    """Lists, strings and other objects are a TypeError naming their type."""
    with pytest.raises(TypeError, match=type(bad).__name__):
        xpopt.get_xp(numpy.zeros(2), bad)


@pytest.mark.gpu
def test_get_xp_mixing_numpy_and_cupy_raises():
    """A NumPy and a CuPy array together are a TypeError naming both libraries."""
    require_gpu()
    import cupy

    assert xpopt.get_xp(cupy.zeros(2), 1.0) is cupy
    for args in ((numpy.zeros(2), cupy.zeros(2)), (cupy.zeros(2), None, numpy.ones(1))):
        with pytest.raises(TypeError) as info:
            xpopt.get_xp(*args)
        text = str(info.value).lower()
        assert "numpy" in text and "cupy" in text


def test_is_cupy_array_false_for_numpy():
    """NumPy arrays and look-alikes are not CuPy arrays."""
    assert not backend.is_cupy_array(numpy.zeros(2))
    assert not backend.is_cupy_array([1, 2])


# -------------------------------------------------------------- to_host / to_device
def test_to_host_and_to_device_are_identity_on_cpu():
    """A NumPy array already on the host comes back as the same object, no copy."""
    a = numpy.arange(4.0)
    assert xpopt.to_host(a) is a
    assert xpopt.to_device(a) is a
    assert xpopt.to_device(a, "cpu") is a
    s = numpy.float64(2.0)
    assert xpopt.to_host(s) is s


def test_transfers_preserve_containers():
    """dicts, lists, tuples, named tuples keep their types; arrays inside are untouched."""
    a, b, c = numpy.zeros(2), numpy.ones((2, 2)), numpy.full(3, 7.0)
    Pair = collections.namedtuple("Pair", "left right")
    tree = {
        "a": a,
        "nested": [b, (c, 1, None, "s")],
        "pair": Pair(a, b),
        "od": collections.OrderedDict(x=c),
    }
    for fn in (xpopt.to_host, xpopt.to_device, lambda t: xpopt.to_device(t, "cpu")):
        out = fn(tree)
        assert type(out) is dict and list(out) == list(tree)
        assert out["a"] is a
        assert type(out["nested"]) is list and out["nested"][0] is b
        assert type(out["nested"][1]) is tuple and out["nested"][1][0] is c
        assert out["nested"][1][1:] == (1, None, "s")
        assert type(out["pair"]) is Pair and out["pair"].left is a and out["pair"].right is b
        assert type(out["od"]) is collections.OrderedDict and out["od"]["x"] is c


def test_transfers_reject_unknown_objects():
    """Something that is not an array or a container of arrays is a TypeError."""
    with pytest.raises(TypeError, match="set"):
        xpopt.to_host({1, 2})
    with pytest.raises(TypeError, match="object"):
        xpopt.to_device([object()])


def test_transfers_keep_flatdict():
    """A packed FlatDict comes back as itself; a rebound one as a new packed FlatDict."""
    fd = xpopt.FlatDict(numpy.arange(6.0), (("W1", (2, 2)), ("b1", (2, 1))))
    assert xpopt.to_host(fd) is fd
    assert xpopt.to_device(fd, "cpu") is fd
    fd["W1"] = fd["W1"] + 10  # course-style rebinding: no longer packed
    out = xpopt.to_host(fd)
    assert isinstance(out, xpopt.FlatDict) and out.packed
    numpy.testing.assert_array_equal(out["W1"], [[10.0, 11.0], [12.0, 13.0]])
    numpy.testing.assert_array_equal(out.flat, [10.0, 11.0, 12.0, 13.0, 4.0, 5.0])


@pytest.mark.gpu
def test_transfers_to_and_from_gpu():
    """to_device makes CuPy arrays (keeping ones already there), to_host NumPy copies."""
    require_gpu()
    import cupy

    a = numpy.arange(6.0).reshape(2, 3)
    d = xpopt.to_device({"a": a, "l": [a]}, "cuda")
    assert isinstance(d["a"], cupy.ndarray) and isinstance(d["l"][0], cupy.ndarray)
    numpy.testing.assert_array_equal(d["a"].get(), a)
    assert xpopt.to_device(d["a"], "cuda") is d["a"]
    h = xpopt.to_host(d)
    assert isinstance(h["a"], numpy.ndarray)
    numpy.testing.assert_array_equal(h["a"], a)
    fd = xpopt.FlatDict(numpy.arange(6.0), (("W1", (2, 2)), ("b1", (2, 1))))
    g = xpopt.to_device(fd, "cuda")
    assert isinstance(g, xpopt.FlatDict) and g.packed and isinstance(g.flat, cupy.ndarray)
    g["W1"][...] = 5  # views of the moved buffer
    assert float(g.flat[0]) == 5.0
    back = xpopt.to_host(g)
    assert isinstance(back.flat, numpy.ndarray) and back.packed
    numpy.testing.assert_array_equal(back.flat, [5, 5, 5, 5, 4, 5])


# ------------------------------------------------------------------------ reporting
def test_device_info_on_cpu():
    """device_info() for the CPU names the backend, the processor and the core count."""
    for info in (xpopt.device_info(), xpopt.device_info("cpu")):
        assert {"backend", "device", "cores"} <= set(info)
        assert info["backend"] == "cpu"
        assert isinstance(info["device"], str) and info["device"]
        assert info["cores"] == os.cpu_count()
        assert info["numpy"] == numpy.__version__


def test_synchronize_without_cuda_is_a_noop():
    """synchronize() on the CPU backend returns without touching CUDA."""
    assert xpopt.synchronize() is None


def test_requested_choice_is_a_name_and_a_plain_boolean(monkeypatch):
    """What was asked for: strict is a bool, read from XPOPT_STRICT when set_backend is
    called (later changes of the variable do not rewrite a choice already made)."""
    assert backend.requested() == backend.Choice("cpu", False)
    monkeypatch.setenv("XPOPT_STRICT", "1")
    assert backend.requested() == backend.Choice("cpu", True)
    xpopt.set_backend("auto")
    monkeypatch.setenv("XPOPT_STRICT", "0")
    assert backend.requested() == backend.Choice("auto", True)
    xpopt.set_backend("cpu", strict=False)
    assert backend.requested().strict is False


def test_use_backend_without_a_name_keeps_the_choice_outside(monkeypatch):
    """``use_backend(strict=True)`` tightens the backend asked for outside the block."""
    monkeypatch.setenv("XPOPT_BACKEND", "auto")
    with xpopt.use_backend(strict=True):
        assert backend.requested() == backend.Choice("auto", True)
    assert backend.requested() == backend.Choice("auto", False)
    monkeypatch.setenv("XPOPT_BACKEND", "gpu")
    with pytest.raises(ValueError, match="XPOPT_BACKEND"):
        backend.requested()


def test_two_cupy_builds_are_the_reason_cuda_cannot_be_used(monkeypatch):
    """Two CuPy wheels overwrite each other's files: the probe refuses before importing,
    and the fallback warning / strict error carry the message naming what to uninstall."""
    from xpopt import _cupy_builds

    message = "2 CuPy builds are installed (cupy-cuda12x 14.2.0, cupy-cuda13x 14.2.0) ..."
    monkeypatch.setattr(_cupy_builds, "check_cupy_builds", lambda path=None: message)
    backend._reset_probe()
    try:
        assert backend.cuda_unavailable_reason() == message
        with pytest.raises(xpopt.BackendUnavailableError, match="2 CuPy builds"):
            xpopt.set_backend("cuda", strict=True)
    finally:
        monkeypatch.undo()
        backend._reset_probe()


def test_fused_kernels_without_a_gpu_raise_with_the_reason():
    """``kernels.get_kernel`` on a machine without a usable GPU (and no stand-in) names why."""
    require_no_gpu()
    from xpopt import kernels

    with pytest.raises(RuntimeError, match="fused kernels need CuPy") as info:
        kernels.get_kernel(kernels.SPECS["xpopt_adam"])
    assert gpu_unavailable_reason() in str(info.value)
