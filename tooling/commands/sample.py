"""``tinygrad-lstm sample``: generate text from a character model saved by ``train``."""

from __future__ import annotations

import argparse

import numpy as np
from tinygrad_lstm.tooling import tasks
from tinygrad_lstm.tooling.cli import CommandError
from tinygrad_lstm.tooling.commands._args import POSITIVE_FLOAT, POSITIVE_INT, SEED

from tinygrad_lstm import checkpoint

NAME = "sample"
HELP = "generate text from a checkpoint trained with 'train --task text'"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        required=True,
        metavar="DIR",
        help="a directory written by 'train --task text' (or its .npz)",
    )
    parser.add_argument("--prime", default="The ", help="text to start from (default 'The ')")
    parser.add_argument(
        "--length", type=POSITIVE_INT, default=300, help="characters to generate (default 300)"
    )
    parser.add_argument(
        "--temperature",
        type=POSITIVE_FLOAT,
        default=0.8,
        help="softmax temperature: low is cautious, high is adventurous (default 0.8)",
    )
    parser.add_argument("--seed", type=SEED, default=0, help="seed of the sampler (default 0)")


def _text_model(path: str) -> tuple[tasks.TextTask, tasks.SequenceModel]:
    """(task, model) rebuilt from the checkpoint's meta; weights not loaded yet."""
    try:
        meta = checkpoint.read_meta(path)
    except checkpoint.CheckpointError as exc:
        raise CommandError(str(exc)) from None
    where = checkpoint.resolve(path)
    task_meta, model_meta = meta.get("task"), meta.get("model")
    if not isinstance(task_meta, dict) or task_meta.get("name") != "text" or model_meta is None:
        raise CommandError(
            f"{where} is not a text model (train one with 'tinygrad-lstm train --task text')"
        )
    try:
        task = tasks.TextTask(task_meta.get("seq_len"), vocab=task_meta.get("vocab"))
        return task, tasks.build_model(model_meta)
    except (TypeError, ValueError, LookupError) as exc:
        raise CommandError(f"{where}: its model description is damaged ({exc})") from None


def run(args: argparse.Namespace) -> int:
    task, model = _text_model(args.checkpoint)
    try:
        checkpoint.load(args.checkpoint, model)
        text = tasks.sample_text(
            model, task, args.prime, args.length, args.temperature, np.random.default_rng(args.seed)
        )
    except (checkpoint.CheckpointError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    print(text)
    return 0
