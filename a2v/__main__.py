"""``python -m a2v`` — the command line (see :mod:`a2v.cli`)."""

import sys

from a2v.cli import main

sys.exit(main())
