"""The public path of tooling/interop.py: ``tinygrad_lstm.interop`` and
``tinygrad_lstm.tooling.interop`` are one module object."""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("tinygrad_lstm.tooling.interop")
