"""Shape ops: concat, stack, split, getitem, reshape, transpose.

Their backwards move gradients without arithmetic: split undoes concat, scattering undoes
indexing, the inverse permutation undoes a transpose.
"""

import numpy as np

from tinygrad_lstm import Function, ShapeError, register_op


def _axis(name: str, shape: tuple[int, ...], axis: int) -> int:
    """``axis`` of ``shape`` made non-negative; a ShapeError naming the op if out of range."""
    if not -len(shape) <= axis < len(shape):
        raise ShapeError(
            f"{name}: axis {axis} is out of range for shape {shape} "
            f"(expected an axis in [{-len(shape)}, {len(shape) - 1}])"
        )
    return axis % len(shape)


def _same_shapes(dims, attrs):
    return [(dims[0], dims[1], dims[2])] * 3


def _concat_shapes(dims, attrs):
    axis = attrs["axis"]
    shapes = []
    for extra in (dims[0], dims[3], 1):
        shape = [dims[1], dims[2], dims[1]]
        shape[axis] = extra
        shapes.append(tuple(shape))
    return shapes


@register_op(
    "concat",
    arity=None,
    n_inputs=3,
    kind="shape",
    shapes=_concat_shapes,
    attrs={"axis": [0, 1, -1]},
)
class Concat(Function):
    """y = [x_1 | x_2 | ...] along ``axis``;  dx_i = the matching slice of g."""

    @staticmethod
    def forward(ctx, *xs, axis=0):
        if not xs:
            raise ShapeError("concat: needs at least one tensor")
        ref = xs[0].shape
        for k, x in enumerate(xs):
            if x.ndim == 0:  # as in PyTorch: a 0-d tensor has no axis to join along
                raise ShapeError(
                    f"concat: input {k} is 0-d (shape ()) and has no axis to "
                    "join along; stack 0-d tensors instead"
                )
        axis = _axis("concat", ref, axis)
        for x in xs[1:]:
            if x.ndim != len(ref) or any(
                a != b for i, (a, b) in enumerate(zip(x.shape, ref)) if i != axis
            ):
                raise ShapeError(f"concat: shapes {ref} and {x.shape} differ outside axis {axis}")
        ctx.axis = axis
        ctx.bounds = np.cumsum([x.shape[axis] for x in xs])[:-1]
        return np.concatenate(xs, axis=axis)

    @staticmethod
    def backward(ctx, g):
        return tuple(np.split(g, ctx.bounds, axis=ctx.axis))


@register_op(
    "stack", arity=None, n_inputs=3, kind="shape", shapes=_same_shapes, attrs={"axis": [0, 1, -1]}
)
class Stack(Function):
    """y = the inputs stacked along a new ``axis``;  dx_i = g taken at index i of that axis."""

    @staticmethod
    def forward(ctx, *xs, axis=0):
        for x in xs[1:]:
            if x.shape != xs[0].shape:
                raise ShapeError(
                    f"stack: all shapes must be equal, got {xs[0].shape} and {x.shape}"
                )
        ctx.axis = axis
        return np.stack(xs, axis=axis)

    @staticmethod
    def backward(ctx, g):
        moved = np.moveaxis(g, ctx.axis, 0)
        return tuple(moved[i] for i in range(moved.shape[0]))


@register_op(
    "unstack",
    arity=1,
    kind="shape",
    shapes=lambda dims, attrs: [(dims[0], dims[1], dims[2])],
    attrs={"axis": [0, 1, -1]},
)
class Unstack(Function):
    """(y_0, ..., y_{n-1}) = the slices of x along ``axis`` (the axis dropped);
    dx = the slices' gradients stacked again (zeros for slices that got none).

    A sequence layer takes its time steps with one unstack rather than T getitems, whose
    backwards would each allocate a whole-sequence array."""

    @staticmethod
    def forward(ctx, x, axis=0):
        ctx.axis, ctx.shape, ctx.dtype = axis, x.shape, x.dtype
        moved = np.moveaxis(x, axis, 0)
        return tuple(moved[i] for i in range(moved.shape[0]))

    @staticmethod
    def backward(ctx, *grads):
        dx = np.zeros(ctx.shape, ctx.dtype)
        moved = np.moveaxis(dx, ctx.axis, 0)
        for i, g in enumerate(grads):
            if g is not None:
                moved[i] = g
        return dx


def _split_shapes(dims, attrs):
    shape = [dims[0], dims[1]]
    shape[attrs["axis"]] = 6
    return [tuple(shape)]


@register_op(
    "split",
    arity=1,
    kind="shape",
    shapes=_split_shapes,
    attrs={"sections": [2, 3, (1, 2, 3)], "axis": [0, 1]},
)
class Split(Function):
    """(y_1, ..., y_k) = x cut along ``axis`` into ``sections`` equal parts or given sizes;
    dx = the parts' gradients joined again (zeros for parts that got none)."""

    @staticmethod
    def forward(ctx, x, sections=2, axis=0):
        n = x.shape[_axis("split", x.shape, axis)]
        if isinstance(sections, (int, np.integer)):
            if sections <= 0 or n % sections:
                raise ShapeError(
                    f"split: axis {axis} of shape {x.shape} does not divide "
                    f"into {sections} equal parts"
                )
            sizes = [n // sections] * sections
        else:
            sizes = list(sections)
            if any(not isinstance(k, (int, np.integer)) or k < 0 for k in sizes):
                raise ShapeError(
                    f"split: sizes {sizes} must be non-negative integers "
                    f"(splitting axis {axis} of shape {x.shape})"
                )
            if sum(sizes) != n:
                raise ShapeError(
                    f"split: sizes {sizes} sum to {sum(sizes)}, but axis {axis} "
                    f"of shape {x.shape} has {n}"
                )
        ctx.axis, ctx.shape, ctx.dtype, ctx.sizes = axis, x.shape, x.dtype, sizes
        # Plain slicing: np.split costs more per call, and an LSTM splits at every time step.
        index, start, parts = [slice(None)] * x.ndim, 0, []
        for size in sizes:
            index[axis] = slice(start, start + size)
            parts.append(x[tuple(index)])
            start += size
        return tuple(parts)

    @staticmethod
    def backward(ctx, *grads):
        if any(g is None for g in grads):
            grads = [
                np.zeros(_with(ctx.shape, ctx.axis, n), ctx.dtype) if g is None else g
                for g, n in zip(grads, ctx.sizes)
            ]
        return np.concatenate(grads, axis=ctx.axis)


def _with(shape, axis, n):
    shape = list(shape)
    shape[axis] = n
    return tuple(shape)


class IndexOutOfRange(ShapeError, IndexError):
    """An index that does not fit the shape. Also an IndexError, so that iterating over a
    Tensor or unpacking it (Python's sequence protocol) stops at the end."""


def _index_shapes(dims, attrs):
    return [(4, 3, 2)]


_BASIC_INDICES = [
    0,
    -1,
    (slice(1, None),),
    (slice(None), 1),
    (1, slice(None, None, 2)),
    (Ellipsis, 0),
    (np.array([0, 2, 2]),),
    (np.array([0, 3]), np.array([1, 2])),
]


@register_op(
    "getitem", arity=1, kind="shape", shapes=_index_shapes, attrs={"index": _BASIC_INDICES}
)
class GetItem(Function):
    """y = x[index];  dx = zeros with g scattered back at index (summed where repeated)."""

    @staticmethod
    def forward(ctx, x, index):
        ctx.index, ctx.shape, ctx.dtype = index, x.shape, x.dtype
        ctx.basic = not any(
            isinstance(i, (np.ndarray, list))
            for i in (index if isinstance(index, tuple) else (index,))
        )
        try:
            return x[index]
        except IndexError as exc:
            raise IndexOutOfRange(
                f"getitem: index {index!r} does not fit shape {x.shape}: {exc}"
            ) from None

    @staticmethod
    def backward(ctx, g):
        dx = np.zeros(ctx.shape, ctx.dtype)
        if ctx.basic:
            dx[ctx.index] = g
        else:
            np.add.at(dx, ctx.index, g)
        return dx


def _reshape_shapes(dims, attrs):
    return [(2, 3, 4)]


@register_op(
    "reshape",
    arity=1,
    kind="shape",
    shapes=_reshape_shapes,
    attrs={"shape": [(24,), (6, 4), (4, -1), (2, 3, 2, 2)]},
)
class Reshape(Function):
    """y = x viewed with a new shape;  dx = g reshaped back."""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ShapeError(
                f"reshape: cannot view shape {x.shape} ({x.size} elements) as {tuple(shape)}"
            ) from None

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape)


@register_op(
    "transpose",
    arity=1,
    kind="shape",
    shapes=_reshape_shapes,
    attrs={"axes": [None, (1, 0, 2), (2, 0, 1), (-1, 0, 1)]},
)
class Transpose(Function):
    """y = x with axes permuted (reversed when ``axes`` is None);  dx = g permuted back."""

    @staticmethod
    def forward(ctx, x, axes=None):
        n = x.ndim
        # A 0-d tensor has one permutation, the empty one (None or ()), as in PyTorch.
        if axes is not None and not (
            len(axes) == n and all(-n <= a < n for a in axes) and len({a % n for a in axes}) == n
        ):
            raise ShapeError(
                f"transpose: axes {tuple(axes)} are not a permutation of the "
                f"{n} axes of shape {x.shape}"
            )
        # argsort inverts the permutation only once negative axes are made positive.
        ctx.axes = None if axes is None else tuple(a % x.ndim for a in axes)
        return np.transpose(x, axes)

    @staticmethod
    def backward(ctx, g):
        return np.transpose(g, None if ctx.axes is None else np.argsort(ctx.axes))
