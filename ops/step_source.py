"""The rule rewriter of generated kernel modules, for the cell compiler: it lives in
ops/rule_source.py (ops' own ufuncs are generated with it too), and is imported from there."""

from .rule_source import FAST_FLOAT32, FUNCTIONS, Module, names_in

__all__ = ["FAST_FLOAT32", "FUNCTIONS", "Module", "names_in"]
