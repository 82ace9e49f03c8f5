"""A character-level LSTM language model, trained with truncated BPTT, then sampled.

The text (by default the short essay shipped with the package) is cut into ``--batch``
parallel streams. Each step reads the next ``--seq-len`` characters of every stream and
trains on them in chunks of ``--bptt`` steps: the state carries on from chunk to chunk and
from step to step, but the graph is cut at each chunk's end (docs/recurrent_equations.md §8): memory
and time per update stay fixed however long the text. Gradients are clipped to ``--clip``;
the optimizer is Adagrad (the classic char-RNN choice) or Adam. Samples are drawn at a low
and a high temperature: cautious and repetitive versus adventurous and strange.

    python examples/char_lm.py                        # about 10 s on idle cores
    python examples/char_lm.py --optimizer adam --lr 0.005 --steps 400 --text my.txt
"""

import argparse
import math
import time

import numpy as np

from tinygrad_lstm import tasks
from tinygrad_lstm.optim import Adagrad, Adam
from tinygrad_lstm.training import Trainer


def streams(codes: np.ndarray, batch: int) -> np.ndarray:
    """The text as ``batch`` contiguous streams side by side: shape (length, batch)."""
    length = len(codes) // batch
    return codes[: length * batch].reshape(batch, length).T


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", help="a UTF-8 text file (default: the shipped essay)")
    parser.add_argument("--optimizer", choices=["adagrad", "adam"], default="adagrad")
    parser.add_argument("--lr", type=float, help="default: adagrad 0.1, adam 0.005")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=50, help="characters per step")
    parser.add_argument("--bptt", type=int, default=25, help="truncation length")
    parser.add_argument("--clip", type=float, default=5.0)
    parser.add_argument("--sample-length", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    task = tasks.TextTask(args.seq_len, path=args.text)
    data = streams(task.codes, args.batch)
    model = tasks.build_model(
        tasks.model_config(task, "lstm", args.hidden), rng=np.random.default_rng(args.seed)
    )
    if args.optimizer == "adagrad":
        optimizer = Adagrad(model.parameters(), lr=args.lr or 0.1)
    else:
        optimizer = Adam(model.parameters(), lr=args.lr or 0.005)
    trainer = Trainer(
        model, optimizer, lambda p, y: tasks.task_loss(task, p, y), clip=args.clip, bptt=args.bptt
    )
    print(
        f"{len(task.text)} characters, vocabulary {task.vocab_size}, {args.batch} streams "
        f"of {len(data)}; LSTM {args.hidden}, {args.optimizer}, clip {args.clip}, "
        f"truncated BPTT every {args.bptt} steps"
    )
    print(f"a uniform guess costs {math.log2(task.vocab_size):.2f} bits per character\n")

    state, position, start = None, 0, time.perf_counter()
    for step in range(args.steps):
        if position + args.seq_len + 1 > len(data):  # end of the streams: start over
            state, position = None, 0
        window = data[position : position + args.seq_len + 1]
        result = trainer.step(window[:-1], window[1:], state)
        state, position = result.state, position + args.seq_len
        if step % 50 == 0 or step == args.steps - 1:
            print(
                f"step {step:4d}  {result.loss / math.log(2):.3f} bits/char  "
                f"grad norm {result.grad_norm:6.2f}  ({time.perf_counter() - start:.0f}s)",
                flush=True,
            )

    rng = np.random.default_rng(args.seed)
    for temperature in (0.5, 1.0):
        text = tasks.sample_text(model, task, "The ", args.sample_length, temperature, rng)
        print(f"\n--- sample at temperature {temperature} ---\n{text}")


if __name__ == "__main__":
    main()
