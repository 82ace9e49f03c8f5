"""The public path of tooling/testing.py: ``tinygrad_lstm.testing`` and
``tinygrad_lstm.tooling.testing`` are one module object."""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("tinygrad_lstm.tooling.testing")
