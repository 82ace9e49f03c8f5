"""The public path of tooling/explain.py: ``tinygrad_lstm.explain`` and
``tinygrad_lstm.tooling.explain`` are one module object."""

import sys

from tinygrad_lstm.tooling import explain

sys.modules[__name__] = explain
