"""Tensor: an ``np.ndarray`` plus what reverse-mode autograd needs to know about it.

Operators and methods dispatch to ops *by name* through the registry, so this file knows
no op's code: ``a + b`` runs whatever is registered as ``"add"``.

dtype rules: Python lists and scalars become float32; NumPy arrays keep their dtype
(float64 stays float64); a float32 tensor combined with a Python scalar stays float32.
"""

from __future__ import annotations

import numpy as np

from .registry import OPS, RegistryError

__all__ = ["ShapeError", "Tensor", "ones", "randn", "tensor", "zeros", "zeros_like"]


class ShapeError(ValueError):
    """Input shapes an op or layer cannot work with; the message names the op and shapes."""


def float_dtype_error(what: str, arrays) -> TypeError:
    dtypes = ", ".join(str(a.dtype) for a in arrays)
    return TypeError(f"{what}: expected floating-point inputs (float32 or float64), "
                     f"got dtypes {dtypes}")


def _op(name: str):
    try:
        return OPS[name]
    except KeyError:
        raise RegistryError(f"op {name!r} is not registered; did the built-in plugins load? "
                            "(install the package: pip install -e .)") from None


class Tensor:
    """An n-dimensional array that can record the ops applied to it for backward().

    ``.grad`` is an ``np.ndarray`` (or None) that *accumulates* over backward() calls, as in
    PyTorch: zero it (``t.grad = None`` or ``module.zero_grad()``) between steps.
    """

    __slots__ = ("__weakref__", "_edge", "_hooks", "_idx", "_node", "data", "grad",
                 "requires_grad")
    __array_priority__ = 1000  # make ndarray + Tensor defer to Tensor.__radd__

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
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
        self.data = arr
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._node = None
        self._idx = 0
        self._hooks = None
        self._edge = None

    @classmethod
    def _make(cls, data: np.ndarray, node, idx: int) -> Tensor:
        t = object.__new__(cls)
        t.data = data
        t.grad = None
        t.requires_grad = node is not None
        t._node = node
        t._idx = idx
        t._hooks = None
        t._edge = None
        return t

    # ---- properties -------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

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
        return _op("transpose").apply(self)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        body = np.array2string(self.data, precision=4, separator=", ", threshold=20)
        extra = f", op={self.op}" if self._node is not None else ""
        extra += ", requires_grad=True" if self.requires_grad and self._node is None else ""
        return f"Tensor({body}, dtype={self.dtype}{extra})"

    # ---- conversion and graph control ------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied)."""
        return self.data

    def item(self) -> float:
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item(): only one-element tensors convert, got shape {self.shape}")
        return self.data.item()

    def detach(self) -> Tensor:
        """A new leaf sharing this tensor's data, cut from the graph."""
        return Tensor._make(self.data, None, 0)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` on a leaf, in place; returns self."""
        if self._node is not None:
            raise RuntimeError("requires_grad_(): only leaf tensors can change requires_grad; "
                               "use detach() to cut a tensor from the graph")
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"requires_grad_(): needs a floating-point dtype, got {self.dtype}")
        self.requires_grad = bool(requires_grad)
        return self

    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Backpropagate from this tensor, accumulating into every leaf's ``.grad``.

        ``grad`` (same shape as self) is required unless self has one element. The graph's
        saved arrays are released afterwards unless ``retain_graph=True``.
        """
        from .autograd import backward
        backward(self, grad, retain_graph)

    def register_hook(self, hook) -> None:
        """Call ``hook(grad)`` with the gradient flowing into this tensor during backward;
        a non-None return value replaces that gradient."""
        if not self.requires_grad:
            raise RuntimeError("register_hook(): this tensor does not require grad")
        if self._node is None:
            if self._hooks is None:
                self._hooks = []
            self._hooks.append(hook)
        else:
            from .autograd import _add_hook
            _add_hook(self, hook)

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward (leaves always keep it)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad(): this tensor does not require grad")
        if self._node is not None:
            from .autograd import _set_retained
            _set_retained(self)

    # ---- arithmetic (dispatch by op name) ----------------------------------------------
    def __add__(self, other):
        return _op("add").apply(self, other)

    def __radd__(self, other):
        return _op("add").apply(other, self)

    def __sub__(self, other):
        return _op("sub").apply(self, other)

    def __rsub__(self, other):
        return _op("sub").apply(other, self)

    def __mul__(self, other):
        return _op("mul").apply(self, other)

    def __rmul__(self, other):
        return _op("mul").apply(other, self)

    def __truediv__(self, other):
        return _op("div").apply(self, other)

    def __rtruediv__(self, other):
        return _op("div").apply(other, self)

    def __pow__(self, exponent):
        if isinstance(exponent, Tensor):
            raise TypeError("pow: the exponent must be a Python number, not a Tensor")
        return _op("pow").apply(self, exponent=float(exponent))

    def __neg__(self):
        return _op("neg").apply(self)

    def __matmul__(self, other):
        return _op("matmul").apply(self, other)

    def __rmatmul__(self, other):
        return _op("matmul").apply(other, self)

    def __getitem__(self, index):
        # A Tensor used as an index (a mask from ``x > 0``, integer positions) is its array.
        if isinstance(index, Tensor):
            index = index.data
        elif isinstance(index, tuple) and any(isinstance(i, Tensor) for i in index):
            index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
        return _op("getitem").apply(self, index=index)

    # Comparisons give plain boolean tensors: no graph, no gradient.
    def _compare(self, other, ufunc):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor._make(ufunc(self.data, other), None, 0)

    def __lt__(self, other):
        return self._compare(other, np.less)

    def __le__(self, other):
        return self._compare(other, np.less_equal)

    def __gt__(self, other):
        return self._compare(other, np.greater)

    def __ge__(self, other):
        return self._compare(other, np.greater_equal)

    def __eq__(self, other):
        return self._compare(other, np.equal)

    def __ne__(self, other):
        return self._compare(other, np.not_equal)

    __hash__ = object.__hash__

    # ---- method forms of common ops ------------------------------------------------------
    def exp(self):
        return _op("exp").apply(self)

    def log(self):
        return _op("log").apply(self)

    def sigmoid(self):
        return _op("sigmoid").apply(self)

    def tanh(self):
        return _op("tanh").apply(self)

    def relu(self):
        return _op("relu").apply(self)

    def sum(self, axis=None, keepdims=False):
        return _op("sum").apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return _op("mean").apply(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        return _op("max").apply(self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _op("reshape").apply(self, shape=shape)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return _op("transpose").apply(self, axes=axes or None)

    def softmax(self, axis=-1):
        return _op("softmax").apply(self, axis=axis)

    def log_softmax(self, axis=-1):
        return _op("log_softmax").apply(self, axis=axis)

    def logsumexp(self, axis=None, keepdims=False):
        return _op("logsumexp").apply(self, axis=axis, keepdims=keepdims)


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    """Make a Tensor (lists become float32, NumPy arrays keep their dtype)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def zeros(*shape, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros; ``zeros(2, 3)`` or ``zeros((2, 3))``."""
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Tensor(np.zeros(shape, dtype=dtype), requires_grad=requires_grad)


def ones(*shape, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    """A tensor of ones; ``ones(2, 3)`` or ``ones((2, 3))``."""
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Tensor(np.ones(shape, dtype=dtype), requires_grad=requires_grad)


def randn(*shape, dtype=np.float32, requires_grad: bool = False, rng=None) -> Tensor:
    """Standard-normal samples, from ``rng`` (a ``np.random.Generator``) when given."""
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    rng = np.random.default_rng() if rng is None else rng
    return Tensor(rng.standard_normal(shape).astype(dtype), requires_grad=requires_grad)


def zeros_like(t: Tensor, requires_grad: bool = False) -> Tensor:
    """Zeros with ``t``'s shape and dtype."""
    return Tensor(np.zeros_like(t.data), requires_grad=requires_grad)
