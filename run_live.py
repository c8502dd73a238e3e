#!/usr/bin/env python3
"""The live face swap: `python run_live.py [options]` is `swapcam live [options]` (see --help)."""

import sys

from swapcam.cli import main

if __name__ == "__main__":
    sys.exit(main(["live", *sys.argv[1:]]))
