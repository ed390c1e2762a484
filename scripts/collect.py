#!/usr/bin/env python
"""The labelling web app's command line; see ``gifemo.collect.cli`` (``--help``)."""

import sys

from gifemo.collect.cli import main

if __name__ == "__main__":
    sys.exit(main())
