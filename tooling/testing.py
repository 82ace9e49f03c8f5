"""Property-based checks for op and cell authors: the public ``tinygrad_lstm.testing``.

- ``check_op`` / ``assert_op_gradients``: a registered op on hypothesis-drawn cases
  (gradients, dtypes, inputs untouched, graph freed, scalar rule; ``testing_ops``);
- ``check_cell`` / ``assert_cell_gradients``: a cell's sequence layer on drawn
  configurations (gradients; compiled against composed; ``testing_cells``);
- ``programs()`` and ``check_program``: random differentiable programs over the registered
  ops, held to central differences and torch (``testing_programs``,
  ``testing_program_check``, ``testing_torch``);
- ``cells()`` and ``compare_fused``: random recurrent cells, their ``fused=True`` layer held
  to composed (``testing_drawn_cells``, ``testing_fusion``);
- the strategies, tolerances and reports they share (``testing_strategies``,
  ``testing_report``, ``testing_rules``).

docs/testing.md shows them at work. This module only re-exports; it belongs to the tooling
layer, so it (and they) may import plugins.
"""

from __future__ import annotations

from .testing_cells import CELL_EXAMPLES, assert_cell_gradients, check_cell
from .testing_drawn_cells import FEATURES, DrawnCell, cells
from .testing_fusion import (
    FUSED_TOL,
    FusionOutcome,
    FusionWarning,
    LayerCase,
    compare_fused,
    layer_cases,
)
from .testing_ops import CaseFailure, assert_op_gradients, check_op
from .testing_program import Program
from .testing_program_check import (
    TORCH_ATOL,
    TORCH_RTOL,
    check_program,
    compare_with_torch,
    kinks,
    ties,
)
from .testing_programs import program_ops, programs
from .testing_report import (
    OP_ATOL,
    OP_RTOL,
    CheckReport,
    NotComparableError,
    discard_unless,
    measured_error,
)
from .testing_strategies import (
    SCALES,
    SPAN,
    broadcastable_shapes,
    drawn_examples,
    op_attrs,
    op_cases,
    op_values,
    scales,
    shapes,
    value_grid,
)
from .testing_torch import TORCH_OPS

__all__ = [
    "CELL_EXAMPLES",
    "FEATURES",
    "FUSED_TOL",
    "OP_ATOL",
    "OP_RTOL",
    "SCALES",
    "SPAN",
    "TORCH_ATOL",
    "TORCH_OPS",
    "TORCH_RTOL",
    "CaseFailure",
    "CheckReport",
    "DrawnCell",
    "FusionOutcome",
    "FusionWarning",
    "LayerCase",
    "NotComparableError",
    "Program",
    "assert_cell_gradients",
    "assert_op_gradients",
    "broadcastable_shapes",
    "cells",
    "check_cell",
    "check_op",
    "check_program",
    "compare_fused",
    "compare_with_torch",
    "discard_unless",
    "drawn_examples",
    "kinks",
    "ties",
    "layer_cases",
    "measured_error",
    "op_attrs",
    "op_cases",
    "op_values",
    "program_ops",
    "programs",
    "scales",
    "shapes",
    "value_grid",
]
