"""An encoder-decoder with attention that translates human-written dates into ISO 8601.

``DateTranslator``: characters -> ``Embedding`` -> a bidirectional ``LSTM`` (the encoder,
whose outputs are the memory) -> ``Recurrent(AttentionLSTMCell)`` (the decoder, attending to
the memory at every step) -> ``Linear`` over the target tokens. The data is
``tinygrad_lstm.tooling.dates``.

- Training uses teacher forcing: the decoder reads the true previous token at every step
  and ``teacher_forced_loss`` is the cross-entropy of every next token; the decoder runs as
  any sequence layer does, through ``Recurrent``.
- ``greedy_decode`` feeds the model its own most likely token instead, one step at a time,
  and keeps the attention weights of every step (what ``attention_heatmap`` draws).
- ``exact_match`` scores whole strings: a date counts only when every character is right.

``attention="none"`` is the baseline without attention (Sutskever et al., Cho et al.,
2014): the decoder is a plain LSTM of size ``2 * hidden`` that starts from the encoder's
final states (forward and reverse joined) and sees nothing else of the source.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
from numpy.typing import DTypeLike
from tinygrad_lstm.layers import LSTM, Embedding, Linear, Recurrent, cross_entropy
from tinygrad_lstm.layers.attention import AttentionLSTMCell, AttentionState

import tinygrad_lstm as tg
from tinygrad_lstm import Module, Tensor

from .dates import (
    MAX_SOURCE_LEN,
    SOS,
    SOURCE_CHARS,
    TARGET_LEN,
    TARGET_TOKENS,
    Example,
    decode_target,
    encode_sources,
    encode_targets,
)

__all__ = [
    "ATTENTION",
    "Attention",
    "DateTranslator",
    "Score",
    "Translation",
    "exact_match",
    "greedy_decode",
    "teacher_forced_loss",
]

Attention = Literal["additive", "dot", "none"]
ATTENTION: tuple[str, ...] = get_args(Attention)
# The decoder's state: AttentionLSTMCell's, or (h, c) of the baseline's LSTM cell.
DecoderState = AttentionState | tuple[Tensor, Tensor]


class DateTranslator(Module):
    """Bidirectional LSTM encoder, LSTM decoder (attending to the encoder), linear read-out.

    ``hidden`` is the encoder's size per direction; the memory has ``2 * hidden`` features
    per source character. The attention decoder (``attention="additive"`` or ``"dot"``) is
    an ``AttentionLSTMCell`` of size ``hidden``; the baseline's (``"none"``) an LSTM of size
    ``2 * hidden``. ``forward(sources, lengths, inputs)``: sources (S, N) character indices
    (S = ``MAX_SOURCE_LEN``), lengths (N,), inputs (T, N) target-token indices (teacher
    forcing) -> logits (T, N, len(TARGET_TOKENS)).
    """

    def __init__(
        self,
        hidden: int = 32,
        embedding: int = 16,
        attention: Attention = "additive",
        *,
        dtype: DTypeLike = np.float32,
        rng: np.random.Generator | None = None,
        fused_encoder: bool = True,
    ):
        super().__init__()
        if attention not in ATTENTION:
            raise ValueError(
                f"DateTranslator: attention must be one of {ATTENTION}, got {attention!r}"
            )
        self.attention = attention
        rng = tg.default_rng() if rng is None else rng
        self.source_embedding = Embedding(len(SOURCE_CHARS), embedding, dtype=dtype, rng=rng)
        self.encoder = LSTM(
            embedding, hidden, bidirectional=True, dtype=dtype, rng=rng, fused=fused_encoder
        )
        self.target_embedding = Embedding(len(TARGET_TOKENS), embedding, dtype=dtype, rng=rng)
        if attention == "none":
            self.decoder = LSTM(embedding, 2 * hidden, dtype=dtype, rng=rng)
        else:
            self.decoder = Recurrent(
                AttentionLSTMCell,
                embedding,
                hidden,
                dtype=dtype,
                rng=rng,
                memory_size=2 * hidden,
                memory_len=MAX_SOURCE_LEN,
                attention=attention,
            )
        width = self.decoder.cell_l0.output_size
        self.head = Linear(width, len(TARGET_TOKENS), dtype=dtype, rng=rng)

    def encode(self, sources: np.ndarray, lengths: np.ndarray) -> DecoderState:
        """The decoder's initial state. With attention: the encoder's outputs (N, S, 2H) as
        the memory, padding masked, h and c zeros; without: the encoder's final (h, c), the
        two directions joined, each (N, 2H)."""
        memory, (h, c) = self.encoder(self.source_embedding(sources), lengths=lengths)
        if self.attention == "none":
            return tg.concat([h[0], h[1]], axis=1), tg.concat([c[0], c[1]], axis=1)
        return self.decoder.cell_l0.attend_to(memory.transpose(1, 0, 2), lengths)

    def forward(self, sources: np.ndarray, lengths: np.ndarray, inputs: np.ndarray) -> Tensor:
        """Teacher forcing: logits (T, N, V) for every next token given the true previous."""
        state = tuple(s.reshape(1, *s.shape) for s in self.encode(sources, lengths))
        outputs, _ = self.decoder(self.target_embedding(inputs), state)
        return self.head(outputs)

    def decode_step(
        self, tokens: np.ndarray, state: DecoderState
    ) -> tuple[Tensor, DecoderState, Tensor | None]:
        """One decoder step on the previous tokens (N,) -> (logits (N, V), new state,
        attention weights (N, S), None for the baseline)."""
        x = self.target_embedding(tokens)
        if self.attention == "none":
            output, state = self.decoder.cell_l0(x, state)
            return self.head(output), state, None
        output, state, weights = self.decoder.cell_l0.step(x, state)
        return self.head(output), state, weights


def teacher_forced_loss(model: DateTranslator, examples: Sequence[Example]) -> Tensor:
    """The mean cross-entropy of every target token (the ISO date and ``<eos>``)."""
    sources, lengths = encode_sources([e[0] for e in examples])
    inputs, targets = encode_targets([e[1] for e in examples])
    return cross_entropy(model(sources, lengths, inputs), targets)


@dataclass
class Translation:
    """What ``greedy_decode`` gives for N sources: the decoded texts, the tokens (N, T) and
    the attention weights (N, T, S) of each of the T steps over the S source positions
    (None for the baseline, which has none)."""

    texts: list[str]
    tokens: np.ndarray
    weights: np.ndarray | None


def greedy_decode(
    model: DateTranslator, sources: Sequence[str], steps: int = TARGET_LEN
) -> Translation:
    """Translate ``sources`` by feeding the model its own most likely token at each step.

    No gradient is recorded. All ``steps`` steps run for every source (a batch decodes
    together); each text ends at its first ``<eos>``."""
    indices, lengths = encode_sources(sources)
    token = np.full(len(sources), TARGET_TOKENS.index(SOS))
    tokens, weights = [], []
    with tg.no_grad():
        state = model.encode(indices, lengths)
        for _ in range(steps):
            logits, state, attention = model.decode_step(token, state)
            token = logits.data.argmax(axis=-1)
            tokens.append(token)
            if attention is not None:
                weights.append(attention.data)
    tokens_nt = np.stack(tokens, axis=1)
    texts = [decode_target(row) for row in tokens_nt]
    return Translation(texts, tokens_nt, np.stack(weights, axis=1) if weights else None)


@dataclass
class Score:
    """Exact-match accuracy overall and per source format, and the wrong translations as
    (source, predicted, expected)."""

    accuracy: float
    per_format: dict[str, float]
    errors: list[tuple[str, str, str]]


def exact_match(model: DateTranslator, examples: Sequence[Example], batch_size: int = 500) -> Score:
    """Greedy-decode every example; a translation counts only when it equals the ISO date."""
    right: dict[str, list[bool]] = {}
    errors = []
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        texts = greedy_decode(model, [e[0] for e in chunk]).texts
        for (source, target, fmt), text in zip(chunk, texts):
            right.setdefault(fmt, []).append(text == target)
            if text != target:
                errors.append((source, text, target))
    total = sum(len(v) for v in right.values())
    return Score(
        sum(sum(v) for v in right.values()) / max(total, 1),
        {fmt: float(np.mean(v)) for fmt, v in right.items()},
        errors,
    )
