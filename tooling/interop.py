"""A way out to PyTorch, and back: ``to_torch(module)`` and ``from_torch(torch_module)``.

What converts (tooling layer: it imports the built-in layers; torch is imported when called):

=================================  ==================================================
tinygrad_lstm.layers               torch.nn
=================================  ==================================================
``RNN`` (tanh/relu), ``LSTM``      ``RNN``, ``LSTM`` (``proj_size`` too), ``GRU``, with
(``proj_size`` too), ``GRU``, and  every option: num_layers, bias, batch_first, dropout,
``Recurrent`` of a built-in cell   bidirectional, nonlinearity
``RNNCell``, ``LSTMCell``,         ``RNNCell``, ``LSTMCell``, ``GRUCell``
``GRUCell`` (no ``proj_size``)
``Linear``, ``Embedding``,         ``Linear``, ``Embedding`` (default options only),
``Dropout``                        ``Dropout``
``Recurrent`` of any other cell    ``<Cell>Layer``, generated: the captured step written
whose step can be captured         as PyTorch source (torch_export), same parameter
                                   names; from_torch turns it back (registered cells)
any other ``Module`` that holds    a plain ``torch.nn.Module`` holding the converted
no parameter of its own            sub-modules under the same names (and back)
=================================  ==================================================

The contract: parameter names, shapes and values move exactly (both libraries name them alike,
so ``state_dict()`` keys match), with each layer's dtype (float32 or float64), its
``training`` flag and each parameter's ``requires_grad``; a module shared under two names stays
shared, and so does a parameter tied between two layers (an embedding and the output layer
that reuses its matrix): torch's ``state_dict()`` lists a tied parameter under both names and
this library's ``named_parameters()`` once, and either way it is one parameter on the other
side. Gradients and optimizer state do not move. A container's ``forward`` is code, and code
does not convert: the container on the other side has none. Write the model class there and
pass it as ``into=``: then only the weights move, checked key by key (names, shapes, dtypes,
and which names are tied together) before anything is copied. Anything else (a cell whose
step cannot be captured, a module with parameters of its own, a torch layer with options this
library lacks) is refused with its path and type named. Which layer matches which, and the
checks, are in ``interop_match.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
from tinygrad_lstm.compiler import NotFusible
from tinygrad_lstm.layers import Recurrent

from tinygrad_lstm import Module

from .interop_match import (
    _LAYERS,
    _SUPPORTED,
    _check_fit,
    _check_ties,
    _import_torch,
    _one_dtype,
    _our_weights,
    _read_options,
    _signature,
    _supported_kind,
    _ties,
    _torch_kind,
    _torch_weights,
    _where,
)
from .torch_export import export_layer

if TYPE_CHECKING:  # torch is optional: imported only when a conversion runs
    import torch

__all__ = ["from_torch", "to_torch"]


# ---- tinygrad_lstm -> torch --------------------------------------------------------------
def to_torch(module: Module, *, into: torch.nn.Module | None = None) -> torch.nn.Module:
    """The ``torch.nn.Module`` equivalent of ``module``: same structure, options and weights.

    ``into``: an existing ``torch.nn.Module`` whose ``state_dict()`` has exactly this module's
    keys, shapes and dtypes; the weights are copied into it and it is returned. Raises
    ``ImportError`` without torch, ``TypeError`` naming an unsupported module and where it
    sits, ``StateDictError`` listing every mismatch with ``into`` (nothing is copied).
    """
    torch = _import_torch("to_torch")
    if not isinstance(module, Module):
        raise TypeError(f"to_torch: expected a tinygrad_lstm Module, got {type(module).__name__}")
    if into is None:
        return _module_to_torch(torch, module, "", {}, {})
    if not isinstance(into, torch.nn.Module):
        raise TypeError(f"to_torch: into must be a torch.nn.Module, got {type(into).__name__}")
    where = f"to_torch(into={type(into).__name__})"
    ours, theirs = _our_weights(module), _torch_weights(into)
    _check_fit(where, _signature(ours), _signature(into.state_dict().items()))
    _check_ties(where, _ties(ours), _ties(theirs))
    _copy_into_torch(torch, dict(theirs), ours)
    return into


def _module_to_torch(
    torch: ModuleType, module: Module, path: str, done: dict, tied: dict
) -> torch.nn.Module:
    """``done``: id of each converted module of ours -> its torch layer (shared in the source,
    shared in the result); ``tied``: the same for parameters, so a parameter two layers hold
    becomes one torch Parameter that both hold."""
    if id(module) in done:
        return done[id(module)]
    kind = _supported_kind(module, path)
    if kind is Recurrent:
        layer = _exported_to_torch(module, path)
        _share_tied(module.named_parameters(), dict(layer.named_parameters()), layer, tied)
    elif kind is None:
        layer = torch.nn.Module()
        for name, child in module.named_children():
            child_path = f"{path}.{name}" if path else name
            layer.add_module(name, _module_to_torch(torch, child, child_path, done, tied))
        layer.training = module.training  # its children carry their own flags
    else:
        options = _read_options(module, _LAYERS[kind])
        dtype = _one_dtype(f"to_torch: {type(module).__name__} {_where(path)}", module.parameters())
        if dtype is not None:
            options["dtype"] = getattr(torch, dtype)
        with torch.random.fork_rng(devices=[]):  # its init is overwritten: keep torch's seed
            layer = getattr(torch.nn, kind.__name__)(**options)
        _copy_into_torch(torch, dict(layer.named_parameters()), module.named_parameters())
        _share_tied(module.named_parameters(), dict(layer.named_parameters()), layer, tied)
        layer.train(module.training)
    done[id(module)] = layer
    return layer


def _exported_to_torch(module: Recurrent, path: str) -> torch.nn.Module:
    """A ``Recurrent`` of a cell torch.nn lacks, as the layer torch_export writes for it."""
    try:
        return export_layer(module)
    except NotFusible as exc:
        raise TypeError(
            f"to_torch: cannot convert {type(module).__name__} {_where(path)}: its cell "
            f"{module.cell_class.__name__} cannot be written as PyTorch source: {exc}; "
            f"supported: {_SUPPORTED}"
        ) from None


def _exported_from_torch(layer: torch.nn.Module, path: str) -> Module:
    """The ``Recurrent`` that a layer written by torch_export stands for, its weights copied."""
    origin = layer.tinygrad_lstm
    if origin["cell"] is None:
        raise TypeError(
            f"from_torch: {type(layer).__name__} {_where(path)} was exported from an "
            "unregistered cell class; build the layer and pass it as into="
        )
    options = {k: v for k, v in origin.items() if k not in ("cell", "cell_options")}
    dtype = _one_dtype(f"from_torch: {type(layer).__name__} {_where(path)}", layer.parameters())
    module = Recurrent(
        origin["cell"],
        **options,
        **origin["cell_options"],
        dtype=np.dtype(dtype or "float32"),
        rng=np.random.default_rng(0),
    )
    module.load_state_dict({k: t.detach().numpy().copy() for k, t in layer.named_parameters()})
    flags = {k: p.requires_grad for k, p in layer.named_parameters()}
    for name, param in module.named_parameters():
        param.requires_grad = flags[name]
    module.train(layer.training)
    return module


def _share_tied(
    sources: Iterable[tuple[str, Any]], targets: dict[str, Any], owner: Any, tied: dict
) -> None:
    """Make ``owner`` (a new layer, either library's) hold, for each of its parameters whose
    source an earlier layer already converted, that layer's parameter instead of its own;
    record the rest. ``targets``: the new layer's parameters by name, as ``sources``."""
    for name, source in sources:
        if id(source) in tied:
            setattr(owner, name, tied[id(source)])
        else:
            tied[id(source)] = targets[name]


def _copy_into_torch(
    torch: ModuleType, targets: dict[str, Any], sources: Iterable[tuple[str, Any]]
) -> None:
    with torch.no_grad():
        for name, param in sources:
            targets[name].copy_(torch.from_numpy(param.data))
            targets[name].requires_grad_(param.requires_grad)


# ---- torch -> tinygrad_lstm --------------------------------------------------------------
def from_torch(torch_module: torch.nn.Module, *, into: Module | None = None) -> Module:
    """The tinygrad_lstm ``Module`` equivalent of ``torch_module`` (see the module docstring).

    ``into``: an existing Module whose ``state_dict()`` has exactly the torch module's keys,
    shapes and dtypes; the weights are loaded into it and it is returned. Raises as
    ``to_torch`` does, and ``ValueError`` for a torch option this library lacks.
    """
    torch = _import_torch("from_torch")
    if not isinstance(torch_module, torch.nn.Module):
        raise TypeError(
            f"from_torch: expected a torch.nn.Module, got {type(torch_module).__name__}"
        )
    if into is None:
        return _module_from_torch(torch, torch_module, "", {}, {})
    if not isinstance(into, Module):
        raise TypeError(
            f"from_torch: into must be a tinygrad_lstm Module, got {type(into).__name__}"
        )
    where = f"from_torch(into={type(into).__name__})"
    ours = _our_weights(into)
    _check_fit(where, _signature(torch_module.state_dict().items()), _signature(ours))
    _check_ties(where, _ties(_torch_weights(torch_module)), _ties(ours))
    own = dict(into.named_parameters())  # a tied parameter under its first name only
    into.load_state_dict({k: v for k, v in _arrays(torch_module).items() if k in own})
    return into


def _arrays(layer: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: t.detach().cpu().numpy().copy() for k, t in layer.state_dict().items()}


def _module_from_torch(
    torch: ModuleType, layer: torch.nn.Module, path: str, done: dict, tied: dict
) -> Module:
    """``done`` and ``tied`` as in ``_module_to_torch``, the other way."""
    if id(layer) in done:
        return done[id(layer)]
    kind = _torch_kind(torch, layer, path)
    if kind is Recurrent:
        module = _exported_from_torch(layer, path)
        _share_tied(layer.named_parameters(), dict(module.named_parameters()), module, tied)
    elif kind is None:
        module = Module()
        for name, child in layer._modules.items():  # named_children() would skip a repeat
            if child is None:
                continue
            child_path = f"{path}.{name}" if path else name
            setattr(module, name, _module_from_torch(torch, child, child_path, done, tied))
        object.__setattr__(module, "training", layer.training)  # children carry their own
    else:
        options = _read_options(layer, _LAYERS[kind])
        dtype = _one_dtype(f"from_torch: {type(layer).__name__} {_where(path)}", layer.parameters())
        if dtype is not None:  # a throwaway generator: the init is overwritten
            options.update(dtype=np.dtype(dtype), rng=np.random.default_rng(0))
        module = kind(**options)
        module.load_state_dict(_arrays(layer))
        flags = {k: p.requires_grad for k, p in layer.named_parameters()}
        for name, param in module.named_parameters():
            param.requires_grad = flags[name]
        _share_tied(layer.named_parameters(), dict(module.named_parameters()), module, tied)
        module.train(layer.training)
    done[id(layer)] = module
    return module
