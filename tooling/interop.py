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
shared. Gradients and optimizer state do not move. A container's ``forward`` is code, and code
does not convert: the container on the other side has none. Write the model class there and
pass it as ``into=``: then only the weights move, checked key by key (names, shapes, dtypes)
before anything is copied. Anything else (a cell whose step cannot be captured, a module with
parameters of its own, a torch layer with options this library lacks) is refused with its
path and type named.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
from tinygrad_lstm.compiler import NotFusible
from tinygrad_lstm.layers import (
    GRU,
    LSTM,
    RNN,
    Dropout,
    Embedding,
    GRUCell,
    Linear,
    LSTMCell,
    Recurrent,
    RNNCell,
)

from tinygrad_lstm import Module
from tinygrad_lstm.module import StateDictError

from .torch_export import export_layer

if TYPE_CHECKING:  # torch is optional: imported only when a conversion runs
    import torch

__all__ = ["from_torch", "to_torch"]

# Each supported layer of ours -> the constructor options it shares with the torch.nn class of
# the same name, read from either side by attribute name (see _read_options).
_RECURRENT = (
    "input_size",
    "hidden_size",
    "num_layers",
    "bias",
    "batch_first",
    "dropout",
    "bidirectional",
)
_LAYERS: dict[type, tuple[str, ...]] = {
    RNN: (*_RECURRENT, "nonlinearity"),
    LSTM: (*_RECURRENT, "proj_size"),
    GRU: _RECURRENT,
    RNNCell: ("input_size", "hidden_size", "bias", "nonlinearity"),
    LSTMCell: ("input_size", "hidden_size", "bias"),
    GRUCell: ("input_size", "hidden_size", "bias"),
    Linear: ("in_features", "out_features", "bias"),
    Embedding: ("num_embeddings", "embedding_dim"),
    Dropout: ("p",),
}
_RECURRENT_OF_CELL = {RNNCell: RNN, LSTMCell: LSTM, GRUCell: GRU}
# torch options our layers lack, which change results or gradients: refused unless default.
_TORCH_ONLY_DEFAULTS = {
    "Embedding": {
        "padding_idx": None,
        "max_norm": None,
        "scale_grad_by_freq": False,
        "sparse": False,
    }
}
_SUPPORTED = (
    "RNN, LSTM, GRU, RNNCell, LSTMCell, GRUCell, Linear, Embedding, Dropout, Recurrent of "
    "a cell whose step can be captured, or a container without parameters of its own"
)
_FLOAT_DTYPES = ("float32", "float64")


def _import_torch(caller: str) -> ModuleType:
    try:
        import torch
    except ImportError:
        raise ImportError(
            f"tinygrad_lstm.interop.{caller} needs PyTorch, which is not "
            "installed: pip install torch"
        ) from None
    return torch


def _where(path: str) -> str:
    return f"at {path!r}" if path else "at the top"


def _read_options(layer: Module | torch.nn.Module, names: tuple[str, ...]) -> dict[str, Any]:
    """The constructor options of ``layer`` (ours or torch's); ``bias`` as a bool."""
    options = {}
    for name in names:
        if name in getattr(layer, "cell_options", {}):  # our Recurrent keeps its cell's options
            options[name] = layer.cell_options[name]
        elif name == "bias" and hasattr(layer, "bias_ih"):  # a cell: its bias is two vectors
            options[name] = layer.bias_ih is not None
        elif hasattr(layer, name):
            value = getattr(layer, name)
            options[name] = (
                value if name != "bias" or isinstance(value, bool) else value is not None
            )
    return options


def _one_dtype(where: str, arrays: Iterable[Any]) -> str | None:
    dtypes = {str(a.dtype).removeprefix("torch.") for a in arrays}
    bad = dtypes - set(_FLOAT_DTYPES)
    if bad or len(dtypes) > 1:
        raise TypeError(
            f"{where}: parameters of dtype {', '.join(sorted(dtypes))}; only one "
            "of float32 or float64 converts (use .float() or .double() first)"
        )
    return dtypes.pop() if dtypes else None


def _check_fit(where: str, source: dict, target: dict) -> None:
    """One StateDictError listing every key, shape and dtype that differs, or nothing."""
    problems = [f"missing in the target: {k}" for k in source if k not in target]
    problems += [f"not in the source: {k}" for k in target if k not in source]
    problems += [
        f"{k}: source {source[k][0]} {source[k][1]}, target {target[k][0]} {target[k][1]}"
        for k in source
        if k in target and source[k] != target[k]
    ]
    if problems:
        raise StateDictError(
            f"{where}: the models do not match (nothing was copied):\n  " + "\n  ".join(problems)
        )


def _signature(named_tensors: Iterable[tuple[str, Any]]) -> dict[str, tuple]:
    return {k: (tuple(t.shape), str(t.dtype).removeprefix("torch.")) for k, t in named_tensors}


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
        return _module_to_torch(torch, module, "", {})
    if not isinstance(into, torch.nn.Module):
        raise TypeError(f"to_torch: into must be a torch.nn.Module, got {type(into).__name__}")
    _check_fit(
        f"to_torch(into={type(into).__name__})",
        _signature(module.named_parameters()),
        _signature(into.state_dict().items()),
    )
    _copy_into_torch(torch, into, module)
    return into


def _module_to_torch(torch: ModuleType, module: Module, path: str, done: dict) -> torch.nn.Module:
    if id(module) in done:  # shared in the source, shared in the result
        return done[id(module)]
    kind = _supported_kind(module, path)
    if kind is Recurrent:
        try:
            layer = export_layer(module)
        except NotFusible as exc:
            raise TypeError(
                f"to_torch: cannot convert {type(module).__name__} {_where(path)}: its cell "
                f"{module.cell_class.__name__} cannot be written as PyTorch source: {exc}; "
                f"supported: {_SUPPORTED}"
            ) from None
    elif kind is None:
        layer = torch.nn.Module()
        for name, child in module.named_children():
            child_path = f"{path}.{name}" if path else name
            layer.add_module(name, _module_to_torch(torch, child, child_path, done))
        layer.training = module.training  # its children carry their own flags
    else:
        options = _read_options(module, _LAYERS[kind])
        dtype = _one_dtype(f"to_torch: {type(module).__name__} {_where(path)}", module.parameters())
        if dtype is not None:
            options["dtype"] = getattr(torch, dtype)
        with torch.random.fork_rng(devices=[]):  # its init is overwritten: keep torch's seed
            layer = getattr(torch.nn, kind.__name__)(**options)
        _copy_into_torch(torch, layer, module)
        layer.train(module.training)
    done[id(module)] = layer
    return layer


def _supported_kind(module: Module, path: str) -> type | None:
    """The key of ``_LAYERS`` that ``module`` converts as (``Recurrent`` for a custom cell,
    written as PyTorch source by torch_export); None for a container."""
    kind = type(module)
    if kind is Recurrent:
        kind = _RECURRENT_OF_CELL.get(module.cell_class, Recurrent)
    why = None
    if kind is Recurrent:
        return Recurrent
    elif kind is LSTMCell and module.proj_size:
        why = "proj_size > 0 (torch.nn.LSTMCell has no projection; torch.nn.LSTM has)"
    elif kind in _LAYERS:
        return kind
    elif isinstance(module, (Recurrent, *_LAYERS)):
        why = "a subclass of a supported layer, whose forward may differ"
    elif any(p is not None for p in module._parameters.values()):
        own = [n for n, p in module._parameters.items() if p is not None]
        why = f"it holds parameters of its own ({', '.join(own)})"
    else:
        return None
    raise TypeError(
        f"to_torch: cannot convert {type(module).__name__} {_where(path)}: {why}; "
        f"supported: {_SUPPORTED}"
    )


def _copy_into_torch(torch: ModuleType, target: torch.nn.Module, source: Module) -> None:
    targets = dict(target.named_parameters())
    with torch.no_grad():
        for name, param in source.named_parameters():
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
        return _module_from_torch(torch, torch_module, "", {})
    if not isinstance(into, Module):
        raise TypeError(
            f"from_torch: into must be a tinygrad_lstm Module, got {type(into).__name__}"
        )
    _check_fit(
        f"from_torch(into={type(into).__name__})",
        _signature(torch_module.state_dict().items()),
        _signature(into.named_parameters()),
    )
    into.load_state_dict(_arrays(torch_module))
    return into


def _arrays(layer: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: t.detach().cpu().numpy().copy() for k, t in layer.state_dict().items()}


def _module_from_torch(torch: ModuleType, layer: torch.nn.Module, path: str, done: dict) -> Module:
    if id(layer) in done:
        return done[id(layer)]
    kind = _torch_kind(torch, layer, path)
    if kind is Recurrent:
        module = _exported_from_torch(layer, path)
    elif kind is None:
        module = Module()
        for name, child in layer._modules.items():  # named_children() would skip a repeat
            if child is None:
                continue
            child_path = f"{path}.{name}" if path else name
            setattr(module, name, _module_from_torch(torch, child, child_path, done))
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
        module.train(layer.training)
    done[id(layer)] = module
    return module


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


def _torch_kind(torch: ModuleType, layer: torch.nn.Module, path: str) -> type | None:
    """Our class that ``layer`` converts to (``Recurrent`` for a layer torch_export wrote);
    None for a container."""
    if isinstance(getattr(type(layer), "tinygrad_lstm", None), dict):
        return Recurrent
    name = type(layer).__name__
    kind = next((k for k in _LAYERS if type(layer) is getattr(torch.nn, k.__name__)), None)
    if kind is not None:
        for option, default in _TORCH_ONLY_DEFAULTS.get(name, {}).items():
            if getattr(layer, option) != default:
                raise ValueError(
                    f"from_torch: {name} {_where(path)} has {option}="
                    f"{getattr(layer, option)!r}; tinygrad_lstm's {name} has no "
                    f"such option (only {option}={default!r} converts)"
                )
        return kind
    own = [n for n, _ in layer.named_parameters(recurse=False)]
    own += [n for n, _ in layer.named_buffers(recurse=False)]
    if own:
        raise TypeError(
            f"from_torch: cannot convert {name} {_where(path)}: it holds "
            f"parameters or buffers of its own ({', '.join(own)}); supported: "
            f"{_SUPPORTED}"
        )
    return None
