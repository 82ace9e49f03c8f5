"""Refuse a model that cannot fit in memory before allocating it, with the estimate.

Every command that builds a model from sizes given on its command line (``train``, ``demo``,
``bptt``, ``explain``, ``graph``, ``fuse``) runs them through here first, so a huge
``--hidden`` or ``--seq-len`` is one line naming the sizes and the estimate, not a
``MemoryError`` traceback or a run that never ends.
"""

from __future__ import annotations

import os

import numpy as np
from tinygrad_lstm.layers import Recurrent
from tinygrad_lstm.tooling import tasks
from tinygrad_lstm.tooling.cli import CommandError

# Training keeps each parameter ~6 times: weights, gradient, two optimizer moments (Adam),
# and the copy of weights and moments at the last completed step that a save writes.
COPIES = 6
FLOAT_BYTES = 4  # float32
# The activations are counted roughly: a few numbers per hidden unit, layer, direction,
# step and sequence.
PER_UNIT_AND_STEP = 8


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


def layer_parameter_count(
    cell: str, input_size: int, hidden: int, layers: int = 1, bidirectional: bool = False
) -> int:
    """How many numbers ``Recurrent(cell, input_size, hidden, layers, bidirectional)`` would
    hold, without building it: quadratic in the hidden size (``tasks.quadratic_in_hidden``)
    and linear in the input size (only the first layer's input weights see it)."""

    def count(h: int, i: int) -> int:
        layer = Recurrent(
            cell, i, h, num_layers=layers, bidirectional=bidirectional, rng=np.random.default_rng(0)
        )
        return sum(p.data.size for p in layer.parameters())

    base = tasks.quadratic_in_hidden(lambda h: count(h, 1), hidden)
    per_input = tasks.quadratic_in_hidden(lambda h: count(h, 2) - count(h, 1), hidden)
    return base + (input_size - 1) * per_input


def _refuse_beyond(
    sizes: str, what: str, params: int, numbers: float, float_bytes: int, limit: int | None
) -> None:
    limit = physical_memory() if limit is None else limit
    need = numbers * float_bytes
    if limit is not None and need > limit:
        dtype = f"float{8 * float_bytes}"
        raise CommandError(
            f"{sizes}: the model holds {params:.3g} parameters ({_size(params * float_bytes)} "
            f"as {dtype}) and {what} needs about {_size(need)}, more than the {_size(limit)} "
            "of memory here"
        )


def check_fits(
    model_config: dict,
    seq_len: int,
    batch: int,
    limit: int | None = None,
    command: str = "",
    float_bytes: int = FLOAT_BYTES,
) -> None:
    """``CommandError`` with the estimate when training the model of ``model_config`` on
    batches of ``batch`` sequences of ``seq_len`` steps needs more than ``limit`` bytes
    (default: the machine's memory): ``COPIES`` copies of the parameters and
    ``PER_UNIT_AND_STEP`` numbers per hidden unit, layer, direction, step and sequence.
    ``command`` names a command other than ``train`` in the message."""
    params = tasks.parameter_count(model_config)
    hidden, layers = model_config["hidden_size"], model_config["num_layers"]
    directions = 2 if model_config["bidirectional"] else 1
    activations = PER_UNIT_AND_STEP * seq_len * batch * hidden * layers * directions
    sizes = f"--hidden {hidden} (--layers {layers}, --seq-len {seq_len}, --batch {batch})"
    sizes = f"{command}: {sizes}" if command else sizes
    numbers = COPIES * params + activations
    _refuse_beyond(sizes, command or "training", params, numbers, float_bytes, limit)


def check_layer_fits(
    command: str,
    cell: str,
    input_size: int,
    hidden: int,
    seq_len: int | None,
    *,
    layers: int = 1,
    bidirectional: bool = False,
    per_step_copies: int = 0,
    float_bytes: int = FLOAT_BYTES,
    limit: int | None = None,
) -> None:
    """``check_fits`` for a bare ``Recurrent`` layer on one sequence, as ``explain``,
    ``graph`` and ``fuse`` build it; ``per_step_copies`` counts the copies of the parameters
    the command keeps for every step (``explain`` keeps each step's contribution to every
    weight, its running sum and the step's own gradient: 3). ``seq_len`` None: the command
    has no ``--seq-len`` (one step)."""
    params = layer_parameter_count(cell, input_size, hidden, layers, bidirectional)
    steps = 1 if seq_len is None else seq_len
    directions = 2 if bidirectional else 1
    activations = PER_UNIT_AND_STEP * steps * hidden * layers * directions
    numbers = (COPIES + per_step_copies * steps) * params + activations
    flags = f"--input-size {input_size}" + ("" if seq_len is None else f", --seq-len {seq_len}")
    sizes = f"{command}: --hidden {hidden} ({flags})"
    _refuse_beyond(sizes, command, params, numbers, float_bytes, limit)
