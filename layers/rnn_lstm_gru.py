"""RNN, LSTM and GRU: ``Recurrent`` with the built-in cells, in ``torch.nn``'s shape.

Each class only fixes the cell (``"rnn"``, ``"lstm"``, ``"gru"``, layers/cells.py) and takes
the arguments of ``torch.nn.RNN``, ``torch.nn.LSTM`` or ``torch.nn.GRU`` in their order; the
sequence, the flat parameter names and the checks are ``Recurrent``'s (layers/recurrent.py,
where these classes used to live and which still exports them).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import DTypeLike

from .recurrent import Recurrent
from .unroll import FusedMode

__all__ = ["GRU", "LSTM", "RNN"]


def _no_projection(name: str, proj_size: int) -> None:
    if proj_size != 0:
        raise ValueError(
            f"{name}: proj_size is only supported by LSTM, got proj_size={proj_size!r}"
        )


class RNN(Recurrent):
    """Elman RNN over sequences, h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh):
    ``torch.nn.RNN``'s signature (4th positional argument ``nonlinearity``), names, shapes
    and results. ``forward(x, h0=None, lengths=None) -> (output, h_n)``."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: Literal["tanh", "relu"] = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        proj_size: int = 0,
        dtype: DTypeLike = np.float32,
        rng: np.random.Generator | None = None,
        fused: FusedMode = False,
    ):
        _no_projection("RNN", proj_size)
        super().__init__(
            "rnn",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            dtype=dtype,
            rng=rng,
            fused=fused,
            nonlinearity=nonlinearity,
        )


class LSTM(Recurrent):
    """LSTM over sequences (gates i, f, g, o; optional projection ``proj_size``):
    ``torch.nn.LSTM``'s signature, names, shapes and results.
    ``forward(x, (h0, c0)=None, lengths=None) -> (output, (h_n, c_n))``."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        *,
        dtype: DTypeLike = np.float32,
        rng: np.random.Generator | None = None,
        fused: FusedMode = False,
    ):
        super().__init__(
            "lstm",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            dtype=dtype,
            rng=rng,
            fused=fused,
            proj_size=proj_size,
        )


class GRU(Recurrent):
    """GRU over sequences (gates r, z, n, PyTorch's reset placement):
    ``torch.nn.GRU``'s signature, names, shapes and results.
    ``forward(x, h0=None, lengths=None) -> (output, h_n)``."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        proj_size: int = 0,
        dtype: DTypeLike = np.float32,
        rng: np.random.Generator | None = None,
        fused: FusedMode = False,
    ):
        _no_projection("GRU", proj_size)
        super().__init__(
            "gru",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            dtype=dtype,
            rng=rng,
            fused=fused,
        )
