"""``python -m pyimgdir``: the command line (see :mod:`pyimgdir.cli`)."""

import sys

from pyimgdir.cli import main

if __name__ == "__main__":
    sys.exit(main())
