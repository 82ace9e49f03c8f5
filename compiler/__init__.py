"""The cell compiler: a recurrent cell's step, written in registered ops, run as one fused
op per (layer, direction) pass, with generated Numba kernels forward and backward.

``lower(cell, input_size, dtype)`` is the whole pipeline (pipeline.py lists its stages);
``compiled_cell`` keeps one per cell and recompiles when a guard fails. ``NotFusible``
says why a step cannot be compiled; ``CompilerError`` names the compiler stage that failed.
The composed layer is the oracle every compiled cell is tested against.
"""

from .errors import CompilerError, NotFusible
from .pipeline import CompiledCell, compiled_cell, lower

__all__ = ["CompiledCell", "CompilerError", "NotFusible", "compiled_cell", "lower"]
