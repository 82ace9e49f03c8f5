"""An LSTM decoder cell with attention over an encoder's outputs (Bahdanau et al., 2015).

At every step the previous hidden state ``h`` (the query) scores each of the ``S`` encoder
outputs ``m_s`` (the memory, ``E`` features each); the softmax of the scores weighs the
memory into one context vector, which joins the step's input to a plain LSTM step:

    additive:  e_s = v . tanh(W_q h + W_k m_s)          W_q (A, H), W_k (A, E), v (A,)
    dot:       e_s = m_s . (W_q h)                       W_q (E, H)
    a = softmax(e + score_bias)                          (N, S); score_bias masks padding
    context = sum_s a_s m_s                              (N, E)
    h', c' = LSTMCell([x; context], (h, c))              the registered "lstm" cell
    output = [h'; context]                               (N, H + E)

The memory travels in the state, unchanged from step to step: ``(h, c, memory, score_bias)``
with ``memory`` flattened to (N, S*E). So the cell keeps the contract every cell keeps,
``forward(x_t, state) -> (output_t, new_state)``: ``Recurrent`` runs it over a whole target
sequence (teacher forcing), and ``tinygrad_lstm.testing.assert_cell_gradients`` checks its
gradients like any cell's, with respect to the memory and the mask too (they are part of
the initial state it perturbs).

It is not registered by name: it needs an encoder's memory to mean anything (``train
--cell`` has none to give it), and the cell compiler declines it (the step views each row's
memory as an (S, E) matrix and reduces over S, where a compiled step keeps one row per
sequence), so ``fused=True`` runs it composed, with a ``FusionWarning``; the per-cell
compiled and ``fuse`` tests require every registered cell to compile. Use the class:
``Recurrent(AttentionLSTMCell, ...)``.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

import tinygrad_lstm as tg
from tinygrad_lstm import Module, ShapeError, Tensor, TensorLike

from .checks import as_float_input, check_cell_state, check_float_dtype, check_size
from .linear import uniform_parameter

__all__ = ["MASKED", "AttentionLSTMCell", "AttentionState"]

# The score bias of a padded memory position: exp(MASKED - max) is exactly 0 in float32 and
# float64. Finite, not -inf, so that a product of the mask with 0 anywhere stays 0, not NaN.
MASKED = -1e9

# (h (N, H), c (N, H), memory (N, S*E), score_bias (N, S)).
AttentionState = tuple[Tensor, Tensor, Tensor, Tensor]


class AttentionLSTMCell(Module):
    """LSTM cell that attends to a memory carried in its state (see the module docstring).

    ``AttentionLSTMCell(input_size, hidden_size, bias=True, *, memory_size, memory_len,
    attention="additive" | "dot", attention_size=hidden_size)``: ``memory_size`` is E (for a
    bidirectional encoder of hidden size H_enc, 2 * H_enc), ``memory_len`` is S, the padded
    source length, ``attention_size`` A (additive attention only). Parameters: the LSTM
    step's, ``lstm.weight_ih`` (4H, I + E), ``lstm.weight_hh``, ``lstm.bias_ih``,
    ``lstm.bias_hh``; ``query_weight`` and, for additive attention, ``key_weight`` and
    ``score_weight``; each drawn from U(-1/sqrt(fan_in), 1/sqrt(fan_in)), the LSTM's first.
    """

    state_names = ("h", "c", "memory", "score_bias")

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        *,
        memory_size: int,
        memory_len: int,
        attention: Literal["additive", "dot"] = "additive",
        attention_size: int | None = None,
        dtype: DTypeLike = np.float32,
        rng: np.random.Generator | None = None,
    ):
        super().__init__()
        name = type(self).__name__
        self.input_size = check_size(name, "input_size", input_size)
        self.hidden_size = check_size(name, "hidden_size", hidden_size)
        self.memory_size = check_size(name, "memory_size", memory_size)
        self.memory_len = check_size(name, "memory_len", memory_len)
        if attention not in ("additive", "dot"):
            raise ValueError(f"{name}: attention must be 'additive' or 'dot', got {attention!r}")
        if attention == "dot" and attention_size is not None:
            raise ValueError(f"{name}: attention_size is for additive attention, not 'dot'")
        self.attention = attention
        size = hidden_size if attention_size is None else attention_size
        self.attention_size = check_size(name, "attention_size", size)
        dtype = check_float_dtype(name, dtype)
        rng = tg.default_rng() if rng is None else rng
        self.output_size = self.hidden_size + self.memory_size
        self.lstm = tg.cell("lstm")(
            self.input_size + self.memory_size, self.hidden_size, bias, dtype=dtype, rng=rng
        )
        h, e, a = self.hidden_size, self.memory_size, self.attention_size
        if attention == "additive":
            self.query_weight = uniform_parameter((a, h), 1 / math.sqrt(h), dtype, rng)
            self.key_weight = uniform_parameter((a, e), 1 / math.sqrt(e), dtype, rng)
            self.score_weight = uniform_parameter((a,), 1 / math.sqrt(a), dtype, rng)
        else:
            self.query_weight = uniform_parameter((e, h), 1 / math.sqrt(h), dtype, rng)

    def init_state(self, batch_size: int, dtype: DTypeLike | None = None) -> AttentionState:
        """Zeros: h, c (batch_size, H), memory (batch_size, S*E), score_bias (batch_size, S).

        A zero memory is a valid state (the context is then 0); ``attend_to`` builds the
        state a decoder starts from."""
        dtype = dtype or self.query_weight.dtype
        h, s, e = self.hidden_size, self.memory_len, self.memory_size
        return (
            tg.zeros(batch_size, h, dtype=dtype),
            tg.zeros(batch_size, h, dtype=dtype),
            tg.zeros(batch_size, s * e, dtype=dtype),
            tg.zeros(batch_size, s, dtype=dtype),
        )

    def attend_to(
        self,
        memory: Tensor,
        lengths: ArrayLike | None = None,
        hidden: tuple[Tensor, Tensor] | None = None,
    ) -> AttentionState:
        """The state that starts decoding from ``memory`` (N, S, E), batch-major.

        ``lengths`` (N,) counts the real positions of each row (1..S; all S when None): the
        rest get score bias ``MASKED``, so their attention weight is exactly 0. ``hidden``
        is (h, c), each (N, H), zeros when None."""
        name = type(self).__name__
        memory = as_float_input(name, memory, self.query_weight.dtype)
        n, s, e = memory.shape[0], self.memory_len, self.memory_size
        if memory.shape != (n, s, e):
            raise ShapeError(
                f"{name}.attend_to expected memory of shape (N, {s}, {e}), got {memory.shape}"
            )
        count = np.full(n, s) if lengths is None else np.asarray(lengths)
        if (
            count.shape != (n,)
            or count.dtype.kind not in "iu"
            or count.min() < 1
            or count.max() > s
        ):
            raise ValueError(
                f"{name}.attend_to: lengths must be {n} integers in [1, {s}], got {lengths!r}"
            )
        bias = np.where(np.arange(s) < count[:, None], 0.0, MASKED).astype(memory.dtype)
        h, c = hidden if hidden is not None else self.init_state(n, memory.dtype)[:2]
        return h, c, memory.reshape(n, s * e), Tensor(bias)

    def scores(self, h: Tensor, keys: Tensor) -> Tensor:
        """e (N, S) from the query h (N, H) and the memory as keys (N, S, E)."""
        n = h.shape[0]
        if self.attention == "additive":
            query = (h @ self.query_weight.T).reshape(n, 1, self.attention_size)
            return (keys @ self.key_weight.T + query).tanh() @ self.score_weight
        query = (h @ self.query_weight.T).reshape(n, self.memory_size, 1)
        return (keys @ query).reshape(n, self.memory_len)

    def step(
        self, x_t: TensorLike, state: AttentionState | None = None
    ) -> tuple[Tensor, AttentionState, Tensor]:
        """One step, also returning the attention weights a (N, S) it used.

        x_t (N, I); state as ``attend_to`` (zeros when None) -> (output (N, H + E),
        new_state, a)."""
        name = type(self).__name__
        x_t = as_float_input(name, x_t, self.query_weight.dtype)
        if x_t.ndim != 2 or x_t.shape[1] != self.input_size:
            raise ShapeError(
                f"{name} expected input of shape (N, {self.input_size}), got {x_t.shape}"
            )
        n = x_t.shape[0]
        h, c, memory, score_bias = check_cell_state(name, self, state, n, False, x_t.dtype)
        keys = memory.reshape(n, self.memory_len, self.memory_size)
        weights = tg.softmax(self.scores(h, keys) + score_bias, axis=-1)
        context = (weights.reshape(n, 1, self.memory_len) @ keys).reshape(n, self.memory_size)
        h, (h, c) = self.lstm(tg.concat([x_t, context], axis=1), (h, c))
        return tg.concat([h, context], axis=1), (h, c, memory, score_bias), weights

    def forward(
        self, x_t: TensorLike, state: AttentionState | None = None
    ) -> tuple[Tensor, AttentionState]:
        """x_t (N, I), state -> (output (N, H + E), new_state): ``step`` without the weights."""
        output, state, _ = self.step(x_t, state)
        return output, state

    def extra_repr(self) -> str:
        text = (
            f"{self.input_size}, {self.hidden_size}, memory_size={self.memory_size}, "
            f"memory_len={self.memory_len}, attention={self.attention!r}"
        )
        return text + (
            f", attention_size={self.attention_size}" if self.attention == "additive" else ""
        )
