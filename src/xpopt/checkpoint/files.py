"""A checkpoint's files: the atomic write, temporary files removed when stale, the writable
check."""

from __future__ import annotations

import os
import re
import secrets
import time

import numpy

from .format import CheckpointError

# Temporary files of an atomic save: ".xpopt-<random>.npz.tmp" next to the checkpoint.
TMP_PREFIX, TMP_SUFFIX = ".xpopt-", ".npz.tmp"
_TMP_NAME = re.compile(r"\.xpopt-[A-Za-z0-9_]{6,32}\.npz\.tmp\Z")
STALE_TMP_SECONDS = 600  # a temporary file this old was left by a killed save


# ------------------------------------------------------------------------- files
def _create_temp(folder: str) -> tuple[int, str]:
    """A new temporary file next to the checkpoint, created with mode 0o666 so that the
    umask applies as to any file the user writes (mkstemp would force 0600)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(folder, f"{TMP_PREFIX}{secrets.token_hex(8)}{TMP_SUFFIX}")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary file name in {folder}")


def _remove_stale_temps(folder: str, keep: str | None = None) -> None:
    """Delete temporary files of OUR saves (``.xpopt-<random>.npz.tmp``) in ``folder`` that
    are older than :data:`STALE_TMP_SECONDS`: what a save killed half-way leaves. Another
    process's save in progress writes a fresh file and is left alone; so is anything else."""
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if not _TMP_NAME.match(entry.name) or entry.path == keep:
            continue
        try:
            if (
                entry.is_file(follow_symlinks=False)
                and now - entry.stat(follow_symlinks=False).st_mtime > STALE_TMP_SECONDS
            ):
                os.unlink(entry.path)
        except OSError:
            pass


def check_writable(path) -> str:
    """Raise :class:`CheckpointError` unless a checkpoint can be saved at ``path`` (not a
    directory, in an existing folder where a file can be created); returns the path.

    Tried for real: a temporary file is created in the folder and removed again.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise CheckpointError(f"cannot save a checkpoint at {path}: it is a directory")
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = _create_temp(folder)
    except OSError as exc:
        raise CheckpointError(
            f"cannot save a checkpoint at {path}: {exc.strerror or exc} ({folder})"
        ) from None
    os.close(fd)
    os.unlink(tmp)
    return path


def write_npz_atomically(path, arrays: dict) -> None:
    """``numpy.savez(path, **arrays)``, atomically: into a temporary file in the same folder,
    flushed to disk, then renamed over ``path``. Interrupted or refused, it leaves ``path``
    and the folder as they were (stale temporaries of killed saves are removed after)."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = _create_temp(folder)
    try:
        with os.fdopen(fd, "wb") as f:
            numpy.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _remove_stale_temps(folder)
