"""The public path of tooling/datasets.py: ``tinygrad_lstm.datasets`` and
``tinygrad_lstm.tooling.datasets`` are one module object."""

import sys

from tinygrad_lstm.tooling import datasets

sys.modules[__name__] = datasets
