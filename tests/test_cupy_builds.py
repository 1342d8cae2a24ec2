"""Two CuPy builds in one environment are found from package metadata, with what to remove.

Each test lays out ``*.dist-info`` folders (what pip leaves in site-packages) in a temporary
folder and asks :mod:`xpopt._cupy_builds` to look there only.
"""

from __future__ import annotations

import sys

import pytest

from xpopt._cupy_builds import CupyBuild, check_cupy_builds, conflict_message, installed_cupy_builds


def _install(root, name: str, version: str, folder: str | None = None) -> None:
    """A distribution's metadata as pip installs it: ``<name>-<version>.dist-info/METADATA``."""
    info = root / (folder or f"{name.replace('-', '_')}-{version}.dist-info")
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def test_no_cupy_installed(tmp_path):
    _install(tmp_path, "numpy", "2.4.6")
    assert installed_cupy_builds([str(tmp_path)]) == []
    assert check_cupy_builds([str(tmp_path)]) is None


def test_one_build_is_fine(tmp_path):
    _install(tmp_path, "cupy-cuda12x", "14.2.0")
    _install(tmp_path, "numpy", "2.4.6")
    assert installed_cupy_builds([str(tmp_path)]) == [CupyBuild("cupy-cuda12x", "14.2.0")]
    assert check_cupy_builds([str(tmp_path)]) is None


def test_two_builds_name_both_and_the_command_that_keeps_each(tmp_path):
    # what `pip install 'xpopt[cuda12]' 'xpopt[cuda13]'` leaves behind
    _install(tmp_path, "cupy-cuda13x", "14.2.0")
    _install(tmp_path, "cupy-cuda12x", "14.2.0")
    builds = installed_cupy_builds([str(tmp_path)])
    assert [b.name for b in builds] == ["cupy-cuda12x", "cupy-cuda13x"]
    message = check_cupy_builds([str(tmp_path)])
    assert message is not None
    assert message.startswith(
        "2 CuPy builds are installed (cupy-cuda12x 14.2.0, cupy-cuda13x 14.2.0)"
    )
    assert "pip uninstall cupy-cuda13x keeps cupy-cuda12x (CUDA 12)" in message
    assert "pip uninstall cupy-cuda12x keeps cupy-cuda13x (CUDA 13)" in message
    assert "\n" not in message


def test_three_builds_including_the_source_distribution(tmp_path):
    for name in ("cupy", "cupy-cuda11x", "cupy-cuda12x"):
        _install(tmp_path, name, "13.6.0")
    message = conflict_message(installed_cupy_builds([str(tmp_path)]))
    assert message is not None and message.startswith("3 CuPy builds")
    assert "pip uninstall cupy-cuda11x cupy-cuda12x keeps cupy (built from source)" in message
    assert "pip uninstall cupy cupy-cuda12x keeps cupy-cuda11x (CUDA 11)" in message
    assert "pip uninstall cupy cupy-cuda11x keeps cupy-cuda12x (CUDA 12)" in message


@pytest.mark.parametrize("written", ["cupy_cuda12x", "CuPy-CUDA12x", "cupy.cuda12x"])
def test_names_are_normalised(tmp_path, written):
    _install(tmp_path, written, "14.2.0", folder=f"{written}-14.2.0.dist-info")
    assert installed_cupy_builds([str(tmp_path)]) == [CupyBuild("cupy-cuda12x", "14.2.0")]


def test_packages_that_only_mention_cupy_are_not_builds(tmp_path):
    for name in ("cupy-xarray", "cupyx-extras", "pycupy", "cupy-cuda12x-stubs", "cupyimg"):
        _install(tmp_path, name, "1.0")
    assert installed_cupy_builds([str(tmp_path)]) == []


def test_platform_of_each_kind_of_build():
    assert CupyBuild("cupy-cuda12x", "14").platform == "CUDA 12"
    assert CupyBuild("cupy-cuda102", "9").platform == "CUDA 10.2"
    assert CupyBuild("cupy-rocm-5-0", "13").platform == "ROCm 5.0"
    assert CupyBuild("cupy", "14").platform == "built from source"
    assert str(CupyBuild("cupy-cuda12x", "14.2.0")) == "cupy-cuda12x 14.2.0"


def test_older_and_rocm_builds_count_too(tmp_path):
    _install(tmp_path, "cupy-cuda102", "9.6.0")
    _install(tmp_path, "cupy-rocm-5-0", "13.0.0")
    message = check_cupy_builds([str(tmp_path)])
    assert message is not None
    assert "pip uninstall cupy-rocm-5-0 keeps cupy-cuda102 (CUDA 10.2)" in message


def test_a_name_on_the_path_twice_counts_once_with_the_first_version(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    _install(first, "cupy-cuda12x", "14.2.0")
    _install(second, "cupy-cuda12x", "13.6.0")
    assert installed_cupy_builds([str(first), str(second)]) == [CupyBuild("cupy-cuda12x", "14.2.0")]


def test_fewer_than_two_builds_give_no_message():
    assert conflict_message([]) is None
    assert conflict_message([CupyBuild("cupy-cuda13x", "14.2.0")]) is None


def test_the_real_environment_is_read_without_importing_cupy():
    before = sys.modules.get("cupy")
    builds = installed_cupy_builds()
    assert sys.modules.get("cupy") is before
    assert all(b.name.startswith("cupy") for b in builds)
    assert (check_cupy_builds() is None) == (len(builds) < 2)


def test_unreadable_entries_are_skipped(tmp_path):
    (tmp_path / "cupy-13.0.0-py3.11.egg-info").write_text("an old setuptools file, not a folder")
    archive = tmp_path / "bundle.zip"
    archive.write_bytes(b"")
    assert installed_cupy_builds([str(tmp_path), str(archive), str(tmp_path / "missing")]) == []
