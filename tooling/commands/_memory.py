"""Refuse a model that cannot fit in memory before allocating it, with the estimate."""

from __future__ import annotations

import os

from tinygrad_lstm.tooling import tasks
from tinygrad_lstm.tooling.cli import CommandError

# Training keeps each parameter ~6 times: weights, gradient, two optimizer moments (Adam),
# and the copy of weights and moments at the last completed step that a save writes.
COPIES = 6
FLOAT_BYTES = 4  # float32


def physical_memory() -> int | None:
    """This machine's memory in bytes, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.3g} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def check_fits(model_config: dict, seq_len: int, batch: int, limit: int | None = None) -> None:
    """``CommandError`` with the estimate when training the model of ``model_config`` on
    batches of ``batch`` sequences of ``seq_len`` steps needs more than ``limit`` bytes
    (default: the machine's memory). The activations are counted roughly: a few numbers per
    hidden unit, layer, direction, step and sequence."""
    limit = physical_memory() if limit is None else limit
    if limit is None:
        return
    params = tasks.parameter_count(model_config)
    directions = 2 if model_config["bidirectional"] else 1
    activations = (
        8 * seq_len * batch * model_config["hidden_size"] * model_config["num_layers"] * directions
    )
    need = (COPIES * params + activations) * FLOAT_BYTES
    if need > limit:
        raise CommandError(
            f"--hidden {model_config['hidden_size']} (--layers {model_config['num_layers']}, "
            f"--seq-len {seq_len}, --batch {batch}): the model holds {params:.3g} parameters "
            f"({_size(params * FLOAT_BYTES)} as float32) and training needs about "
            f"{_size(need)}, more than the {_size(limit)} of memory here"
        )
