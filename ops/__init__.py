"""The built-in op plugin: importing it registers every built-in op.

Loaded through the ``tinygrad_lstm.plugins`` entry point, like any third-party plugin.
"""

from . import cast, elementwise, fused, linalg, reduce, shape  # noqa: F401  (they register ops)
