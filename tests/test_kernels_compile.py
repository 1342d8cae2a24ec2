"""``xpopt.kernels`` is plain data: it imports, and describes its kernels, without CuPy.

What CuPy compiles from these specs for real GPUs (its generated source, NVRTC's PTX and
cubin, the machine code) is proven in ``test_kernels_nvrtc``; the host build of the same
``operation`` text in ``test_kernels_host``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_specs_import_without_cupy():
    """``xpopt.kernels`` (and so ``xpopt``) imports with CuPy blocked, and never asks for it."""
    code = textwrap.dedent("""
        import importlib.abc, sys

        asked = []

        class BlockCupy(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "cupy" or name.startswith(("cupy.", "cupyx")):
                    asked.append(name)
                    raise ImportError("cupy blocked by the test")
                return None

        sys.meta_path.insert(0, BlockCupy())
        import xpopt.kernels as k

        assert asked == [], asked
        assert not any(m == "cupy" or m.startswith("cupy.") for m in sys.modules)
        assert set(k.SPECS) == {"xpopt_gd", "xpopt_momentum", "xpopt_rmsprop", "xpopt_adam"}
        for spec in k.SPECS.values():
            assert spec.params and spec.params[0] == ("in", "T", "grad"), spec.params
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
