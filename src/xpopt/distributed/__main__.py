"""``python -m xpopt.distributed``: see :mod:`xpopt.distributed.cli`."""

import sys

from .cli import main

sys.exit(main())
