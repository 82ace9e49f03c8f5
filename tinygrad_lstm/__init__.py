"""tinygrad-lstm: a small autograd engine whose recurrent layers are composed from primitives.

Importing the package loads every plugin declared under the ``tinygrad_lstm.plugins``
entry-point group, the built-in ops and layers included.
"""

from . import functional
from .autograd import Context, Function, enable_grad, is_grad_enabled, no_grad, scope, unbroadcast
from .functional import *  # noqa: F403  (the names in functional.__all__)
from .module import Module, Parameter, default_rng, manual_seed
from .registry import (
    CellInfo,
    OpInfo,
    PluginWarning,
    RegistryError,
    cell,
    cell_info,
    list_cells,
    list_ops,
    load_plugins,
    op,
    op_info,
    register_cell,
    register_op,
)
from .tensor import ShapeError, Tensor, TensorLike

__version__ = "0.1.0"

__all__ = [
    "CellInfo",
    "Context",
    "Function",
    "Module",
    "OpInfo",
    "Parameter",
    "PluginWarning",
    "RegistryError",
    "ShapeError",
    "Tensor",
    "TensorLike",
    "cell",
    "cell_info",
    "default_rng",
    "enable_grad",
    "is_grad_enabled",
    "list_cells",
    "list_ops",
    "load_plugins",
    "manual_seed",
    "no_grad",
    "op",
    "op_info",
    "register_cell",
    "register_op",
    "scope",
    "unbroadcast",
]
__all__ += functional.__all__  # the ops' function forms and the tensor factories

load_plugins()
