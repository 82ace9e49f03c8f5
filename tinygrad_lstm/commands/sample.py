"""``tinygrad-lstm sample``: generate text from a character model saved by ``train``."""

from __future__ import annotations

import numpy as np

from tinygrad_lstm import checkpoint, tasks
from tinygrad_lstm.cli import CommandError

NAME = "sample"
HELP = "generate text from a checkpoint trained with 'train --task text'"


def add_arguments(parser) -> None:
    parser.add_argument("--checkpoint", required=True, metavar="DIR",
                        help="a directory written by 'train --task text' (or its .npz)")
    parser.add_argument("--prime", default="The ", help="text to start from (default 'The ')")
    parser.add_argument("--length", type=int, default=300,
                        help="characters to generate (default 300)")
    parser.add_argument("--temperature", type=float, default=0.8,
                        help="softmax temperature: low is cautious, high is adventurous "
                             "(default 0.8)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampler (default 0)")


def run(args) -> int:
    if args.length <= 0:
        raise CommandError(f"--length must be positive, got {args.length}")
    if args.temperature <= 0:
        raise CommandError(f"--temperature must be positive, got {args.temperature}")
    try:
        ckpt = checkpoint.read(args.checkpoint)
    except checkpoint.CheckpointError as exc:
        raise CommandError(str(exc)) from None
    meta = ckpt.meta
    if meta.get("task", {}).get("name") != "text" or "model" not in meta:
        raise CommandError(f"{ckpt.path} is not a text model (train one with "
                           "'tinygrad-lstm train --task text')")
    task = tasks.TextTask(meta["task"]["seq_len"], vocab=meta["task"]["vocab"])
    model = tasks.build_model(meta["model"])
    try:
        checkpoint.load(ckpt.path, model)
        text = tasks.sample_text(model, task, args.prime, args.length, args.temperature,
                                 np.random.default_rng(args.seed))
    except (checkpoint.CheckpointError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    print(text)
    return 0
