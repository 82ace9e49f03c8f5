"""The built-in op plugin: importing it registers every built-in op.

Loaded through the ``tinygrad_lstm.plugins`` entry point, like any third-party plugin.
"""

from . import elementwise, fused, linalg, reduce, shape  # noqa: F401  (registration side effects)
from . import cast  # noqa: F401  (registers "cast": Tensor.to, float, double, clone)
