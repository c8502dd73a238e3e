"""`python -m swapcam` is the same as the `swapcam` command."""

import sys

from swapcam.cli import main

sys.exit(main())
