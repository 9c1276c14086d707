"""Run the command-line interface: ``python -m boresnet``."""

import sys

from boresnet.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
