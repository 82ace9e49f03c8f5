"""In-place writes, so backward can tell when an array an op saved has been overwritten.

An op saves arrays for its backward (``ctx.save_for_backward``). If one of them is changed in
place before backward runs (``optimizer.step()`` before ``loss.backward()``), the gradient
would be computed from the new values, silently wrong. PyTorch refuses with "modified by an
inplace operation"; so does this engine, by the same idea: a version counter per array,
bumped by every in-place write that goes through the library, checked in backward.

One clock orders both events: every graph node takes a tick when it is recorded
(``Context._seq``), every tracked write takes a tick when it happens. A saved array was
overwritten after its op ran exactly when its last write's tick is larger than the node's.
So forward does no extra work at all; backward checks the nodes' saved arrays only when some
write happened after the oldest node of the graph (in a plain training loop, never).

Writes are recorded per *owner* array (``a.base`` for a view, else ``a`` itself): writing a
parameter counts for every view of it (``W.T``, which a matmul saves), and for every Tensor
that shares it (``detach()``, ``Tensor(t)``).

Tracked (goes through the library): assigning ``Tensor.data`` the array it already holds,
which is what an augmented assignment does (``p.data -= lr * g``: the optimizers, and user
code written that way); ``Module.load_state_dict`` (copies into the parameters' arrays);
``Tensor._mark_written()``. Not tracked: writing into the array itself (``x.data[:] += 1``,
``np.copyto(x.data, ...)``, ``x.numpy()[0] = 1``): NumPy does not tell anyone. Assigning a
*new* array to ``.data`` changes nothing an op saved (they hold the old array), so there is
nothing to detect; nor do ``t += 1`` (a Tensor has no in-place operators: the name is bound
to a new tensor ``t + 1``) and ``zero_grad()`` (it sets ``.grad`` to None, writing no data).
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # autograd imports this module: Context is only named in annotations here
    from .autograd import Context

__all__ = ["check_saved", "clock", "note_write", "version", "writes_since"]

# Ticks for recorded nodes and for writes (see the module docstring).
clock = itertools.count()
_last_tick = -1
# id(owner array) -> [version, tick of the last write, tick of the write before it]
_log: dict[int, list[int]] = {}


def _owner(array: np.ndarray) -> np.ndarray:
    base = array.base
    return array if base is None else base


def note_write(array: np.ndarray) -> None:
    """Record an in-place write into ``array`` (and so into its owner and all its views)."""
    global _last_tick
    owner = _owner(array)
    key = id(owner)
    entry = _log.get(key)
    _last_tick = tick = next(clock)
    if entry is not None:
        entry[0] += 1
        entry[2], entry[1] = entry[1], tick
        return
    _log[key] = [1, tick, -1]
    try:  # forget the entry with the array; its id may be reused by a later one
        weakref.finalize(owner, _log.pop, key, None)
    except TypeError:  # an owner that takes no weak reference (bytes, mmap) keeps its entry
        pass


def version(array: np.ndarray) -> int:
    """How many tracked writes ``array``'s owner has had (PyTorch's ``t._version``)."""
    entry = _log.get(id(_owner(array)))
    return 0 if entry is None else entry[0]


def writes_since(tick: int) -> bool:
    """True when some tracked write happened after ``tick``."""
    return _last_tick > tick


def check_saved(nodes: Iterable[Context]) -> None:
    """Raise if an array one of ``nodes`` saved for backward was written after that node was
    recorded.

    The message names the op, which saved array (and the input it is, for a leaf input),
    its shape and dtype, its version now and the version the op saw.
    """
    for node in nodes:
        _check_node(node)


def _check_node(node: Context) -> None:
    for k, array in enumerate(node.saved):
        if type(array) is not np.ndarray:
            continue
        entry = _log.get(id(_owner(array)))
        if entry is None or entry[1] < node._seq:
            continue
        now = entry[0]
        seen = f"version {now - 1}" if entry[2] < node._seq else f"version {now - 2} or earlier"
        raise RuntimeError(
            f"backward of {node.name}: one of the arrays it saved for backward (saved array "
            f"{k}, shape {array.shape}, {array.dtype}{_which(node, array)}) has been modified "
            f"by an inplace operation: it is at version {now}, {node.name} saw {seen}. Run "
            "backward() before changing it (optimizer.step(), load_state_dict, p.data -= ...), "
            "or compute on a copy"
        )


def _which(node: Context, array: np.ndarray) -> str:
    """``", input i of the op"`` when ``array`` is (a view of) a leaf input's array."""
    for i, t in enumerate(node.inputs or ()):
        data = getattr(t, "_data", None)
        if data is not None and _owner(data) is _owner(array):
            return f", input {i} of the op"
    return ""
