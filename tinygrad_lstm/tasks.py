"""The public path of tooling/tasks.py: ``tinygrad_lstm.tasks`` and
``tinygrad_lstm.tooling.tasks`` are one module object."""

import sys

from tinygrad_lstm.tooling import tasks

sys.modules[__name__] = tasks
