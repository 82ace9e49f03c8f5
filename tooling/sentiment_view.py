"""The running prediction of a sentiment model: what it would answer after each word.

``running_prediction(model, task, words)`` feeds the model every prefix of the review (the
first word, the first two, ...) as one padded batch, so entry t is the model's
P(positive) had the review ended after word t. For a bidirectional model the reverse
direction reads each prefix from its own end, as it would a whole review.
``running_prediction_text`` prints it a word per line, with a bar.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tinygrad_lstm import Module

from .sentiment import SentimentTask, label_by_rules
from .tasks import predict

__all__ = ["running_prediction", "running_prediction_text"]


def running_prediction(model: Module, task: SentimentTask, words: Sequence[str]) -> np.ndarray:
    """(len(words),) P(positive) after each word, in eval mode and without a graph."""
    if not isinstance(task, SentimentTask):
        raise TypeError(f"running_prediction: task must be a SentimentTask, got {task!r}")
    words = list(words)
    if not words:
        raise ValueError("running_prediction: the review has no words")
    logits = predict(model, task.encode([words[: t + 1] for t in range(len(words))]))
    z = logits.data.astype(np.float64)
    p = np.exp(z - z.max(-1, keepdims=True))
    return p[:, 1] / p.sum(-1)


def running_prediction_text(words: Sequence[str], positive: np.ndarray, width: int = 30) -> str:
    """One line per word: the word, P(positive) after it, and a bar from negative (left)
    to positive (right) with ``|`` at 0.5; then what the grammar's rules say, when the
    review is one of its sentences."""
    if len(words) != len(positive):
        raise ValueError(
            f"running_prediction_text: {len(words)} words but {len(positive)} predictions"
        )
    column = max(len(w) for w in words) + 2
    scale = f"{'negative':<{width // 2}}{'positive':>{width - width // 2}}"
    lines = [f"{'word':<{column}}P(positive)  {scale}"]
    for word, p in zip(words, positive):
        bar = [" "] * width
        bar[width // 2] = "|"
        bar[min(width - 1, int(p * width))] = "#"
        lines.append(f"{word:<{column}}{p:>11.3f}  {''.join(bar)}")
    try:
        rule = "positive" if label_by_rules(words) else "negative"
        verdict = "positive" if positive[-1] > 0.5 else "negative"
        lines.append(f"model: {verdict}; the grammar's rules: {rule}")
    except ValueError:
        lines.append("(not a sentence of the grammar: no rule label)")
    return "\n".join(lines)
