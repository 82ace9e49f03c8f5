"""How a layer of this library matches one of ``torch.nn``, for ``interop.py``: which classes
correspond and with which constructor options, the dtypes that convert, and the check that
two models fit before ``into=`` copies anything (every name, shape, dtype, and which names
are tied to one parameter). Tooling layer; torch is imported only when a conversion runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:  # torch is optional: imported only when a conversion runs
    import torch

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


def _ties(named_tensors: Iterable[tuple[str, Any]]) -> set[tuple[str, ...]]:
    """The groups of names (two or more) that reach one and the same parameter."""
    groups: dict[int, list[str]] = {}
    for name, tensor in named_tensors:
        groups.setdefault(id(tensor), []).append(name)
    return {tuple(sorted(names)) for names in groups.values() if len(names) > 1}


def _check_ties(where: str, source: set[tuple[str, ...]], target: set[tuple[str, ...]]) -> None:
    """A StateDictError when the two models tie different names together: copying values
    would work once, but the two would train apart."""
    if source != target:

        def listed(ties: set[tuple[str, ...]]) -> str:
            return "; ".join(" = ".join(group) for group in sorted(ties)) or "none"

        raise StateDictError(
            f"{where}: the models tie different weights together (nothing was copied): "
            f"source ties {listed(source)}, target ties {listed(target)}"
        )


def _our_weights(module: Module, prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted name, Parameter) under every name torch's ``state_dict()`` would give it: a
    layer shared under two names, or a parameter tied between two layers, appears once per
    name (``named_parameters()`` lists each object once)."""
    own = any(p is not None for p in module._parameters.values())
    if isinstance(module, (Recurrent, *_LAYERS)) or own:
        return [(f"{prefix}{n}", p) for n, p in module.named_parameters()]
    found = []
    for name, child in module.named_children():
        found += _our_weights(child, f"{prefix}{name}.")
    return found


def _torch_weights(layer: torch.nn.Module) -> list[tuple[str, Any]]:
    return list(layer.named_parameters(remove_duplicate=False))


def _supported_kind(module: Module, path: str) -> type | None:
    """The key of ``_LAYERS`` that ``module`` converts as (``Recurrent`` for another cell,
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
