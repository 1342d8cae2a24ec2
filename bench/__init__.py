"""The benchmark suite (a package so that its conftest is ``bench.conftest``, never a second
top-level ``conftest`` beside the tests' one, which the tests import by that name)."""
