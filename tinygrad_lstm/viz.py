"""The public path of tooling/viz.py: ``tinygrad_lstm.viz`` and
``tinygrad_lstm.tooling.viz`` are one module object."""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("tinygrad_lstm.tooling.viz")
