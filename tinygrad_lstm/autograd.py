"""Reverse-mode autograd: Function, its Context (the graph node), backward() and no_grad.

The graph is a DAG of Context nodes. An output tensor holds its node strongly; the node
holds its inputs (leaf tensors as they are, op outputs as an ``Edge`` to the node that made
them, without their array) and whatever arrays the op saved, but never its own outputs, so
the graph has no reference cycles and is freed by reference counting alone (Python's
cyclic collector would otherwise be triggered by every time step of a long sequence).

backward() walks the nodes in one iterative topological order (no recursion, linear in the
graph size), sums the gradients that fan in to a tensor, sums broadcast gradients back to
each input's shape in one place (``unbroadcast``), and releases every node's saved arrays
as it goes unless ``retain_graph=True``.
"""

from __future__ import annotations

import functools
import gc
import itertools
import weakref

import numpy as np

from .tensor import ShapeError, Tensor, float_dtype_error

__all__ = [
    "Context",
    "Function",
    "ShapeError",
    "backward",
    "enable_grad",
    "gc_paused",
    "is_grad_enabled",
    "no_grad",
    "scope",
    "unbroadcast",
]

_grad_enabled = True
_scope: str | None = None
_creation_order = itertools.count()


class scope:
    """Label every node recorded inside: ``with scope("layer0/forward/t3"): ...``.

    The label is kept on each node as ``ctx.scope`` so tools such as ``viz.to_dot`` can
    group an unrolled graph by time step, layer and direction. Scopes nest with "/".
    """

    def __init__(self, label: str):
        self.label = label

    def __enter__(self):
        global _scope
        self._prev = _scope
        _scope = self.label if _scope is None else f"{_scope}/{self.label}"
        return self

    def __exit__(self, *exc):
        global _scope
        _scope = self._prev


class gc_paused:
    """Context manager: Python's cyclic garbage collector stays off inside.

    The graph holds no reference cycles, so reference counting frees it; the collector,
    triggered by the thousands of nodes an unrolled sequence allocates, would only scan
    (with torch imported, one full scan cost ~0.2 s at T=500). Sequence layers record
    their time loop, and backward() runs, inside this. Re-entrant; restores the old state.
    """

    def __enter__(self):
        self._was_enabled = gc.isenabled()
        gc.disable()
        return self

    def __exit__(self, *exc):
        if self._was_enabled:
            gc.enable()


def is_grad_enabled() -> bool:
    """True when new ops are being recorded for backward."""
    return _grad_enabled


class _GradMode:
    _enabled = True

    def __enter__(self):
        global _grad_enabled
        self._prev = _grad_enabled
        _grad_enabled = self._enabled

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._prev

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with type(self)():
                return func(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):
    """Context manager and decorator: ops inside record no graph (inference, optimizer steps)."""

    _enabled = False


class enable_grad(_GradMode):
    """Context manager and decorator: record the graph again inside a ``no_grad`` block."""

    _enabled = True


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes that broadcasting added or stretched, giving ``shape``."""
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


class Context:
    """One node of the graph, and the ``ctx`` an op's forward and backward share.

    An op stores what its backward needs with ``ctx.save_for_backward(*arrays)`` (read back
    as ``ctx.saved``) or as plain attributes (``ctx.axis = axis``).
    ``ctx.needs_input_grad[i]`` tells whether input i wants a gradient at all.
    """

    # Defaults live on the class: a node is made for every recorded op, so its __init__
    # sets only what differs from node to node.
    saved: tuple = ()
    inputs: tuple | None = None
    n_out = 1
    grads: list | None = None      # gradients of the outputs, during backward
    owned: set | None = None       # output indices whose grad array we allocated
    hooks: dict | None = None      # output index -> [hook]
    retained: dict | None = None   # output index -> weakref to the output tensor
    released = False

    def __init__(self, fn: type, needs_input_grad: tuple[bool, ...]):
        self.fn = fn
        self.needs_input_grad = needs_input_grad
        self.scope = _scope
        # Creation order is a topological order: a node's inputs exist before it does.
        self._seq = next(_creation_order)

    def save_for_backward(self, *arrays) -> None:
        self.saved = arrays

    @property
    def name(self) -> str:
        return getattr(self.fn, "op_name", self.fn.__name__)


class Edge:
    """What a node keeps of an input made by another op: that op's node and output index,
    and the input's shape and dtype, but not its array.

    Holding the input Tensor would keep every intermediate array alive until backward
    (an add's inputs, a matmul's output fed to an add...), though only what an op saved
    is needed there; without it those arrays are freed as soon as the forward is done with
    them (LSTM, T=100, B=32, H=256: 8100 fresh memory pages a step fewer). Leaves are kept
    as Tensors: backward accumulates into their ``.grad``.
    """

    __slots__ = ("_idx", "_node", "dtype", "shape")
    requires_grad = True

    def __init__(self, t: Tensor):
        self._node, self._idx, self.shape, self.dtype = t._node, t._idx, t.data.shape, \
            t.data.dtype


def _graph_inputs(inputs: tuple) -> tuple:
    """``inputs`` as a node keeps them: leaves as they are, op outputs as their ``Edge``."""
    kept = []
    for t in inputs:
        if t._node is not None:
            edge = t._edge
            if edge is None:
                edge = t._edge = Edge(t)
            t = edge
        kept.append(t)
    return tuple(kept)


def _as_constant(x, like_dtype) -> Tensor:
    if isinstance(x, (bool, int, float)):
        return Tensor(np.asarray(x, dtype=like_dtype or np.float32))
    return Tensor(x)


def _with_constants(inputs: tuple) -> tuple:
    """``inputs`` with every non-Tensor made a constant Tensor (a Python scalar takes the
    dtype of the first Tensor input)."""
    first = next((t.data.dtype for t in inputs if isinstance(t, Tensor)), None)
    return tuple(t if isinstance(t, Tensor) else _as_constant(t, first) for t in inputs)


class Function:
    """Base class of every op: ``forward(ctx, *arrays, **attrs) -> array or tuple of arrays``
    and ``backward(ctx, *grads) -> gradient per input`` (None where there is none).

    ``Fn.apply(*tensors, **attrs)`` runs forward on the tensors' arrays and, when any input
    requires grad and grad mode is on, records a node. Python scalars and arrays given as
    inputs become constants; a Python scalar takes the dtype of the first tensor input.
    Inputs are floating point, or bool beside a floating-point input (a mask, taken as a
    constant with no gradient).
    """

    op_name = "function"

    @classmethod
    def apply(cls, *inputs, **attrs):
        # One pass over the inputs: this runs for every op of every time step.
        arrays = []
        track = False
        floats = 0
        for t in inputs:
            if not isinstance(t, Tensor):
                return cls.apply(*_with_constants(inputs), **attrs)
            a = t.data
            kind = a.dtype.kind
            # A bool tensor (a mask such as ``x > 0``) is a constant beside a float input.
            if kind == "f":
                floats += 1
            elif kind != "b":
                floats = -len(inputs)
            arrays.append(a)
            if t.requires_grad:
                track = True
        if floats <= 0:
            raise float_dtype_error(getattr(cls, "op_name", cls.__name__), arrays)
        if track and _grad_enabled:
            ctx = Context(cls, tuple([t.requires_grad for t in inputs]))
        else:
            track = False
            ctx = Context(cls, (False,) * len(inputs))
        try:
            out = cls.forward(ctx, *arrays, **attrs)
        except ShapeError:
            raise
        except ValueError as exc:
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise ShapeError(f"{ctx.name}: {exc} (input shapes {shapes})") from None
        if type(out) is tuple:
            ctx.n_out = len(out)
            if not track:
                return tuple(Tensor._make(np.asarray(o), None, 0) for o in out)
            ctx.inputs = _graph_inputs(inputs)
            return tuple(Tensor._make(np.asarray(o), ctx, i) for i, o in enumerate(out))
        if type(out) is not np.ndarray:
            out = np.asarray(out)
        if not track:
            return Tensor._make(out, None, 0)
        ctx.inputs = _graph_inputs(inputs)
        return Tensor._make(out, ctx, 0)

    def forward(ctx, *arrays, **attrs):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(ctx, *grads):  # pragma: no cover - abstract
        raise NotImplementedError


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
                "backpropagate through it again")
        for t in node.inputs:
            parent = t._node
            if parent is not None and parent not in reached:
                reached.add(parent)
                stack.append(parent)
    return sorted(reached, key=_creation_key, reverse=True)


def _creation_key(node: Context) -> int:
    return node._seq


def _run_hooks(hooks, grad):
    for hook in hooks:
        replaced = hook(grad)
        if replaced is not None:
            grad = np.asarray(replaced)
    return grad


def backward(root: Tensor, grad=None, retain_graph: bool = False) -> None:
    """Accumulate d(root)/d(leaf) * grad into ``.grad`` of every leaf that requires grad."""
    with gc_paused():
        _backward(root, grad, retain_graph)


def _backward(root: Tensor, grad, retain_graph: bool) -> None:
    if not root.requires_grad:
        raise RuntimeError("backward: this tensor does not require grad (no input that "
                           "requires grad went into it, or it was made under no_grad())")
    if grad is None:
        if root.data.size != 1:
            raise RuntimeError(f"backward: grad can be implied only for a scalar output; this "
                               f"output has shape {root.shape}, so pass grad= of that shape")
        grad = np.ones_like(root.data)
    else:
        grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=root.dtype)
        if grad.shape != root.shape:
            raise ShapeError(f"backward: grad has shape {grad.shape}, expected {root.shape}")

    leaf_acc: dict[int, list] = {}   # id(leaf) -> [leaf, summed grad, owned?]

    def to_leaf(t: Tensor, g: np.ndarray) -> None:
        entry = leaf_acc.get(id(t))
        if entry is None:
            leaf_acc[id(t)] = [t, g, False]
        elif entry[2]:
            entry[1] += g
        else:
            entry[1] = entry[1] + g
            entry[2] = True

    node = root._node
    if node is None:
        to_leaf(root, grad)
    else:
        order = _topological_order(node)
        for n in order:
            n.grads = None
        node.grads = [None] * node.n_out
        node.grads[root._idx] = grad
        for n in order:
            grads, n.grads, n.owned = n.grads, None, None
            if grads is None:
                continue
            if n.hooks:
                for i, hooks in n.hooks.items():
                    if grads[i] is not None:
                        grads[i] = _run_hooks(hooks, grads[i])
            if n.retained:
                for i, ref in n.retained.items():
                    t = ref()
                    if t is not None and grads[i] is not None:
                        t.grad = grads[i].copy() if t.grad is None else t.grad + grads[i]
            in_grads = n.fn.backward(n, *grads)
            if type(in_grads) is not tuple:
                in_grads = (in_grads,)
            for t, g, need in zip(n.inputs, in_grads, n.needs_input_grad):
                if g is None or not need:
                    continue
                if type(g) is not np.ndarray:
                    g = np.asarray(g, dtype=t.dtype)
                shape = t.shape
                if g.shape != shape:
                    g = unbroadcast(g, shape)
                    if g.shape != shape:
                        raise ShapeError(f"backward of {n.name}: the gradient for an input of "
                                         f"shape {shape} has shape {g.shape}")
                parent = t._node
                if parent is None:
                    to_leaf(t, g)
                    continue
                pg = parent.grads
                if pg is None:
                    pg = parent.grads = [None] * parent.n_out
                i = t._idx
                cur = pg[i]
                if cur is None:
                    pg[i] = g
                elif parent.owned is not None and i in parent.owned:
                    cur += g
                else:
                    pg[i] = cur + g
                    if parent.owned is None:
                        parent.owned = set()
                    parent.owned.add(i)
            if not retain_graph:
                n.saved = ()
                n.inputs = None
                n.released = True

    for t, g, owned in leaf_acc.values():
        if t._hooks:
            g = _run_hooks(t._hooks, g)
            owned = False
        if g.dtype != t.data.dtype:
            g, owned = g.astype(t.data.dtype), True
        if t.grad is None:
            t.grad = g if owned else g.copy()
        else:
            t.grad += g


def _set_retained(t: Tensor) -> None:
    node = t._node
    if node.retained is None:
        node.retained = {}
    node.retained[t._idx] = weakref.ref(t)


def _add_hook(t: Tensor, hook) -> None:
    node = t._node
    if node.hooks is None:
        node.hooks = {}
    node.hooks.setdefault(t._idx, []).append(hook)
