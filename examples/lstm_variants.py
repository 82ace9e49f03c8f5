"""Two LSTM variants of Greff et al., "LSTM: A Search Space Odyssey" (2017), as new cells.

The peephole LSTM (the paper's "vanilla" LSTM) lets the gates see the cell state through
per-unit weights p_i, p_f, p_o (vectors, so an elementwise product, not a matmul):

    i = sigmoid(x W_i^T + h R_i^T + p_i * c + b_i)
    f = sigmoid(x W_f^T + h R_f^T + p_f * c + b_f)
    z = tanh(x W_z^T + h R_z^T + b_z)
    c' = f * c + i * z
    o = sigmoid(x W_o^T + h R_o^T + p_o * c' + b_o)
    h' = o * tanh(c')

The coupled input-forget gate LSTM (CIFG) drops the forget gate: f = 1 - i (one gate and
its weights fewer), peepholes kept on i and o.

Both are written in registered ops only; ``Recurrent(..., fused=True)`` compiles their step
into generated Numba kernels (``tinygrad-lstm fuse --import examples/lstm_variants.py
--cell cifg_lstm`` shows them). Run:  python examples/lstm_variants.py [--steps 200]
"""

import argparse
import math

import numpy as np
from tinygrad_lstm.layers import Recurrent

import tinygrad_lstm as tg
from tinygrad_lstm import Module, Parameter
from tinygrad_lstm.optim import Adam


class _GatedCell(Module):
    """Weights for ``gates`` stacked gate blocks, and one peephole vector per name."""

    gates = 4
    peepholes = ("p_i", "p_f", "p_o")

    def __init__(self, input_size, hidden_size, bias=True, *, dtype=np.float32, rng=None):
        super().__init__()
        rng, bound = rng or tg.default_rng(), 1 / math.sqrt(hidden_size)

        def draw(*shape):
            return Parameter(rng.uniform(-bound, bound, shape).astype(dtype))

        self.weight_ih = draw(self.gates * hidden_size, input_size)
        self.weight_hh = draw(self.gates * hidden_size, hidden_size)
        self.bias = draw(self.gates * hidden_size) if bias else None
        for name in self.peepholes:
            setattr(self, name, draw(hidden_size))
        self.hidden_size = hidden_size

    def init_state(self, batch_size, dtype=np.float32):
        zeros = tg.zeros(batch_size, self.hidden_size, dtype=dtype)
        return zeros, zeros

    def preactivations(self, x, h):
        """x W^T + h R^T + b, split into the gate blocks."""
        a = x @ self.weight_ih.T + h @ self.weight_hh.T
        if self.bias is not None:
            a = a + self.bias
        return tg.split(a, self.gates, axis=1)


@tg.register_cell("peephole_lstm")
class PeepholeLSTMCell(_GatedCell):
    """LSTM with peephole connections: state (h, c), both (N, H); gate rows [i; f; z; o]."""

    def forward(self, x, state):
        h, c = state
        a_i, a_f, a_z, a_o = self.preactivations(x, h)
        i = (a_i + self.p_i * c).sigmoid()
        f = (a_f + self.p_f * c).sigmoid()
        c = f * c + i * a_z.tanh()
        o = (a_o + self.p_o * c).sigmoid()
        h = o * c.tanh()
        return h, (h, c)


@tg.register_cell("cifg_lstm")
class CIFGLSTMCell(_GatedCell):
    """Coupled input-forget gate LSTM: f = 1 - i; state (h, c); gate rows [i; z; o]."""

    gates = 3
    peepholes = ("p_i", "p_o")

    def forward(self, x, state):
        h, c = state
        a_i, a_z, a_o = self.preactivations(x, h)
        i = (a_i + self.p_i * c).sigmoid()
        c = c + i * (a_z.tanh() - c)  # = (1 - i) * c + i * z
        o = (a_o + self.p_o * c).sigmoid()
        h = o * c.tanh()
        return h, (h, c)


def main() -> None:
    """Train each variant, compiled, to output the running mean of its inputs."""
    parser = argparse.ArgumentParser(description="Train the peephole and CIFG LSTMs.")
    parser.add_argument("--steps", type=int, default=200, help="training steps (default 200)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    for name in ("peephole_lstm", "cifg_lstm"):
        model = Recurrent(name, 1, 16, fused=True, rng=np.random.default_rng(1))
        readout = tg.Tensor(rng.uniform(-0.3, 0.3, (16, 1)).astype(np.float32), requires_grad=True)
        optimizer = Adam([*model.parameters(), readout], lr=0.02)
        steps = np.arange(1, 13, dtype=np.float32)[:, None, None]
        for step in range(1, args.steps + 1):
            x = rng.uniform(-1, 1, (12, 32, 1)).astype(np.float32)
            target = np.cumsum(x, axis=0) / steps
            out, _ = model(x)
            loss = ((out @ readout - target) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step == 1 or step % 50 == 0:
                print(f"{name:<14} step {step:3d}  mse {loss.item():.4f}")
    print(f"(predicting 0 scores mse {float(np.mean((np.cumsum(x, 0) / steps) ** 2)):.4f})")


if __name__ == "__main__":
    main()
