"""An LSTM learns to emit a fixed sequence: the toy of the classic from-scratch LSTM tutorial.

Four fixed random input vectors go in, one per time step; the first hidden unit of the LSTM
must read out -0.5, 0.2, 0.1, -0.5 at those four steps. The loss is the summed squared
error, the optimizer plain SGD. The tutorial derived every gradient of this network by hand;
here the LSTM is composed from checked primitives and autograd does the rest, and the loss
falls by orders of magnitude in a hundred steps.

    python examples/sequence_toy.py [--steps 100] [--lr 0.1]
"""

import argparse

import numpy as np
from tinygrad_lstm.layers import LSTM

import tinygrad_lstm as tg
from tinygrad_lstm.optim import SGD

TARGETS = np.array([-0.5, 0.2, 0.1, -0.5])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--input", type=int, default=50)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    lstm = LSTM(args.input, args.hidden, dtype=np.float64, rng=rng)
    inputs = rng.uniform(-1, 1, (len(TARGETS), 1, args.input))  # (T, batch 1, I)
    optimizer = SGD(lstm.parameters(), lr=args.lr)

    first = None
    for step in range(args.steps):
        output, _ = lstm(inputs)  # (T, 1, H)
        prediction = output[:, 0, 0]  # the first hidden unit at each step
        diff = prediction - tg.Tensor(TARGETS)
        loss = (diff * diff).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        first = first if first is not None else loss.item()
        if step % 10 == 0 or step == args.steps - 1:
            shown = ", ".join(f"{v:+.4f}" for v in prediction.data)
            print(f"step {step:4d}  loss {loss.item():.3e}  prediction [{shown}]")
    print(f"\ntarget      [{', '.join(f'{v:+.4f}' for v in TARGETS)}]")
    print(
        f"loss fell from {first:.3e} to {loss.item():.3e} "
        f"({np.log10(first / loss.item()):.1f} orders of magnitude)"
    )


if __name__ == "__main__":
    main()
