"""Entry point of the frozen application: the same `studio` command as the installed console script."""

import sys

from studio.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
