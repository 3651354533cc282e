"""``python -m alliance``: the same command line as the ``alliance`` console script."""

from __future__ import annotations

from alliance.cli import main

if __name__ == "__main__":
    main()
