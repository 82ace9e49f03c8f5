"""Linear, Embedding and Dropout: the feed-forward layers around a recurrent core.

Each is composed of registered ops (``matmul``, ``add``, ``getitem``, ``mul``), so its
gradients come from the ops' checked backwards.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import DTypeLike

import tinygrad_lstm as tg
from tinygrad_lstm import Module, Parameter, ShapeError, Tensor, TensorLike

from .checks import as_float_input, check_float_dtype, check_size

__all__ = ["Dropout", "Embedding", "Linear", "uniform_parameter"]


def uniform_parameter(
    shape: tuple[int, ...], bound: float, dtype: DTypeLike, rng: np.random.Generator
) -> Parameter:
    """A Parameter drawn from U(-bound, +bound) (PyTorch's default for linear and RNN layers)."""
    return Parameter(rng.uniform(-bound, bound, size=shape).astype(dtype))


class Linear(Module):
    """y = x @ W^T + b, for x of shape (..., in_features) -> (..., out_features).

    ``weight`` is (out_features, in_features) and ``bias`` (out_features,), both drawn from
    U(-1/sqrt(in_features), +1/sqrt(in_features)) as in ``torch.nn.Linear``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        dtype: DTypeLike = np.float32,
        rng: np.random.Generator | None = None,
    ):
        super().__init__()
        self.in_features = check_size("Linear", "in_features", in_features)
        self.out_features = check_size("Linear", "out_features", out_features)
        dtype = check_float_dtype("Linear", dtype)
        rng = tg.default_rng() if rng is None else rng
        bound = 1.0 / math.sqrt(self.in_features)
        self.weight = uniform_parameter((self.out_features, self.in_features), bound, dtype, rng)
        if bias:
            self.bias = uniform_parameter((self.out_features,), bound, dtype, rng)
        else:
            self.register_parameter("bias", None)

    def forward(self, x: TensorLike) -> Tensor:
        """x (..., in_features) -> (..., out_features)."""
        x = as_float_input("Linear", x, self.weight.dtype)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ShapeError(
                f"Linear expected input of shape (..., {self.in_features}), got {x.shape}"
            )
        y = x @ self.weight.T
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class Embedding(Module):
    """y = W[indices]: integer indices of any shape -> (..., embedding_dim).

    ``weight`` is (num_embeddings, embedding_dim), drawn from N(0, 1) as in
    ``torch.nn.Embedding``. The gradient of a row is the sum over every place it was looked up.
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        *,
        dtype: DTypeLike = np.float32,
        rng: np.random.Generator | None = None,
    ):
        super().__init__()
        self.num_embeddings = check_size("Embedding", "num_embeddings", num_embeddings)
        self.embedding_dim = check_size("Embedding", "embedding_dim", embedding_dim)
        dtype = check_float_dtype("Embedding", dtype)
        rng = tg.default_rng() if rng is None else rng
        self.weight = Parameter(
            rng.standard_normal((self.num_embeddings, self.embedding_dim)).astype(dtype)
        )

    def forward(self, indices: TensorLike) -> Tensor:
        """indices (...) of integers in [0, num_embeddings) -> (..., embedding_dim)."""
        idx = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
        if idx.dtype.kind not in "iu":
            raise TypeError(f"Embedding expected integer indices, got dtype {idx.dtype}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_embeddings):
            raise IndexError(
                f"Embedding: indices must lie in [0, {self.num_embeddings}), got "
                f"values from {idx.min()} to {idx.max()}"
            )
        return self.weight[idx]

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


class Dropout(Module):
    """Inverted dropout: in training, y = x * m / (1 - p) with m ~ Bernoulli(1 - p) drawn
    independently per element; in eval mode (or with p = 0), y = x.

    The masks come from ``rng`` when given, else from ``tg.default_rng()`` at call time.
    """

    def __init__(self, p: float = 0.5, *, rng: np.random.Generator | None = None):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be a number in [0, 1], got {p!r}")
        self.p = float(p)
        self.rng = rng

    def forward(self, x: TensorLike) -> Tensor:
        """x of any shape -> the same shape."""
        x = x if isinstance(x, Tensor) else Tensor(x)
        if not self.training or self.p == 0.0:
            return x
        if self.p == 1.0:
            return x * np.zeros(x.shape, x.dtype)
        rng = tg.default_rng() if self.rng is None else self.rng
        keep = rng.random(x.shape) >= self.p
        return x * (keep / (1.0 - self.p)).astype(x.dtype)

    def extra_repr(self) -> str:
        return f"p={self.p}"
