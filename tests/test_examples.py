"""The documentation's code runs, and the API reference covers every public name.

- Every ```` ```python ```` block of the guide pages runs, in page order, in a fresh
  interpreter (blocks with a ``title="file.py"`` are files to save, not run). A renamed
  function or a changed return value breaks the page's test, not only a reader's copy.
- Every name ``xpopt`` exports has a ``::: xpopt.<name>`` entry in ``docs/reference/``.

The examples in ``examples/`` and the strict site build run in ``ci/docs.sh``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import xpopt

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = ["index.md", "tutorial.md", "backends.md"]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _code(page: str) -> str:
    path = ROOT / page if page == "README.md" else DOCS / page
    return "\n".join(BLOCK.findall(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("page", [*PAGES, "README.md"])
def test_the_pages_code_runs(page, tmp_path):
    code = _code(page)
    assert code.strip(), f"docs/{page} has no ```python block"
    env = {k: v for k, v in os.environ.items() if not k.startswith("XPOPT_")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"docs/{page}:\n{done.stdout}\n{done.stderr}"


def test_titled_blocks_are_not_run():
    text = '```python title="x.py"\nraise SystemExit(1)\n```\n```python\nprint(1)\n```\n'
    assert BLOCK.findall(text) == ["print(1)\n"]


def test_every_public_name_is_in_the_api_reference():
    reference = "\n".join(
        p.read_text(encoding="utf-8") for p in sorted((DOCS / "reference").glob("*.md"))
    )
    documented = set(re.findall(r"^::: xpopt\.(\w+)", reference, re.M))
    public = {
        n
        for n in dir(xpopt)
        if not n.startswith("_") and not isinstance(getattr(xpopt, n), type(xpopt))
    }  # modules aside
    public |= set(xpopt.__all__)
    missing = sorted(public - documented)
    assert not missing, f"add to docs/reference/*.md: {missing}"
