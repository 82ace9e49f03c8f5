"""The configuration of ``tinygrad-lstm train``: its defaults, what a resumed run may
change, and the check of a whole configuration (which may come from a checkpoint written by
hand). Split out of ``train.py``, the command, which builds the task and model from it.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from tinygrad_lstm.tooling import tasks
from tinygrad_lstm.tooling.cli import CommandError

import tinygrad_lstm as tg
from tinygrad_lstm.optim import OPTIMIZERS

DEFAULTS = {
    "task": "adding",
    "cell": "lstm",
    "hidden": 64,
    "layers": 1,
    "seq_len": 50,
    "steps": 1000,
    "batch": 32,
    "lr": None,
    "optimizer": "adam",
    "clip": 1.0,
    "bptt": None,
    "bidirectional": False,
    "fused": False,
    "seed": 0,
    "text": None,
}
DEFAULT_LR = {"adam": 1e-2, "sgd": 0.1, "adagrad": 0.1}
# What a resumed run may change; everything else must match the checkpoint.
RESUMABLE = {"steps"}
POSITIVE = ("hidden", "layers", "seq_len", "steps", "batch")


def fresh_config(args: argparse.Namespace) -> dict:
    """The configuration of a new run: the flags given, ``DEFAULTS`` for the rest."""
    config = {k: (v if getattr(args, k) is None else getattr(args, k)) for k, v in DEFAULTS.items()}
    if config["lr"] is None and config["optimizer"] in DEFAULT_LR:
        config["lr"] = DEFAULT_LR[config["optimizer"]]
    return config


def resumed_config(args: argparse.Namespace, saved: Any) -> dict:
    """The configuration ``saved`` in a checkpoint, with the flags in ``RESUMABLE``
    applied; any other flag that differs from it is refused."""
    if not isinstance(saved, dict) or set(saved) != set(DEFAULTS):
        raise CommandError(
            f"the checkpoint's training configuration is damaged: expected "
            f"the keys {sorted(DEFAULTS)}"
        )
    config = dict(saved)
    for key in DEFAULTS:
        given = getattr(args, key)
        if given is None:
            continue
        if key in RESUMABLE:
            config[key] = given
        elif given != saved.get(key):
            flag = "--" + key.replace("_", "-")
            raise CommandError(
                f"{flag} {given} differs from the checkpoint's "
                f"{saved.get(key)}; a resumed run keeps its configuration"
            )
    return config


def is_int(value: Any) -> bool:
    """An ``int`` that is not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_config(config: dict) -> None:
    """The whole configuration, which may come from a checkpoint written by hand."""
    for key in ("task", "cell", "optimizer"):
        if not isinstance(config[key], str):
            raise CommandError(f"--{key} must be a name, got {config[key]!r}")
    if config["task"] not in tasks.TASKS:
        raise CommandError(f"unknown task {config['task']!r}; choose from {', '.join(tasks.TASKS)}")
    cells = [c.name for c in tg.list_cells()]
    if config["cell"] not in cells:
        raise CommandError(f"unknown cell {config['cell']!r}; registered cells: {', '.join(cells)}")
    if config["optimizer"] not in OPTIMIZERS:
        raise CommandError(
            f"unknown optimizer {config['optimizer']!r}; choose from {', '.join(OPTIMIZERS)}"
        )
    for key in (*POSITIVE, "seed", "bptt"):
        value, low = config[key], 0 if key == "seed" else 1
        if not (value is None and key == "bptt") and not (is_int(value) and value >= low):
            raise CommandError(
                f"--{key.replace('_', '-')} must be an integer >= {low}, got {value!r}"
            )
    for key, low in (("lr", 0.0), ("clip", 0.0)):
        value = config[key]
        if (
            not isinstance(value, (int, float))
            or isinstance(value, bool)
            or not math.isfinite(value)
            or value < low
            or (key == "lr" and value == 0)
        ):
            raise CommandError(
                f"--{key} must be a finite number {'>' if key == 'lr' else '>='} 0, got {value!r}"
            )
    for key in ("bidirectional", "fused"):
        if not isinstance(config[key], bool):
            raise CommandError(f"--{key} must be true or false, got {config[key]!r}")
    if config["text"] is not None and config["task"] != "text":
        raise CommandError(f"--text is for --task text, not --task {config['task']}")
    if config["bptt"] is not None and config["bidirectional"]:
        raise CommandError(
            "--bptt carries the state forward in time; a bidirectional "
            "layer's reverse direction cannot be truncated that way"
        )
