"""The built-in op plugin: importing it registers every built-in op.

Loaded through the ``tinygrad_lstm.plugins`` entry point, like any third-party plugin.
``compile_all()`` builds every Numba kernel the built-in ops run, ahead of first use.
"""

from . import (  # noqa: F401  (registration side effects)
    activations,
    cast,
    elementwise,
    fused,
    linalg,
    recurrent_kernels,
    reduce,
    rule_function,
    selection,
    shape,
)


def compile_all() -> None:
    """Build (or load from the on-disk cache) every kernel of the built-in ops now: each
    rule op's ufuncs in float32 and float64 (ops/rule_function.py), and the recurrent
    kernels. Kernels are otherwise built on first use (importing tinygrad_lstm must not
    import numba); a benchmark calls this first, so no compilation lands in a timed region."""
    rule_function.compile_kernels()
    recurrent_kernels.compile_all()
