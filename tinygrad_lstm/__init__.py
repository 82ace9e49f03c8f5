"""tinygrad-lstm: a small autograd engine whose recurrent layers are composed from primitives.

Importing the package loads every plugin declared under the ``tinygrad_lstm.plugins``
entry-point group, the built-in ops and layers included.
"""

from .registry import (CellInfo, OpInfo, PluginWarning, RegistryError, cell, cell_info,
                       list_cells, list_ops, load_plugins, op, op_info, register_cell,
                       register_op)
from .tensor import ShapeError, Tensor, ones, randn, tensor, zeros, zeros_like
from .autograd import (Context, Function, enable_grad, is_grad_enabled, no_grad, scope,
                       unbroadcast)
from .functional import (add, concat, div, exp, log, log_softmax, logsumexp, matmul, max, mean,
                         mul, neg, pow, relu, reshape, sigmoid, softmax, split, stack, sub, sum,
                         tanh, transpose)
from .module import Module, Parameter, default_rng, manual_seed

__version__ = "0.1.0"

__all__ = [
    "Tensor", "ShapeError", "tensor", "zeros", "ones", "randn", "zeros_like",
    "Function", "Context", "no_grad", "enable_grad", "is_grad_enabled", "unbroadcast", "scope",
    "register_op", "register_cell", "op", "op_info", "list_ops", "cell", "cell_info",
    "list_cells", "load_plugins", "OpInfo", "CellInfo", "RegistryError", "PluginWarning",
    "add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sigmoid", "tanh", "relu",
    "matmul", "concat", "stack", "split", "reshape", "transpose", "sum", "mean", "max",
    "logsumexp", "softmax", "log_softmax",
    "Module", "Parameter", "manual_seed", "default_rng",
]

load_plugins()
