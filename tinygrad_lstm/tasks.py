"""The public path of tooling/tasks.py: ``tinygrad_lstm.tasks`` and
``tinygrad_lstm.tooling.tasks`` are one module object."""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("tinygrad_lstm.tooling.tasks")
