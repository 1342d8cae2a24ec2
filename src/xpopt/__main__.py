"""``python -m xpopt ...``: the command line."""

from .cli import main

raise SystemExit(main())
