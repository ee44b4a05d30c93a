"""``python -m intentguard``: the same command as the ``intentguard`` console script."""

from __future__ import annotations

import sys

from intentguard.cli import main

if __name__ == "__main__":
    sys.exit(main())
