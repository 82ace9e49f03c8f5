"""Reverse-mode autograd: Function, its Context (the graph node), backward() and no_grad.

The graph is a DAG of Context nodes. An output tensor holds its node strongly; the node
holds its inputs (leaf tensors as they are, op outputs as an ``Edge`` to the node that made
them, without their array) and whatever arrays the op saved, but never its own outputs, so
the graph has no reference cycles and is freed by reference counting alone (Python's
cyclic collector would otherwise be triggered by every time step of a long sequence).

backward() (the walk is in backward.py, re-exported here) visits the nodes in one
iterative topological order (no recursion, linear in the graph size), sums the gradients
that fan in to a tensor, sums broadcast gradients back to each input's shape in one place
(``unbroadcast``), and releases every node's saved arrays as it goes unless
``retain_graph=True``. It refuses to use a saved array that was changed in
place after its op ran (``optimizer.step()`` before ``backward()``; see ``versions``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import numpy as np

from . import recording, versions
from .backward import ShapeError, backward, gc_paused, unbroadcast
from .tensor import Tensor, TensorLike

_P = ParamSpec("_P")
_R = TypeVar("_R")

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
_clock = versions.clock


class scope:
    """Label every node recorded inside: ``with scope("layer0/forward/t3"): ...``.

    The label is kept on each node as ``ctx.scope`` so tools such as ``viz.to_dot`` can
    group an unrolled graph by time step, layer and direction. Scopes nest with "/".
    """

    def __init__(self, label: str) -> None:
        self.label = label

    def __enter__(self) -> scope:
        global _scope
        self._prev = _scope
        _scope = self.label if _scope is None else f"{_scope}/{self.label}"
        return self

    def __exit__(self, *exc: object) -> None:
        global _scope
        _scope = self._prev


def is_grad_enabled() -> bool:
    """True when new ops are being recorded for backward."""
    return _grad_enabled


class _GradMode:
    _enabled = True

    def __enter__(self) -> None:
        global _grad_enabled
        self._prev = _grad_enabled
        _grad_enabled = self._enabled

    def __exit__(self, *exc: object) -> None:
        global _grad_enabled
        _grad_enabled = self._prev

    def __call__(self, func: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(func)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            with type(self)():
                return func(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):
    """Context manager and decorator: ops inside record no graph (inference, optimizer steps)."""

    _enabled = False


class enable_grad(_GradMode):
    """Context manager and decorator: record the graph again inside a ``no_grad`` block."""

    _enabled = True


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
    grads: list | None = None  # gradients of the outputs, during backward
    owned: set | None = None  # indices into grads whose array backward allocated
    hooks: dict | None = None  # output index -> [hook]
    retained: dict | None = None  # output index -> weakref to the output tensor

    def __init__(self, fn: type[Function], needs_input_grad: tuple[bool, ...]) -> None:
        self.fn = fn
        self.needs_input_grad = needs_input_grad
        self.scope = _scope
        # A tick of the clock in-place writes also read: creation order is a topological
        # order (a node's inputs exist before it does), and a saved array written after this
        # tick was changed after the op saved it.
        self._seq = next(_clock)

    def save_for_backward(self, *arrays: np.ndarray) -> None:
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
    them (the saving is measured in benchmarks/README.md). Leaves are kept
    as Tensors: backward accumulates into their ``.grad``.
    """

    __slots__ = ("_idx", "_node", "dtype", "shape")
    requires_grad = True

    def __init__(self, t: Tensor) -> None:
        self._node, self._idx, self.shape, self.dtype = (
            t._node,
            t._idx,
            t._data.shape,
            t._data.dtype,
        )


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


def _as_constant(x: Any, like_dtype: np.dtype | None) -> Tensor:
    if isinstance(x, (bool, int, float)):
        return Tensor(np.asarray(x, dtype=like_dtype or np.float32))
    return Tensor(x)


def _with_constants(inputs: tuple) -> tuple:
    """``inputs`` with every non-Tensor made a constant Tensor (a Python scalar takes the
    dtype of the first floating-point Tensor input, so never a mask's bool)."""
    first = next(
        (t._data.dtype for t in inputs if isinstance(t, Tensor) and t._data.dtype.kind == "f"), None
    )
    return tuple(t if isinstance(t, Tensor) else _as_constant(t, first) for t in inputs)


def _dtype_error(name: str, arrays: list) -> TypeError:
    dtypes = ", ".join(str(a.dtype) for a in arrays)
    return TypeError(
        f"{name}: expected floating-point inputs (float32 or float64), or a bool "
        f"mask beside one, got dtypes {dtypes}"
    )


# Words of NumPy's messages for shapes that do not fit (broadcasting, matmul, concatenate,
# reshape, an axis out of range): such a ValueError from a forward is a ShapeError.
_SHAPE_WORDS = ("shape", "dimension", "broadcast", "size", "axis")


def _forward_error(name: str, exc: ValueError, arrays: list) -> ValueError:
    """What to raise for ``exc`` from op ``name``'s forward: a ShapeError (with the input
    shapes) when it is about shapes, else a ValueError; the message names the op once."""
    if isinstance(exc, ShapeError):
        return exc
    message = str(exc)
    named = message.startswith(f"{name}:")
    if not any(word in message.lower() for word in _SHAPE_WORDS):
        return exc if named else ValueError(f"{name}: {message}")
    shapes = ", ".join(str(a.shape) for a in arrays)
    return ShapeError(f"{message if named else f'{name}: {message}'} (input shapes {shapes})")


class Function:
    """Base class of every op: ``forward(ctx, *arrays, **attrs) -> array or tuple of arrays``
    and ``backward(ctx, *grads) -> gradient per input`` (None where there is none).

    ``Fn.apply(*tensors, **attrs)`` runs forward on the tensors' arrays and, when any input
    requires grad and grad mode is on, records a node. Python scalars and arrays given as
    inputs become constants; a Python scalar takes the dtype of the first tensor input.
    Inputs are floating point, or bool beside a floating-point input (a mask, taken as a
    constant with no gradient). A ValueError from forward comes out as a ``ShapeError`` when
    it is about shapes, and names the op.
    """

    op_name = "function"

    @classmethod
    def apply(cls, *inputs: TensorLike, **attrs: Any) -> Any:
        # Returns a Tensor, or a tuple of them for a multi-output op: which one depends on
        # the op, so the hint is Any (as torch's Function.apply), not a union every caller
        # would have to narrow.
        # One pass over the inputs: this runs for every op of every time step.
        arrays = []
        track = False
        floats = 0
        for t in inputs:
            if not isinstance(t, Tensor):
                return cls.apply(*_with_constants(inputs), **attrs)
            a = t._data
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
            raise _dtype_error(getattr(cls, "op_name", cls.__name__), arrays)
        if track and _grad_enabled:
            ctx = Context(cls, tuple([t.requires_grad for t in inputs]))
        else:
            track = False
            ctx = Context(cls, (False,) * len(inputs))
        try:
            out = cls.forward(ctx, *arrays, **attrs)
        except ValueError as exc:
            raise _forward_error(ctx.name, exc, arrays) from None
        if type(out) is tuple:
            ctx.n_out = len(out)
            if track:
                ctx.inputs = _graph_inputs(inputs)
            node = ctx if track else None
            result = tuple(Tensor._make(np.asarray(o), node, i) for i, o in enumerate(out))
        else:
            if type(out) is not np.ndarray:
                out = np.asarray(out)
            if track:
                ctx.inputs = _graph_inputs(inputs)
            result = Tensor._make(out, ctx if track else None, 0)
        if recording._active is not None:
            recording._active.op(cls, inputs, attrs, result)
        return result

    @staticmethod
    def forward(
        ctx: Context,
        *arrays: np.ndarray,  # pragma: no cover - abstract
        **attrs: Any,
    ) -> np.ndarray | tuple[np.ndarray, ...]:
        raise NotImplementedError

    @staticmethod
    def backward(
        ctx: Context,  # pragma: no cover - abstract
        *grads: np.ndarray,
    ) -> np.ndarray | tuple[np.ndarray | None, ...] | None:
        raise NotImplementedError

    # The registry refuses a differentiable op still carrying this backward, without
    # importing this module (it sits below autograd).
    backward.__func__.abstract = True

    # The registry refuses a differentiable op still carrying this backward, without
    # importing this module (it sits below autograd).
    backward.abstract = True
