"""The public path of tooling/viz.py: ``tinygrad_lstm.viz`` and
``tinygrad_lstm.tooling.viz`` are one module object."""

import sys

from tinygrad_lstm.tooling import viz

sys.modules[__name__] = viz
