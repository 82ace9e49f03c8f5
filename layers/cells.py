"""The built-in recurrent cells, RNN, LSTM and GRU: one time step each, composed of ops.

Parameter names, shapes, gate order and init are PyTorch's (``weight_ih (G*H, I)``,
``weight_hh (G*H, H)``, ``bias_ih``, ``bias_hh``, all drawn from U(-1/sqrt(H), 1/sqrt(H))),
so weights move between these cells and ``torch.nn.RNNCell/LSTMCell/GRUCell`` unchanged.

Every cell keeps the contract ``init_state(batch_size, dtype)`` and
``forward(x_t, state) -> (output_t, new_state)``, which is all ``Recurrent`` needs to run a
user's cell. The built-ins also split a step in two so a sequence layer can do the
state-independent half once for all time steps:

- ``project_inputs(x)``: ``x W_ih^T + b`` for a whole (T*N, I) block in one matmul;
- ``prepare_step()``: tensors computed once per sequence (the transposed ``W_hh``);
- ``step(xw_t, state, prepared)``: the recurrence proper.

``forward`` is exactly ``step(project_inputs(x_t), state, prepare_step())``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

import numpy as np
from numpy.typing import DTypeLike

import tinygrad_lstm as tg
from tinygrad_lstm import Module, Parameter, ShapeError, Tensor, TensorLike, register_cell

from .checks import as_float_input, check_cell_state, check_float_dtype, check_size
from .linear import uniform_parameter
from .packing import State

__all__ = ["AffineCell", "GRUCell", "LSTMCell", "RNNCell"]


class AffineCell(Module):
    """Base of the built-in cells: ``G`` gates fed by ``x W_ih^T + b_ih`` and ``h W_hh^T + b_hh``.

    Subclasses set ``gates`` and ``merge_hidden_bias`` (True when ``b_hh`` may be added to
    ``b_ih`` once, as in RNN and LSTM; GRU's reset gate multiplies ``h W_hn^T + b_hn`` so it
    may not) and define ``step``. ``recurrent_size`` is the width of the fed-back ``h``
    (``proj_size`` for a projected LSTM).
    """

    gates = 1
    merge_hidden_bias = True
    state_names: tuple[str, ...] = ("h",)
    # The hand-written ops/fused.py op that runs a whole pass (layers/unroll.py calls it
    # with ``fused_attrs()``), or None: then ``fused=True`` compiles the step instead.
    fused_op: str | None = None
    # Registered in __init__ (through setattr, by name); bias_ih and bias_hh are None with
    # bias=False.
    weight_ih: Parameter
    weight_hh: Parameter
    bias_ih: Parameter | None
    bias_hh: Parameter | None

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        *,
        dtype: DTypeLike = np.float32,
        rng: np.random.Generator | None = None,
        recurrent_size: int | None = None,
        extra_weights: Mapping[str, tuple[int, ...]] | None = None,
    ):
        super().__init__()
        name = type(self).__name__
        self.input_size = check_size(name, "input_size", input_size)
        self.hidden_size = check_size(name, "hidden_size", hidden_size)
        self.output_size = self.hidden_size if recurrent_size is None else recurrent_size
        dtype = check_float_dtype(name, dtype)
        rng = tg.default_rng() if rng is None else rng
        bound = 1.0 / math.sqrt(self.hidden_size)
        rows = self.gates * self.hidden_size
        # Drawn in registration order, as PyTorch does (values differ: another generator).
        shapes: dict[str, tuple[int, ...]] = {
            "weight_ih": (rows, self.input_size),
            "weight_hh": (rows, self.output_size),
        }
        if bias:
            shapes.update(bias_ih=(rows,), bias_hh=(rows,))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        shapes.update(extra_weights or {})
        for key, shape in shapes.items():
            setattr(self, key, uniform_parameter(shape, bound, dtype, rng))

    def init_state(self, batch_size: int, dtype: DTypeLike | None = None) -> State:
        """Zeros: h of shape (batch_size, output_size)."""
        return tg.zeros(batch_size, self.output_size, dtype=dtype or self.weight_ih.dtype)

    def project_inputs(self, x: Tensor) -> Tensor:
        """x (M, I) -> x W_ih^T + b_ih (+ b_hh when it can be merged), shape (M, G*H)."""
        xw = x @ self.weight_ih.T
        if self.bias_ih is None:
            return xw
        return xw + (self.bias_ih + self.bias_hh if self.merge_hidden_bias else self.bias_ih)

    def prepare_step(self) -> tuple:
        """What every step reuses: (W_hh^T,)."""
        return (self.weight_hh.T,)

    def step(self, xw: Tensor, state: State, prepared: tuple) -> tuple[Tensor, State]:
        """One step given the projected input ``xw`` (N, G*H); subclasses define it."""
        raise NotImplementedError

    def forward(self, x_t: TensorLike, state: State | None = None) -> tuple[Tensor, State]:
        """x_t (N, I) or unbatched (I,), state as ``init_state`` (zeros when None)
        -> (output_t (N, output_size), new_state), unbatched when x_t is."""
        name = type(self).__name__
        x_t = as_float_input(name, x_t, self.weight_ih.dtype)
        unbatched = x_t.ndim == 1
        if x_t.ndim not in (1, 2) or x_t.shape[-1] != self.input_size:
            raise ShapeError(
                f"{name} expected input of shape "
                f"(N, {self.input_size}) or ({self.input_size},), got {x_t.shape}"
            )
        if unbatched:
            x_t = x_t.reshape(1, self.input_size)
        state = check_cell_state(name, self, state, x_t.shape[0], unbatched, self.weight_ih.dtype)
        out, new = self.step(self.project_inputs(x_t), state, self.prepare_step())
        if unbatched:
            out = out.reshape(-1)
            new = tuple(s.reshape(-1) for s in new) if isinstance(new, tuple) else new.reshape(-1)
        return out, new

    def extra_repr(self) -> str:
        bias = "" if self.bias_ih is not None else ", bias=False"
        return f"{self.input_size}, {self.hidden_size}{bias}"


@register_cell("rnn")
class RNNCell(AffineCell):
    """Elman cell: h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh), act = tanh or relu.

    Output and state are both h' (N, H).
    """

    gates = 1
    fused_op = "rnn_sequence"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: Literal["tanh", "relu"] = "tanh",
        *,
        dtype: DTypeLike = np.float32,
        rng: np.random.Generator | None = None,
    ):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(
                f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}"
            )
        super().__init__(input_size, hidden_size, bias, dtype=dtype, rng=rng)
        self.nonlinearity = nonlinearity

    def step(self, xw: Tensor, h: Tensor, prepared: tuple) -> tuple[Tensor, Tensor]:
        """h' = act(xw + h W_hh^T)."""
        (w_hh_t,) = prepared
        pre = xw + h @ w_hh_t
        h = pre.tanh() if self.nonlinearity == "tanh" else pre.relu()
        return h, h

    def fused_attrs(self) -> dict:
        """{"nonlinearity": "tanh" | "relu"}."""
        return {"nonlinearity": self.nonlinearity}

    def extra_repr(self) -> str:
        return super().extra_repr() + f", nonlinearity={self.nonlinearity!r}"


@register_cell("lstm")
class LSTMCell(AffineCell):
    """LSTM cell, gates in PyTorch's order i, f, g, o:

        i, f, g, o = split(x W_ih^T + b_ih + h W_hh^T + b_hh, 4)
        c' = sigmoid(f) * c + sigmoid(i) * tanh(g)
        h' = sigmoid(o) * tanh(c')          (then h' = h' W_hr^T when proj_size > 0)

    State (h (N, P or H), c (N, H)); the output is h'. ``weight_hr`` (P, H) exists only with
    ``proj_size > 0`` (an option ``torch.nn.LSTMCell`` lacks; ``torch.nn.LSTM`` has it).
    """

    gates = 4
    state_names = ("h", "c")

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        *,
        proj_size: int = 0,
        dtype: DTypeLike = np.float32,
        rng: np.random.Generator | None = None,
    ):
        if (
            isinstance(proj_size, bool)
            or not isinstance(proj_size, (int, np.integer))
            or not (0 <= proj_size < hidden_size)
        ):
            raise ValueError(
                f"LSTMCell: proj_size must be an integer in [0, hidden_size="
                f"{hidden_size}), got {proj_size!r}"
            )
        projection = {"weight_hr": (int(proj_size), hidden_size)} if proj_size else None
        super().__init__(
            input_size,
            hidden_size,
            bias,
            dtype=dtype,
            rng=rng,
            recurrent_size=int(proj_size) or None,
            extra_weights=projection,
        )
        self.proj_size = int(proj_size)

    @property
    def fused_op(self) -> str | None:
        """ "lstm_sequence", which has no projection: None with ``proj_size``."""
        return None if self.proj_size else "lstm_sequence"

    def init_state(self, batch_size: int, dtype: DTypeLike | None = None) -> tuple[Tensor, Tensor]:
        """Zeros: (h (batch_size, output_size), c (batch_size, hidden_size))."""
        dtype = dtype or self.weight_ih.dtype
        return (
            tg.zeros(batch_size, self.output_size, dtype=dtype),
            tg.zeros(batch_size, self.hidden_size, dtype=dtype),
        )

    def prepare_step(self) -> tuple:
        """(W_hh^T, W_hr^T or None)."""
        return self.weight_hh.T, (self.weight_hr.T if self.proj_size else None)

    def step(
        self, xw: Tensor, state: tuple[Tensor, Tensor], prepared: tuple
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """The gate equations, given xw = x W_ih^T + b_ih + b_hh."""
        h, c = state
        w_hh_t, w_hr_t = prepared
        i, f, g, o = tg.split(xw + h @ w_hh_t, 4, axis=-1)
        c = f.sigmoid() * c + i.sigmoid() * g.tanh()
        h = o.sigmoid() * c.tanh()
        if w_hr_t is not None:
            h = h @ w_hr_t
        return h, (h, c)

    def extra_repr(self) -> str:
        return super().extra_repr() + (f", proj_size={self.proj_size}" if self.proj_size else "")


@register_cell("gru")
class GRUCell(AffineCell):
    """GRU cell, gates in PyTorch's order r, z, n:

        r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr)
        z = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz)
        n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))
        h' = (1 - z) * n + z * h

    The reset gate multiplies ``h W_hn^T + b_hn`` after the matmul (PyTorch's form, not the
    paper's). Output and state are both h' (N, H).
    """

    gates = 3
    merge_hidden_bias = False
    fused_op = "gru_sequence"

    def prepare_step(self) -> tuple:
        """(W_hh^T, b_hh or None)."""
        return self.weight_hh.T, self.bias_hh

    def step(self, xw: Tensor, h: Tensor, prepared: tuple) -> tuple[Tensor, Tensor]:
        """The gate equations, given xw = x W_ih^T + b_ih."""
        w_hh_t, b_hh = prepared
        hw = h @ w_hh_t if b_hh is None else h @ w_hh_t + b_hh
        two_h = 2 * self.hidden_size
        xw_rz, xw_n = tg.split(xw, [two_h, self.hidden_size], axis=-1)
        hw_rz, hw_n = tg.split(hw, [two_h, self.hidden_size], axis=-1)
        r, z = tg.split((xw_rz + hw_rz).sigmoid(), 2, axis=-1)
        n = (xw_n + r * hw_n).tanh()
        h = n + z * (h - n)  # = (1 - z) * n + z * h, with one product fewer
        return h, h
