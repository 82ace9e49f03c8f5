"""A new recurrent cell in about 20 lines: the Minimal Gated Unit (Zhou et al., 2016).

    f  = sigmoid(x W_xf^T + h W_hf^T + b_f)                 one gate, for forgetting and input
    h~ = tanh(x W_xh^T + (f * h) W_hh^T + b_h)
    h' = (1 - f) * h + f * h~

The cell is written with registered ops only, registered as "mgu", gradient-checked with one
call, and then trained as a 2-layer bidirectional sequence layer, which ``Recurrent`` builds
from the name alone; ``fused=True`` compiles its step into generated Numba kernels, forward
and BPTT (``tinygrad-lstm fuse --cell mgu --import examples/custom_cell.py`` prints them).
The task needs both directions: at every step predict the sum of the two neighbouring
inputs, y[t] = x[t-1] + x[t+1].

Run:  python examples/custom_cell.py [--steps 200]      (about 15 s, compiling included)
"""

import argparse
import math

import numpy as np
from tinygrad_lstm.layers import Linear, Recurrent, mse_loss

import tinygrad_lstm as tg
from tinygrad_lstm import Module, Parameter
from tinygrad_lstm.optim import Adam
from tinygrad_lstm.testing import OP_ATOL, OP_RTOL, assert_cell_gradients


@tg.register_cell("mgu")
class MGUCell(Module):
    """Minimal Gated Unit: state h (N, H); rows of the weights are stacked [f; h~]."""

    def __init__(self, input_size, hidden_size, bias=True, *, dtype=np.float32, rng=None):
        super().__init__()
        rng, bound = rng or tg.default_rng(), 1 / math.sqrt(hidden_size)

        def draw(*shape):
            return Parameter(rng.uniform(-bound, bound, shape).astype(dtype))

        self.weight_ih = draw(2 * hidden_size, input_size)
        self.weight_hh = draw(2 * hidden_size, hidden_size)
        self.bias = draw(2 * hidden_size) if bias else None
        self.hidden_size = hidden_size

    def init_state(self, batch_size, dtype=np.float32):
        return tg.zeros(batch_size, self.hidden_size, dtype=dtype)

    def forward(self, x, h):
        xw = x @ self.weight_ih.T if self.bias is None else x @ self.weight_ih.T + self.bias
        x_f, x_h = tg.split(xw, 2, axis=1)
        w_f, w_h = tg.split(self.weight_hh, 2, axis=0)
        f = (x_f + h @ w_f.T).sigmoid()
        candidate = (x_h + (f * h) @ w_h.T).tanh()
        h = h + f * (candidate - h)  # = (1 - f) * h + f * candidate
        return h, h


class Tagger(Module):
    """Bidirectional 2-layer MGU (compiled) and a linear read-out at every step."""

    def __init__(self, hidden_size: int, rng: np.random.Generator):
        super().__init__()
        self.rnn = Recurrent(
            "mgu",
            1,
            hidden_size,
            num_layers=2,
            bidirectional=True,
            batch_first=True,
            rng=rng,
            fused=True,
        )
        self.head = Linear(2 * hidden_size, 1, rng=rng)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out)


def batch(rng: np.random.Generator, size: int = 32, steps: int = 10):
    """x (size, steps, 1) uniform in [-1, 1]; y[t] = x[t-1] + x[t+1] (zero past the ends)."""
    x = rng.uniform(-1, 1, (size, steps, 1)).astype(np.float32)
    padded = np.pad(x, ((0, 0), (1, 1), (0, 0)))
    return x, padded[:, :-2] + padded[:, 2:]


def main() -> None:
    parser = argparse.ArgumentParser(description="Train a 2-layer bidirectional MGU.")
    parser.add_argument("--steps", type=int, default=200, help="training steps (default 200)")
    args = parser.parse_args()
    assert_cell_gradients("mgu", seq_len=5, num_layers=2, bidirectional=True)
    print(
        f"gradient check of 'mgu' (2 layers, bidirectional, T=5, float64, every parameter, "
        f"input and initial state): passed at rtol={OP_RTOL:g}, atol={OP_ATOL:g}"
    )

    rng = np.random.default_rng(0)
    model = Tagger(16, rng)
    optimizer = Adam(model.parameters(), lr=0.01)
    print(model.rnn)
    print("predicting y[t] = x[t-1] + x[t+1] (the best constant guess, 0, scores MSE 0.6)")
    for step in range(1, args.steps + 1):
        x, y = batch(rng)
        loss = mse_loss(model(tg.Tensor(x)), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step == 1 or step % 25 == 0:
            print(f"step {step:3d}  mse {loss.item():.4f}")


if __name__ == "__main__":
    main()
