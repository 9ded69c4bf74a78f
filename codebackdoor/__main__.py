"""``python -m codebackdoor``: the command line (e.g. ``accelerate launch -m codebackdoor``)."""

import sys

from codebackdoor.cli import main

sys.exit(main())
