"""``python -m tinygrad_lstm`` runs the command line."""

import sys

from tinygrad_lstm.tooling.cli import main

sys.exit(main())
