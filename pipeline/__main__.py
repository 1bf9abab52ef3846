"""``python -m pipeline``: see :mod:`pipeline.app.cli`."""

import sys

from pipeline.app.cli import main

if __name__ == "__main__":
    sys.exit(main())
