"""The ``indrnn`` cell, composed of registered ops (this package's ``softsign`` among them)."""

from __future__ import annotations

import math

import numpy as np

import tinygrad_lstm as tg
from tinygrad_lstm import Module, Parameter, ShapeError, Tensor, register_cell

from .op import softsign

ACTIVATIONS = ("softsign", "relu", "tanh")


@register_cell("indrnn")
class IndRNNCell(Module):
    """Independently Recurrent Neural Network cell (Li et al., 2018):

        h' = act(x W_ih^T + b_ih + u * h)

    with ``u = weight_hh`` a *vector*: each unit sees only its own past, so the gradient
    through T steps is ``prod_t u * act'(.)`` per unit, and ``|u| <= 1`` keeps it from
    exploding. Shapes: x (N, I), h (N, H), weight_ih (H, I), weight_hh (H,), bias_ih (H,).

    ``act`` is this package's ``softsign`` by default; ``"relu"`` is the paper's choice.
    Init: W_ih, b_ih ~ U(-1/sqrt(H), 1/sqrt(H)), u ~ U(0, 1).
    """

    state_names = ("h",)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        *,
        activation: str = "softsign",
        dtype=np.float32,
        rng: np.random.Generator | None = None,
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"IndRNNCell: activation must be one of {ACTIVATIONS}, got {activation!r}"
            )
        for what, size in (("input_size", input_size), ("hidden_size", hidden_size)):
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ValueError(f"IndRNNCell: {what} must be a positive integer, got {size!r}")
        rng = tg.default_rng() if rng is None else rng
        bound = 1.0 / math.sqrt(hidden_size)
        self.input_size, self.hidden_size, self.activation = input_size, hidden_size, activation
        self.weight_ih = Parameter(
            rng.uniform(-bound, bound, (hidden_size, input_size)), dtype=dtype
        )
        self.weight_hh = Parameter(rng.uniform(0.0, 1.0, hidden_size), dtype=dtype)
        if bias:
            self.bias_ih = Parameter(rng.uniform(-bound, bound, hidden_size), dtype=dtype)
        else:
            self.register_parameter("bias_ih", None)

    def init_state(self, batch_size: int, dtype=None) -> Tensor:
        """Zeros of shape (batch_size, hidden_size)."""
        return tg.zeros(batch_size, self.hidden_size, dtype=dtype or self.weight_ih.dtype)

    def forward(self, x_t: Tensor, h: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """x_t (N, I), h (N, H) or None for zeros -> (h', h'), both (N, H)."""
        if x_t.ndim != 2 or x_t.shape[1] != self.input_size:
            raise ShapeError(
                f"IndRNNCell expected input of shape (N, {self.input_size}), got {x_t.shape}"
            )
        if h is None:
            h = self.init_state(x_t.shape[0], x_t.dtype)
        elif h.shape != (x_t.shape[0], self.hidden_size):
            raise ShapeError(
                f"IndRNNCell expected state h of shape "
                f"({x_t.shape[0]}, {self.hidden_size}), got {h.shape}"
            )
        pre = x_t @ self.weight_ih.T + h * self.weight_hh
        if self.bias_ih is not None:
            pre = pre + self.bias_ih
        if self.activation == "softsign":
            h = softsign(pre)
        else:
            h = pre.relu() if self.activation == "relu" else pre.tanh()
        return h, h

    def extra_repr(self) -> str:
        bias = "" if self.bias_ih is not None else ", bias=False"
        return f"{self.input_size}, {self.hidden_size}{bias}, activation={self.activation!r}"
