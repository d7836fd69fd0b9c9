"""``python -m sim``: the same as the ``dnnsim`` command."""

import sys

from sim.cli import main

sys.exit(main())
