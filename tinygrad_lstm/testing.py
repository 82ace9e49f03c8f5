"""The public path of tooling/testing.py: ``tinygrad_lstm.testing`` and
``tinygrad_lstm.tooling.testing`` are one module object."""

import sys

from tinygrad_lstm.tooling import testing

sys.modules[__name__] = testing
