"""Models for the sequence tasks, and the glue that trains, scores and samples them (tooling).

The tasks themselves (seeded data, metrics, baselines) are in ``tinygrad_lstm.tooling.datasets``
and re-exported here, so commands and examples need only this module:

- ``task_loss(task, prediction, y)``: MSE for regression tasks, cross-entropy otherwise
  (masked when ``y = (targets, mask)``);
- ``model_config`` / ``build_model``: a ``SequenceModel`` (optional Embedding, ``Recurrent``
  with any registered cell, Linear head) from a JSON-able dict, so a checkpoint's metadata
  rebuilds it;
- ``evaluate`` and ``sample_text``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from tinygrad_lstm.layers import Embedding, Linear, Recurrent, cross_entropy, mse_loss
from tinygrad_lstm.layers.packing import State
from tinygrad_lstm.layers.recurrent import InitialState
from tinygrad_lstm.tooling.datasets import (
    TASKS,
    AddingTask,
    CopyTask,
    ReberTask,
    SentimentTask,
    SineTask,
    SunspotTask,
    Targets,
    Task,
    TextTask,
    check_count,
    check_rng,
    default_text_path,
    make_task,
)

import tinygrad_lstm as tg
from tinygrad_lstm import Module, Tensor, TensorLike

__all__ = [
    "TASKS",
    "AddingTask",
    "CopyTask",
    "ReberTask",
    "SentimentTask",
    "SequenceModel",
    "SineTask",
    "SunspotTask",
    "Task",
    "TextTask",
    "build_model",
    "default_text_path",
    "evaluate",
    "make_task",
    "model_config",
    "parameter_count",
    "predict",
    "quadratic_in_hidden",
    "sample_text",
    "task_loss",
]


def task_loss(task: Task, prediction: Tensor, y: Targets) -> Tensor:
    """The scalar training loss: ``mse_loss`` for regression, else ``cross_entropy`` (the
    mean over the steps whose mask is 1 when ``y = (targets, mask)``)."""
    if task.regression:
        return mse_loss(prediction, y)
    if isinstance(y, tuple):
        targets, mask = y
        per_step = cross_entropy(prediction, targets, reduction="none")
        return (per_step * Tensor(mask.astype(prediction.dtype))).sum() / max(mask.sum(), 1.0)
    return cross_entropy(prediction, y)


class SequenceModel(Module):
    """``[Embedding] -> Recurrent(cell) -> Linear``, read out as the task needs.

    ``forward(x, state=None) -> (prediction, final_state)``: x time-major (T, B, I), or
    (T, B) integer indices with an embedding; prediction (B, O) for ``readout="last"``,
    (T, B, O) for ``"all"`` and (tail, B, O) for ``"tail"``. A bidirectional ``"last"``
    readout joins the forward direction's last output with the reverse direction's first,
    the final states of both.

    With ``pad_index``, x is (T, B) indices whose sequences are padded at their end with
    ``pad_index``: each sequence's length (its tokens before the padding) goes to the
    recurrent layer as ``lengths=``, and the ``"last"`` readout takes each sequence's own
    last step.
    """

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        output_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        readout: Literal["all", "last", "tail"] = "all",
        tail: int = 1,
        embed_dim: int | None = None,
        fused: bool = False,
        pad_index: int | None = None,
        rng: np.random.Generator | None = None,
    ):
        super().__init__()
        if readout not in ("all", "last", "tail"):
            raise ValueError(f"SequenceModel: readout must be all, last or tail, got {readout!r}")
        self.readout, self.tail, self.hidden_size = readout, tail, hidden_size
        self.pad_index = pad_index
        features = input_size
        if embed_dim is not None:
            self.embed = Embedding(input_size, embed_dim, rng=rng)
            features = embed_dim
        self.rnn = Recurrent(
            cell,
            features,
            hidden_size,
            num_layers,
            bidirectional=bidirectional,
            fused=fused,
            rng=rng,
        )
        self.head = Linear(self.rnn.output_size * (2 if bidirectional else 1), output_size, rng=rng)

    def lengths(self, x: TensorLike) -> np.ndarray:
        """(B,) the tokens before the padding in each column of x (T, B)."""
        codes = np.asarray(x.data if isinstance(x, Tensor) else x)
        real = codes != self.pad_index
        lengths = real.sum(0)
        if codes.ndim != 2 or not np.array_equal(real, np.arange(len(codes))[:, None] < lengths):
            raise ValueError(
                f"SequenceModel: x must be (T, B) indices, each column padded only at its end "
                f"with pad_index {self.pad_index}; got shape {codes.shape} with padding inside"
            )
        if not lengths.all():
            raise ValueError(
                f"SequenceModel: columns {np.flatnonzero(lengths == 0).tolist()} of x are all "
                f"padding (pad_index {self.pad_index})"
            )
        return lengths

    def forward(self, x: TensorLike, state: InitialState = None) -> tuple[Tensor, State]:
        lengths = self.lengths(x) if self.pad_index is not None else None
        h = self.embed(x) if "embed" in self._modules else x
        out, state = self.rnn(h, state, lengths=lengths)
        if self.readout == "all":
            return self.head(out), state
        if self.readout == "tail":
            return self.head(out[out.shape[0] - self.tail :]), state
        if lengths is None:
            last = out[out.shape[0] - 1]
        else:  # each sequence's own last step
            last = out[lengths - 1, np.arange(len(lengths))]
        if self.rnn.bidirectional:
            forward_half, _ = tg.split(last, 2, axis=-1)
            _, reverse_half = tg.split(out[0], 2, axis=-1)
            last = tg.concat([forward_half, reverse_half], axis=-1)
        return self.head(last), state


def model_config(
    task: Task,
    cell: str,
    hidden: int,
    layers: int = 1,
    bidirectional: bool = False,
    fused: bool = False,
) -> dict:
    """The JSON-able description of a model for ``task`` that ``build_model`` builds."""
    if not isinstance(task, Task):
        raise TypeError(
            f"model_config: task must be a Task (e.g. AddingTask(50)), got {type(task).__name__}"
        )
    check_count("model_config", "hidden", hidden)
    check_count("model_config", "layers", layers)
    tg.cell(cell)  # a clear error for an unknown cell, before anything is built
    return {
        "cell": cell,
        "input_size": task.input_size,
        "hidden_size": hidden,
        "output_size": task.output_size,
        "num_layers": layers,
        "bidirectional": bidirectional,
        "readout": task.readout,
        "tail": task.tail,
        "embed_dim": min(hidden, 32) if task.vocab_size else None,
        "fused": fused,
        "pad_index": task.pad_index,
    }


_CONFIG_KEYS = (
    "cell",
    "input_size",
    "hidden_size",
    "output_size",
    "num_layers",
    "bidirectional",
    "readout",
    "tail",
    "embed_dim",
    "fused",
    "pad_index",
)


def _check_config(config: Any) -> None:
    """``model_config``'s dict, field by field: it may come from a file."""
    # A run saved before padded tasks existed has no pad_index: it had no padding.
    if not isinstance(config, dict) or sorted({*config, "pad_index"}) != sorted(_CONFIG_KEYS):
        got = sorted(config) if isinstance(config, dict) else type(config).__name__
        raise ValueError(
            f"build_model: config must be model_config()'s dict with keys "
            f"{list(_CONFIG_KEYS)}, got {got}"
        )
    for key in ("input_size", "hidden_size", "output_size", "num_layers", "tail"):
        check_count("build_model", key, config[key])
    if config["embed_dim"] is not None:
        check_count("build_model", "embed_dim", config["embed_dim"])
    pad = config.get("pad_index")
    if pad is not None:
        check_count("build_model", "pad_index", pad, low=0)
        if config["embed_dim"] is None or pad >= config["input_size"]:
            raise ValueError(
                f"build_model: pad_index {pad} must index the embedding's "
                f"input_size {config['input_size']} words"
            )
    for key in ("bidirectional", "fused"):
        if not isinstance(config[key], bool):
            raise TypeError(f"build_model: {key} must be true or false, got {config[key]!r}")
    if not isinstance(config["cell"], str):
        raise TypeError(
            f"build_model: cell must be a registered cell's name, got {config['cell']!r}"
        )


def build_model(config: dict, rng: np.random.Generator | None = None) -> SequenceModel:
    """A ``SequenceModel`` from ``model_config``'s dict (e.g. a checkpoint's meta)."""
    _check_config(config)
    if rng is not None:
        check_rng("build_model", rng)
    return SequenceModel(**config, rng=rng)


def parameter_count(config: dict) -> int:
    """How many numbers ``build_model(config)`` would hold, without building it (exact for
    the built-in cells; see ``quadratic_in_hidden``)."""
    _check_config(config)

    def count(hidden: int) -> int:
        model = SequenceModel(**{**config, "hidden_size": hidden}, rng=np.random.default_rng(0))
        return sum(p.data.size for p in model.parameters())

    return quadratic_in_hidden(count, config["hidden_size"])


def quadratic_in_hidden(count: Callable[[int], int], hidden: int) -> int:
    """``count(hidden)`` for a large ``hidden``, from three tiny models.

    Every weight of a recurrent layer and its head is a matrix or a vector whose sides are
    the hidden size or fixed sizes, so the parameter count is a quadratic ``a h^2 + b h + c``
    in the hidden size ``h``: it is fitted exactly from ``count(1), count(2), count(3)`` and
    evaluated at ``hidden`` (exact for the built-in cells; an estimate for a cell whose
    weights grow faster than h^2).
    """
    c1, c2, c3 = count(1), count(2), count(3)
    a2 = c3 - 2 * c2 + c1  # 2a, the second difference
    b = c2 - c1 - 3 * a2 // 2  # count(h) = a h^2 + b h + c, a = a2 / 2
    c = c1 - a2 // 2 - b
    return a2 * hidden * hidden // 2 + b * hidden + c


def evaluate(
    model: Module, task: Task, rng: np.random.Generator, batch_size: int = 256
) -> dict[str, float]:
    """Loss and metrics on ``task.held_out`` (a fresh batch, or a task's validation split),
    without a graph and in eval mode."""
    if not isinstance(model, Module):
        raise TypeError(f"evaluate: model must be a Module, got {type(model).__name__}")
    if not isinstance(task, Task):
        raise TypeError(f"evaluate: task must be a Task, got {type(task).__name__}")
    check_rng("evaluate", rng)
    check_count("evaluate", "batch_size", batch_size)
    x, y = task.held_out(rng, batch_size)
    prediction = predict(model, x)
    loss = float(task_loss(task, prediction, y).item())
    return {"loss": loss, **task.metrics(prediction.data, y)}


def predict(model: Module, x: TensorLike) -> Tensor:
    """The prediction of ``model(x) -> (prediction, state)``, in eval mode and without a
    graph; the model's training flag is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        with tg.no_grad():
            prediction, _ = model(x)
    finally:
        model.train(was_training)
    return prediction


def sample_text(
    model: Module,
    task: TextTask,
    prime: str,
    length: int,
    temperature: float,
    rng: np.random.Generator,
) -> str:
    """``prime`` followed by ``length`` characters drawn one at a time from
    ``softmax(logits / temperature)`` (low temperature: cautious; high: adventurous)."""
    if not isinstance(task, TextTask):
        raise TypeError(f"sample_text: task must be a TextTask, got {type(task).__name__}")
    if not (
        isinstance(temperature, (int, float, np.floating))
        and math.isfinite(temperature)
        and temperature > 0
    ):
        raise ValueError(f"sample: temperature must be a finite number > 0, got {temperature!r}")
    check_count("sample_text", "length", length, low=0)
    check_rng("sample_text", rng)
    if not isinstance(prime, str) or not prime:
        raise ValueError(f"sample: the prime must be a non-empty string, got {prime!r}")
    codes = task.encode(prime)
    out = []
    with tg.no_grad():
        logits, state = model(codes[:, None])
        for _ in range(length):
            z = logits.data[-1, 0].astype(np.float64) / temperature
            p = np.exp(z - z.max())
            code = int(rng.choice(len(p), p=p / p.sum()))
            out.append(task.vocab[code])
            logits, state = model(np.array([[code]]), state)
    return prime + "".join(out)
