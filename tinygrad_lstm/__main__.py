"""``python -m tinygrad_lstm`` runs the command line."""

import sys

from .cli import main

sys.exit(main())
