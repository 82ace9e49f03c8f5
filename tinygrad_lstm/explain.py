"""The public path of tooling/explain.py: ``tinygrad_lstm.explain`` and
``tinygrad_lstm.tooling.explain`` are one module object."""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("tinygrad_lstm.tooling.explain")
