"""Tensor: an ``np.ndarray`` plus what reverse-mode autograd needs to know about it.

Operators and methods dispatch to ops *by name* through the registry, so this file knows
no op's code: ``a + b`` runs whatever is registered as ``"add"``. Most of them (arithmetic and
the method forms such as ``x.sigmoid()``) are inherited from ``TensorOperators`` in
``tensor_operators.py``; the ones that need the Tensor class itself are defined here.

dtype rules: Python lists and scalars become float32; NumPy arrays keep their dtype
(float64 stays float64); a float32 tensor combined with a Python scalar stays float32.
"""

from __future__ import annotations

import builtins
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import versions
from .backward import ShapeError
from .backward import backward as _run_backward
from .recording import note_value_read
from .registry import op
from .tensor_operators import TensorOperators

__all__ = ["Axis", "ShapeError", "Tensor", "TensorLike"]


def _comparison(ufunc: np.ufunc) -> Callable[[Tensor, TensorLike], Tensor]:
    def method(self: Tensor, other: TensorLike) -> Tensor:
        note_value_read(self, f"a comparison ({ufunc.__name__})")
        other = other._data if isinstance(other, Tensor) else other
        return Tensor._make(ufunc(self._data, other), None, 0)

    return method


class Tensor(TensorOperators):
    """An n-dimensional array that can record the ops applied to it for backward().

    ``.grad`` is an ``np.ndarray`` (or None) that *accumulates* over backward() calls, as in
    PyTorch: zero it (``t.grad = None`` or ``module.zero_grad()``) between steps.
    """

    __slots__ = (
        "__weakref__",
        "_data",
        "_edge",
        "_hooks",
        "_idx",
        "_node",
        "grad",
        "requires_grad",
    )
    _data: np.ndarray
    grad: np.ndarray | None
    requires_grad: bool
    _hooks: list[Callable[[np.ndarray], np.ndarray | None]] | None

    def __init__(
        self, data: TensorLike, requires_grad: bool = False, dtype: DTypeLike | None = None
    ) -> None:
        if isinstance(data, Tensor):
            data = data._data
        if dtype is not None:
            arr = np.array(data, dtype=dtype)
        elif isinstance(data, np.ndarray):
            arr = data
        elif isinstance(data, np.generic):
            arr = np.asarray(data)
        else:
            arr = np.array(data)
            if arr.dtype.kind in "fiub" and arr.dtype != np.bool_:
                arr = arr.astype(np.float32)
        if arr.dtype == object:
            raise TypeError(f"Tensor: cannot hold dtype object (from {type(data).__name__})")
        if requires_grad and arr.dtype.kind != "f":
            raise TypeError(f"Tensor: requires_grad needs a floating-point dtype, got {arr.dtype}")
        self._data = arr
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._node = None
        self._idx = 0
        self._hooks = None
        self._edge = None

    @classmethod
    def _make(cls, data: np.ndarray, node: Any, idx: int) -> Tensor:
        t = object.__new__(cls)
        t._data = data
        t.grad = None
        t.requires_grad = node is not None
        t._node = node
        t._idx = idx
        t._hooks = None
        t._edge = None
        return t

    # ---- properties -------------------------------------------------------------------
    @property
    def data(self) -> np.ndarray:
        """The array. Assigning it the array it holds (``t.data -= g``, an augmented
        assignment) is an in-place write that backward checks for (see ``versions``);
        assigning a new array replaces it and leaves what ops saved untouched."""
        note_value_read(self, ".data")
        return self._data

    @data.setter
    def data(self, value: ArrayLike) -> None:
        if value is self._data:
            versions.note_write(value)
        self._data = value if isinstance(value, np.ndarray) else np.asarray(value)

    @property
    def _version(self) -> int:
        """Tracked in-place writes into this tensor's array so far (PyTorch's ``_version``)."""
        return versions.version(self._data)

    def _mark_written(self) -> None:
        """Record that this tensor's array was just changed in place by library code."""
        versions.note_write(self._data)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._data.shape

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def size(self) -> int:
        return self._data.size

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user rather than by an op that records a graph."""
        return self._node is None

    @property
    def op(self) -> str | None:
        """Name of the op that produced this tensor, or None for a leaf."""
        return None if self._node is None else self._node.name

    @property
    def T(self) -> Tensor:
        return op("transpose").apply(self)

    def __len__(self) -> int:
        return len(self._data)

    def __bool__(self) -> bool:
        """The truth of a one-element tensor's value (as in PyTorch and NumPy; for more
        elements it is ambiguous, an error)."""
        return bool(self._scalar("bool()"))

    def __float__(self) -> builtins.float:
        return builtins.float(self._scalar("float()"))

    def __int__(self) -> int:
        return int(self._scalar("int()"))

    def _scalar(self, how: str) -> Any:
        if self._data.size != 1:
            raise ValueError(
                f"{how}: only a one-element tensor has a single value, got shape {self.shape}"
            )
        note_value_read(self, how)
        return self._data.item()

    def __repr__(self) -> str:
        body = np.array2string(self._data, precision=4, separator=", ", threshold=20)
        extra = f", op={self.op}" if self._node is not None else ""
        extra += ", requires_grad=True" if self.requires_grad and self._node is None else ""
        return f"Tensor({body}, dtype={self.dtype}{extra})"

    # ---- conversion and graph control ------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied)."""
        note_value_read(self, ".numpy()")
        return self._data

    def item(self) -> float:
        """The value of a one-element tensor as a Python number."""
        if self._data.size != 1:
            raise ValueError(f"item(): only one-element tensors convert, got shape {self.shape}")
        note_value_read(self, ".item()")
        return self._data.item()

    def tolist(self) -> Any:
        """The values as (nested) Python lists, a Python number for a 0-d tensor; no graph."""
        note_value_read(self, ".tolist()")
        return self._data.tolist()

    def argmax(self, axis: int | None = None, keepdims: bool = False) -> Tensor:
        """Index of the largest value (the first among ties; NaN counts as largest) in the
        flattened tensor (``axis=None``) or along ``axis``: an int64 tensor, no graph."""
        note_value_read(self, ".argmax()")
        return Tensor._make(
            np.asarray(np.argmax(self._data, axis=axis, keepdims=keepdims)), None, 0
        )

    def to(self, dtype: DTypeLike) -> Tensor:
        """This tensor as ``dtype``: self when it has that dtype already (as in PyTorch).

        Between floating-point dtypes it is the op ``cast``: recorded, and the gradient
        flows back cast to this tensor's dtype. To or from any other dtype (int, bool) the
        result is a new tensor with no graph.
        """
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            raise TypeError(
                f"Tensor.to: expected a dtype (np.float32, 'float64', ...), got {dtype!r}"
            ) from None
        if dtype == self._data.dtype:
            return self
        if dtype.kind == "f" and self._data.dtype.kind == "f":
            return op("cast").apply(self, dtype=dtype)
        return Tensor._make(self._data.astype(dtype), None, 0)

    def float(self) -> Tensor:
        """``to(np.float32)``."""
        return self.to(np.float32)

    def double(self) -> Tensor:
        """``to(np.float64)``."""
        return self.to(np.float64)

    def clone(self) -> Tensor:
        """A copy of the data, on the graph: the gradient flows back to this tensor."""
        if self._data.dtype.kind != "f":
            return Tensor._make(self._data.copy(), None, 0)
        return op("cast").apply(self)

    def detach(self) -> Tensor:
        """A new leaf sharing this tensor's data, cut from the graph."""
        return Tensor._make(self._data, None, 0)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` on a leaf, in place; returns self."""
        if self._node is not None:
            raise RuntimeError(
                "requires_grad_(): only leaf tensors can change requires_grad; "
                "use detach() to cut a tensor from the graph"
            )
        if requires_grad and self._data.dtype.kind != "f":
            raise TypeError(f"requires_grad_(): needs a floating-point dtype, got {self.dtype}")
        self.requires_grad = bool(requires_grad)
        return self

    def backward(self, grad: TensorLike | None = None, retain_graph: bool = False) -> None:
        """Backpropagate from this tensor, accumulating into every leaf's ``.grad``.

        ``grad`` (same shape as self) is required unless self has one element. The graph's
        saved arrays are released afterwards unless ``retain_graph=True``.
        """
        _run_backward(self, grad, retain_graph)

    def register_hook(self, hook: Callable[[np.ndarray], np.ndarray | None]) -> None:
        """Call ``hook(grad)`` with the gradient flowing into this tensor during backward;
        a non-None return value replaces that gradient."""
        if not self.requires_grad:
            raise RuntimeError("register_hook(): this tensor does not require grad")
        if self._node is None:
            if self._hooks is None:
                self._hooks = []
            self._hooks.append(hook)
        else:  # kept on the node: a non-leaf's gradient lives there during backward
            node = self._node
            if node.hooks is None:
                node.hooks = {}
            node.hooks.setdefault(self._idx, []).append(hook)

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward (leaves always keep it)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad(): this tensor does not require grad")
        node = self._node
        if node is not None:
            if node.retained is None:
                node.retained = {}
            node.retained[self._idx] = weakref.ref(self)

    # ---- operators that need the Tensor class itself -----------------------------------
    def __pow__(self, exponent: builtins.float) -> Tensor:
        if isinstance(exponent, Tensor):
            raise TypeError("pow: the exponent must be a Python number, not a Tensor")
        return op("pow").apply(self, exponent=float(exponent))

    def __getitem__(self, index: Any) -> Tensor:
        # A Tensor used as an index (a mask from ``x > 0``, integer positions) is its array.
        if isinstance(index, Tensor):
            note_value_read(index, "a tensor used as an index")
            index = index._data
        elif isinstance(index, tuple) and any(isinstance(i, Tensor) for i in index):
            for i in index:
                if isinstance(i, Tensor):
                    note_value_read(i, "a tensor used as an index")
            index = tuple(i._data if isinstance(i, Tensor) else i for i in index)
        return op("getitem").apply(self, index=index)

    # Comparisons give plain boolean tensors: no graph, no gradient.
    __lt__, __le__ = _comparison(np.less), _comparison(np.less_equal)
    __gt__, __ge__ = _comparison(np.greater), _comparison(np.greater_equal)
    # Elementwise, as in NumPy and PyTorch, not object's bool-valued equality.
    __eq__, __ne__ = _comparison(np.equal), _comparison(np.not_equal)  # type: ignore[assignment]
    __hash__ = object.__hash__


# What ops and operators take where a Tensor goes: a Tensor, or anything ``np.asarray`` takes
# (a Python number or list, an ndarray), which joins the graph as a constant.
TensorLike = Tensor | ArrayLike
# A reduction's axis: None (all axes), one axis, or several.
Axis = int | Sequence[int] | None
