"""The public path of tooling/datasets.py: ``tinygrad_lstm.datasets`` and
``tinygrad_lstm.tooling.datasets`` are one module object."""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("tinygrad_lstm.tooling.datasets")
