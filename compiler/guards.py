"""Guards: what a compiled step assumed about its cell, checked before every pass.

A step is compiled from one capture, which reads the cell's attributes as they were: a
float ``self.beta`` becomes a constant of the kernels, a mask Tensor held by the cell a
constant array, ``self.training`` picks the ops a sub-module runs. The compiled step is
valid while these are unchanged. ``Guard(cell)`` snapshots every attribute of the cell and
of its sub-modules that is not a parameter (parameters are the compiled op's inputs, read
at every pass): numbers, strings, tensors and arrays by value, other objects by identity,
plus each parameter's shape and dtype. ``guard.holds(cell)`` tells whether the snapshot
still matches; when it does not, the layer captures and compiles the step again (as
torch.compile's guards recompile), so no stale value is ever used.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_lstm import Module, Tensor

__all__ = ["Guard"]

_PLAIN = (bool, int, float, complex, str, bytes, type(None), np.generic, np.dtype)


def _frozen(value: Any) -> Any:
    """What of ``value`` a guard compares: data by value (an array as its bytes, so that a
    snapshot compares with ``==`` alone, NaN bits included), other objects by identity."""
    if isinstance(value, _PLAIN):
        return (type(value), value)
    if isinstance(value, Tensor):
        return ("tensor", id(value), value._data.dtype, value.shape, value._data.tobytes())
    if isinstance(value, np.ndarray):
        return ("array", id(value), value.dtype, value.shape, value.tobytes())
    if isinstance(value, (tuple, list)):
        return (type(value), tuple(_frozen(v) for v in value))
    if isinstance(value, dict):
        return (dict, tuple((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, np.random.Generator):
        return ("generator", id(value))  # its draws are refused at capture, not guarded
    return ("object", id(value))


def _snapshot(cell: Module) -> tuple:
    items = []
    for path, sub in cell.named_modules():
        params = sub._parameters
        for name, value in vars(sub).items():
            if name in ("_parameters", "_modules") or name in sub._modules:
                continue
            if name in params:
                value = None if value is None else ("parameter", value.shape, value.dtype)
                items.append((path, name, value))
            else:
                items.append((path, name, _frozen(value)))
        items.append((path, "<modules>", tuple(sub._modules)))
    return tuple(items)


class Guard:
    """The attributes of a cell that a compiled step depends on, as they were."""

    def __init__(self, cell: Module) -> None:
        self.snapshot = _snapshot(cell)

    def holds(self, cell: Module) -> bool:
        """True when nothing the compiled step assumed has changed."""
        # One comparison of plain tuples, in C: this runs before every pass. (A float NaN
        # equals itself here when it is the same object; a new NaN object recompiles.)
        return self.snapshot == _snapshot(cell)

    def changed(self, cell: Module) -> list[str]:
        """The dotted names of the attributes that changed (for a message)."""
        now = {(p, n): v for p, n, v in _snapshot(cell)}
        before = {(p, n): v for p, n, v in self.snapshot}
        keys = sorted(set(now) | set(before))
        return [
            f"{p + '.' if p else ''}{n}"
            for p, n in keys
            if (p, n) not in now or (p, n) not in before or now[(p, n)] != before[(p, n)]
        ]
