"""The public path of tooling/interop.py: ``tinygrad_lstm.interop`` and
``tinygrad_lstm.tooling.interop`` are one module object."""

import sys

from tinygrad_lstm.tooling import interop

sys.modules[__name__] = interop
