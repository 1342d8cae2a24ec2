"""Checkpoints: parameters, optimizer state, epoch, seed and t in one ``.npz``.

Written atomically (a temporary file in the same folder, flushed to disk, then renamed over
the old one), so an interrupted save leaves the last good checkpoint in place. Loaded with
``allow_pickle=False``: a checkpoint holds arrays and one JSON string, nothing executable.

Arrays are read and written BY KEY (``W1``, ``b1``, ...; ``dW1``, ... in the optimizer's
state), never by position, whatever the dicts are: packed :class:`~xpopt.flat.FlatDict`,
FlatDicts whose keys were rebound the course's way (``p["W1"] = p["W1"] - lr * dW1``), or
plain dicts in any key order. Restoring writes into the caller's own arrays, after checking
everything, so a refused restore changes nothing.

A file that is truncated, corrupt, foreign or crafted raises :class:`CheckpointError` from
:func:`load`, and nothing else: every metadata field is checked for type and range.
"""

from __future__ import annotations

import numpy  # noqa: F401 (tests reach numpy.savez through here)

from .files import STALE_TMP_SECONDS, TMP_PREFIX, TMP_SUFFIX, check_writable  # noqa: F401
from .format import ARRAYS, FORMAT, OLD_FORMATS, SEED_MAX, CheckpointError  # noqa: F401
from .keys import data_fingerprint
from .saved import Checkpoint
from .store import load, save

__all__ = ["CheckpointError", "Checkpoint", "check_writable", "data_fingerprint", "load", "save"]
