"""RNN vs LSTM vs GRU on the adding problem at T=50 and T=100 (Hochreiter & Schmidhuber 1997).

Each sequence is T pairs (value ~ U(0, 1), marker); one marker sits in each half, and the
target, given only after the last step, is the sum of the two marked values. Always
answering 1.0 scores MSE 1/6 ~ 0.167, so a model below that line has learned to carry the
marked values across time. Every cell gets the same batches, optimizer and step count; the
table gives the MSE on 1000 fresh sequences.

    python examples/adding_problem.py                      # the full run (many minutes)
    python examples/adding_problem.py --steps 20 --seq-lens 10 --hidden 8   # a smoke test
"""

import argparse
import time

import numpy as np

from tinygrad_lstm import tasks
from tinygrad_lstm.optim import Adam
from tinygrad_lstm.training import Trainer


def train(task, cell: str, args) -> tuple[float, float, float]:
    """Train ``cell`` on ``task``; returns (test MSE, |err| < 0.04 fraction, seconds)."""
    model = tasks.build_model(
        tasks.model_config(task, cell, args.hidden), rng=np.random.default_rng(args.seed)
    )
    trainer = Trainer(
        model,
        Adam(model.parameters(), lr=args.lr),
        lambda p, y: tasks.task_loss(task, p, y),
        clip=1.0,
        per_step_targets=False,
    )
    start = time.perf_counter()
    for step in range(args.steps):
        x, y = task.batch(np.random.default_rng([args.seed, step]), args.batch)
        result = trainer.step(x, y)
        if args.verbose and (step + 1) % max(1, args.steps // 10) == 0:
            print(
                f"    {cell} T={task.seq_len} step {step + 1}: loss {result.loss:.4f}", flush=True
            )
    seconds = time.perf_counter() - start
    scores = tasks.evaluate(model, task, np.random.default_rng([args.seed, 1 << 40]), 1000)
    return scores["mse"], scores["accuracy"], seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq-lens", default="50,100", help="comma-separated T values")
    parser.add_argument("--cells", default="rnn,lstm,gru")
    parser.add_argument("--steps", type=int, default=3000, help="training steps per run")
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", action="store_true", help="print the loss as it goes")
    args = parser.parse_args()
    seq_lens = [int(t) for t in args.seq_lens.split(",")]
    cells = args.cells.split(",")

    print(
        f"adding problem: hidden {args.hidden}, Adam lr {args.lr}, clip 1.0, "
        f"{args.steps} steps of {args.batch}; baseline MSE (always 1.0) = {1 / 6:.3f}\n"
    )
    results = {}
    for t in seq_lens:
        task = tasks.AddingTask(t)
        for cell in cells:
            results[t, cell] = train(task, cell, args)
            mse, acc, sec = results[t, cell]
            print(
                f"  T={t:<4} {cell:<5} test MSE {mse:.4f}  |err|<0.04 {acc:6.1%}  ({sec:.0f}s)",
                flush=True,
            )

    print("\ntest MSE (1000 fresh sequences); baseline 0.167")
    print("T".ljust(6) + "".join(c.rjust(10) for c in cells))
    for t in seq_lens:
        print(str(t).ljust(6) + "".join(f"{results[t, c][0]:>10.4f}" for c in cells))


if __name__ == "__main__":
    main()
