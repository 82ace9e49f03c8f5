"""What a checkpoint's header must hold, checked before a module or optimizer is touched.

``tinygrad_lstm.checkpoint`` reads a file's structure (its JSON header and the shape and
dtype every array declares) without reading array data, and passes it here:

- ``check_header``: every field has the type and form ``save`` writes (a damaged or
  hand-edited header is a ``CheckpointError``, never an ``AttributeError`` later);
- ``check_model_specs``: the declared weights match the module's names, shapes, dtypes;
- ``check_optimizer_state``: the optimizer state fits the optimizer and could be stepped:
  same optimizer, known hyperparameters that are finite, non-negative numbers (the
  optimizer's own constructor checks them too), one entry per parameter, each entry either
  empty (a parameter never updated) or holding exactly the buffers and counters the
  optimizer keeps after a step, with buffers shaped like the parameter and counters >= 1.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .module import Module
from .optim import Optimizer
from .tensor import Tensor

__all__ = ["CheckpointError", "check_header", "check_model_specs", "check_optimizer_state"]

Specs = dict[str, tuple[tuple[int, ...], np.dtype]]


class CheckpointError(ValueError):
    """A checkpoint file is missing, damaged, unsafe or does not fit the module/optimizer."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _spec(value: Any, key: str, where: str) -> tuple[tuple[int, ...], np.dtype]:
    ok = (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], list)
        and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in value[0])
        and isinstance(value[1], str)
    )
    if ok:
        try:
            return tuple(value[0]), np.dtype(value[1])
        except TypeError:
            pass
    raise CheckpointError(
        f"{where}: the header's entry for array {key!r} is {value!r}, not [shape, dtype]"
    )


def check_header(header: Any, fmt: str, version: int, where: str) -> dict[str, Any]:
    """``header`` with its ``arrays`` as ``{key: (shape, dtype)}`` and ``meta`` a dict;
    ``CheckpointError`` for any field that is not what ``save`` writes."""
    if not isinstance(header, dict) or header.get("format") != fmt:
        raise CheckpointError(f"{where}: not a {fmt} file")
    if header.get("version") != version:
        raise CheckpointError(
            f"{where}: format version {header.get('version')!r} is not "
            f"supported (this library reads version {version})"
        )
    arrays, meta, opt = header.get("arrays"), header.get("meta"), header.get("optimizer")
    if not isinstance(arrays, dict):
        raise CheckpointError(f"{where}: the header's 'arrays' is not a mapping")
    specs = {key: _spec(value, key, where) for key, value in arrays.items()}
    for key in specs:
        if not key.startswith(("model/", "optim/")):
            raise CheckpointError(f"{where}: array {key!r} is neither model/ nor optim/")
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise CheckpointError(
            f"{where}: the header's 'meta' is a {type(meta).__name__}, not a JSON object"
        )
    if opt is not None:
        _check_optimizer_header(opt, specs, where)
    return {**header, "arrays": specs, "meta": meta, "optimizer": opt}


def _check_optimizer_header(opt: Any, specs: Specs, where: str) -> None:
    if not (
        isinstance(opt, dict)
        and isinstance(opt.get("name"), str)
        and isinstance(opt.get("defaults"), dict)
        and isinstance(opt.get("scalars"), list)
        and all(isinstance(s, dict) for s in opt["scalars"])
    ):
        raise CheckpointError(
            f"{where}: the header's 'optimizer' is not "
            "{name: str, defaults: {...}, scalars: [{...}, ...]}"
        )
    for i, numbers in enumerate(opt["scalars"]):
        for key, value in numbers.items():
            if not _is_number(value) or not math.isfinite(value):
                raise CheckpointError(
                    f"{where}: optimizer counter {key!r} of parameter {i} "
                    f"is {value!r}, not a finite number"
                )
    for key in specs:
        if key.startswith("optim/"):
            parts = key.split("/", 2)
            if (
                len(parts) != 3
                or not parts[1].isdigit()
                or int(parts[1]) >= len(opt["scalars"])
                or not parts[2]
            ):
                raise CheckpointError(f"{where}: optimizer array {key!r} names no parameter")


def check_model_specs(specs: Specs, module: Module, where: str) -> None:
    """The declared ``model/`` arrays match ``module``'s parameters exactly."""
    declared = {k[len("model/") :]: v for k, v in specs.items() if k.startswith("model/")}
    own = dict(module.named_parameters())
    problems = []
    missing = [k for k in own if k not in declared]
    unexpected = [k for k in declared if k not in own]
    if missing:
        problems.append(f"missing keys: {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {', '.join(unexpected)}")
    for key, param in own.items():
        if key in declared:
            shape, dtype = declared[key]
            if shape != param.shape:
                problems.append(f"{key}: expected shape {param.shape}, got {shape}")
            elif dtype != param.dtype:
                problems.append(
                    f"{key}: expected dtype {param.dtype}, got {dtype} (convert "
                    "the module with .to())"
                )
    if problems:
        raise CheckpointError(
            f"{where}: the weights do not fit {type(module).__name__} "
            "(nothing was loaded):\n  " + "\n  ".join(problems)
        )


def _check_defaults(defaults: dict, optimizer: Optimizer, where: str) -> dict:
    """The optimizer's defaults updated from the header's: the same keys, a flag where the
    optimizer has a flag, a list as long as its tuples; the ranges are the optimizer's own
    checks (``Optimizer._checked``), reported as a CheckpointError."""
    cls = type(optimizer).__name__
    unknown = sorted(set(defaults) - set(optimizer.defaults))
    if unknown:
        raise CheckpointError(f"{where}: unknown {cls} hyperparameters {unknown}")
    for key, value in defaults.items():
        current = optimizer.defaults[key]
        if isinstance(current, bool):
            ok = isinstance(value, bool)
        elif isinstance(current, tuple):
            ok = isinstance(value, list) and len(value) == len(current)
        else:
            ok = _is_number(value)
        if not ok:
            raise CheckpointError(
                f"{where}: {cls} hyperparameter {key} = {value!r} is not like {current!r}"
            )
    merged = {
        **optimizer.defaults,
        **{k: tuple(v) if isinstance(v, list) else v for k, v in defaults.items()},
    }
    try:
        return optimizer._checked(merged)
    except ValueError as exc:
        raise CheckpointError(f"{where}: {exc}") from None


def _stepped_entry(optimizer: Optimizer, defaults: dict, where: str) -> dict | None:
    """The state entry this optimizer keeps for a parameter after one step, from a
    throwaway copy on a one-element parameter; None when the class cannot be rebuilt from
    its defaults (a user's optimizer with other constructor arguments)."""
    probe_param = Tensor(np.zeros(1), requires_grad=True)
    try:
        probe = type(optimizer)([probe_param], **defaults)
    except TypeError:
        return None
    except ValueError as exc:  # the optimizer's own hyperparameter checks
        raise CheckpointError(f"{where}: {exc}") from None
    probe_param.grad = np.ones(1)
    probe.step()
    return probe.state[0]


def check_optimizer_state(opt: dict | None, specs: Specs, optimizer: Optimizer, where: str) -> None:
    """The header's optimizer state (``opt``) and its declared arrays fit ``optimizer``."""
    cls = type(optimizer).__name__
    if opt is None:
        raise CheckpointError(f"{where}: holds no optimizer state to load")
    if opt["name"] != optimizer.name:
        raise CheckpointError(
            f"{where}: the optimizer state is for {opt['name']!r}, not {optimizer.name!r}"
        )
    defaults = _check_defaults(opt["defaults"], optimizer, where)
    scalars = opt["scalars"]
    if len(scalars) != len(optimizer.params):
        raise CheckpointError(
            f"{where}: the optimizer state has {len(scalars)} parameter "
            f"entries, this optimizer holds {len(optimizer.params)} parameters "
            f"({cls})"
        )
    template = _stepped_entry(optimizer, defaults, where)
    for i, (param, numbers) in enumerate(zip(optimizer.params, scalars)):
        arrays = {k.split("/", 2)[2]: v for k, v in specs.items() if k.startswith(f"optim/{i}/")}
        for name, (shape, dtype) in arrays.items():
            if shape != param.shape or dtype.kind != "f":
                raise CheckpointError(
                    f"{where}: optimizer buffer {name!r} of parameter {i} "
                    f"is {dtype} {shape}; the parameter is {param.dtype} "
                    f"{param.shape}"
                )
        if template is None or not (numbers or arrays):
            continue
        want_arrays = {k for k, v in template.items() if isinstance(v, np.ndarray)}
        want_numbers = set(template) - want_arrays
        if set(arrays) != want_arrays or set(numbers) != want_numbers:
            raise CheckpointError(
                f"{where}: the {cls} state of parameter {i} holds "
                f"{sorted(numbers)} and buffers {sorted(arrays)}; a "
                f"stepped {cls} keeps {sorted(want_numbers)} and buffers "
                f"{sorted(want_arrays)}"
            )
        for key in want_numbers:
            value = numbers[key]
            if isinstance(template[key], int) and (not isinstance(value, int) or value < 1):
                raise CheckpointError(
                    f"{where}: {cls} counter {key!r} of parameter {i} is "
                    f"{value!r}; it counts steps taken, an integer >= 1"
                )
