"""backward(): the walk from an output back to the leaves, as DeZero's ``Variable.backward``.

Below tensor.py in the engine (it reads a Tensor's ``_data``, ``_node`` and ``grad`` but
imports no Tensor), so ``Tensor.backward`` calls it with no import inside a function.

Seed the output's gradient; visit the nodes in one iterative topological order (no
recursion, linear in the graph size); at each node take the gradients summed for its
outputs, run its op's backward, fit each input's gradient to that input's shape
(``unbroadcast``) and add it to what that input has gathered; release the node's saved
arrays unless ``retain_graph``; last, write the leaves' ``.grad``. Before the walk, when
anything was written in place since the graph was recorded, every node's saved arrays are
checked against those writes (``versions``), so a refusal leaves the graph and every
``.grad`` as they were.
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING, Any

import numpy as np

from . import versions

if TYPE_CHECKING:  # tensor.py imports this module: Tensor is only named in annotations here
    from collections.abc import Iterable

    from .autograd import Context, Edge
    from .tensor import Tensor, TensorLike

__all__ = ["ShapeError", "backward", "gc_paused", "unbroadcast"]


class ShapeError(ValueError):
    """Input shapes an op or layer cannot work with; the message names the op and shapes."""


class gc_paused:
    """Context manager: Python's cyclic garbage collector stays off inside.

    The graph holds no reference cycles, so reference counting frees it; the collector,
    triggered by the thousands of nodes an unrolled sequence allocates, would only scan
    (a full scan is costly with large modules such as torch imported). Sequence layers record
    their time loop, and backward() runs, inside this. Re-entrant; restores the old state.
    """

    def __enter__(self) -> gc_paused:
        self._was_enabled = gc.isenabled()
        gc.disable()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._was_enabled:
            gc.enable()


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes that broadcasting added or stretched, giving ``shape``."""
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def backward(root: Tensor, grad: TensorLike | None = None, retain_graph: bool = False) -> None:
    """Accumulate d(root)/d(leaf) * grad into ``.grad`` of every leaf that requires grad."""
    with gc_paused():
        _backward(root, grad, retain_graph)


def _backward(root: Tensor, grad: TensorLike | None, retain_graph: bool) -> None:
    """Seed, walk the nodes in topological order, write the leaves' gradients (DeZero's loop)."""
    grad = _seed_grad(root, grad)
    leaves: dict[int, _LeafGrad] = {}
    if root._node is None:
        _to_leaf(leaves, root, grad)
    else:
        order = _topological_order(root._node)
        _seed_node(order, root, grad)
        for node in order:
            grads = node.grads
            if grads is None:  # no gradient reached this node
                continue
            node.grads = node.owned = None
            if node.hooks or node.retained:
                _run_output_hooks(node, grads)
            in_grads = node.fn.backward(node, *grads)
            if type(in_grads) is not tuple:
                in_grads = (in_grads,)
            for t, g, need in zip(node.inputs, in_grads, node.needs_input_grad):
                if g is None or not need:
                    continue
                if type(g) is not np.ndarray or g.shape != t.shape:
                    g = _fit_to_input(node, t, g)
                if t._node is None:
                    _to_leaf(leaves, t, g)
                else:
                    _accumulate(t._node, t._idx, g)
            if not retain_graph:
                node.saved, node.inputs = (), None
    _write_leaf_grads(leaves.values())


def _seed_grad(root: Tensor, grad: TensorLike | None) -> np.ndarray:
    """The gradient backward starts from: ``grad`` checked against ``root``, or ones."""
    if not root.requires_grad:
        raise RuntimeError(
            "backward: this tensor does not require grad (no input that "
            "requires grad went into it, or it was made under no_grad())"
        )
    if grad is None:
        if root.size != 1:
            raise RuntimeError(
                f"backward: grad can be implied only for a scalar output; this "
                f"output has shape {root.shape}, so pass grad= of that shape"
            )
        return np.ones_like(root._data)
    # A Tensor's array, or an array-like as it is.
    grad = np.asarray(getattr(grad, "_data", grad), dtype=root.dtype)
    if grad.shape != root.shape:
        raise ShapeError(f"backward: grad has shape {grad.shape}, expected {root.shape}")
    return grad


def _topological_order(root: Context) -> list[Context]:
    """Nodes reachable from ``root``, every node after all nodes that consume it.

    Reverse creation order is such an order (an op's inputs are made before its output),
    so one sweep collects the reachable nodes and a sort orders them.
    """
    reached = {root}
    stack = [root]
    while stack:
        node = stack.pop()
        if node.inputs is None:
            raise RuntimeError(
                f"backward: the graph through op {node.name!r} was already released by an "
                "earlier backward(); call backward(retain_graph=True) the first time to "
                "backpropagate through it again"
            )
        for t in node.inputs:
            parent = t._node
            if parent is not None and parent not in reached:
                reached.add(parent)
                stack.append(parent)
    return sorted(reached, key=_creation_key, reverse=True)


def _creation_key(node: Context) -> int:
    return node._seq


def _seed_node(order: list[Context], root: Tensor, grad: np.ndarray) -> None:
    """Refuse a graph whose saved arrays were changed in place since it was recorded (before
    anything is released), clear what an interrupted backward may have left on the nodes,
    then seed the root's node with ``grad``."""
    if versions.writes_since(order[-1]._seq):
        versions.check_saved(order)
    for node in order:
        node.grads = node.owned = None
    _accumulate(root._node, root._idx, grad)


def _run_output_hooks(node: Context, grads: list) -> None:
    """Pass ``node``'s output gradients through their hooks (in place in ``grads``) and
    give each retained output its ``.grad``."""
    if node.hooks:
        for i, hooks in node.hooks.items():
            if grads[i] is not None:
                grads[i] = _run_hooks(hooks, grads[i])
    if node.retained:
        for i, ref in node.retained.items():
            t = ref()
            if t is not None and grads[i] is not None:
                t.grad = grads[i].copy() if t.grad is None else np.asarray(t.grad + grads[i])


def _run_hooks(hooks: list, grad: np.ndarray) -> np.ndarray:
    """``grad`` passed through each hook in turn; a hook's non-None return replaces it and
    must have its shape."""
    for hook in hooks:
        replaced = hook(grad)
        if replaced is not None:
            replaced = np.asarray(getattr(replaced, "_data", replaced))
            if replaced.shape != grad.shape:
                raise ShapeError(
                    f"backward: hook {getattr(hook, '__qualname__', hook)!r} "
                    f"returned a gradient of shape {replaced.shape} for a tensor "
                    f"of shape {grad.shape}"
                )
            grad = replaced
    return grad


def _fit_to_input(node: Context, t: Tensor | Edge, g: Any) -> np.ndarray:
    """``g`` as an array of input ``t``'s shape (summing broadcast axes), or a ShapeError."""
    if type(g) is not np.ndarray:
        g = np.asarray(g, dtype=t.dtype)
    shape = t.shape
    if g.shape != shape:
        g = unbroadcast(g, shape)
        if g.shape != shape:
            raise ShapeError(
                f"backward of {node.name}: the gradient for an input of "
                f"shape {shape} has shape {g.shape}"
            )
    return g


class _LeafGrad:
    """A leaf's gradient while backward runs: one slot, summed by the rule nodes use."""

    __slots__ = ("grads", "owned", "tensor")
    n_out = 1

    def __init__(self, tensor: Tensor) -> None:
        self.tensor, self.grads, self.owned = tensor, None, None


def _to_leaf(leaves: dict, t: Tensor, g: np.ndarray) -> None:
    holder = leaves.get(id(t))
    if holder is None:
        holder = leaves[id(t)] = _LeafGrad(t)
    _accumulate(holder, 0, g)


def _accumulate(holder: Context | _LeafGrad, i: int, g: np.ndarray) -> None:
    """Add ``g`` to gradient ``i`` of ``holder`` (a node's outputs, or a leaf).

    The one rule: the first gradient is kept as it is (most tensors are used once, so no
    copy); the second makes a new array, their sum, which the holder then owns; later ones
    are added into that owned array in place. An array backward did not make is never
    written into (it may be an op's saved array or the caller's ``grad``).
    """
    grads = holder.grads
    if grads is None:
        grads = holder.grads = [None] * holder.n_out
    current = grads[i]
    if current is None:
        grads[i] = g
    elif holder.owned is not None and i in holder.owned:
        current += g
    else:
        # asarray: the sum of two 0-d arrays is a NumPy scalar, which a later ``+=``
        # would only rebind; the holder must own an array it can add into.
        grads[i] = np.asarray(current + g)
        if holder.owned is None:
            holder.owned = set()
        holder.owned.add(i)


def _write_leaf_grads(holders: Iterable[_LeafGrad]) -> None:
    """Run each leaf's hooks, then add its gradient into ``.grad`` (in the leaf's dtype).

    Every gradient is made and checked before any ``.grad`` changes, so a failing hook
    leaves all of them as they were.
    """
    final = []
    for holder in holders:
        t, g, owned = holder.tensor, holder.grads[0], holder.owned is not None
        if t._hooks:
            g, owned = _run_hooks(t._hooks, g), False
        if g.shape != t._data.shape:
            raise ShapeError(
                f"backward: the gradient for a leaf of shape {t._data.shape} has "
                f"shape {g.shape} (was its .data replaced by an array of another "
                "shape after the forward?)"
            )
        if g.dtype != t._data.dtype:
            g, owned = g.astype(t._data.dtype), True
        final.append((t, g, owned))
    for t, g, owned in final:
        if t.grad is None:
            t.grad = g if owned else g.copy()
        else:
            t.grad += g
