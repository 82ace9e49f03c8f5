"""The built-in op plugin: importing it registers every built-in op.

Loaded through the ``tinygrad_lstm.plugins`` entry point, like any third-party plugin.
"""

from . import (  # noqa: F401  (registration side effects)
    activations,
    cast,
    elementwise,
    fused,
    linalg,
    reduce,
    selection,
    shape,
)
