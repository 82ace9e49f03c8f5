"""Sentiment where word order matters: short reviews generated from a small grammar, labelled
by its rules (NumPy only).

No labelled corpus is downloaded: the reviews come from this grammar, so every label is
known to be right and the hard cases (negation, contrast) are there in known proportions::

    clause  = "the" SUBJECT VERB [NEGATOR] [INTENSIFIER] ADJECTIVE
    review  = clause                        the clause decides
            | clause "but" clause           the clause after "but" decides
            | "although" clause "," clause  the main clause, the second, decides
            | clause "although" clause      the main clause, the first, decides

A clause is positive when its adjective is positive and it has no negator, or its adjective
is negative and it has one ("never boring"); intensifiers ("very") never flip it. The two
clauses of a contrast review have opposite polarities. Each review is of one ``kind``:
``plain`` (one clause, no negator), ``negation`` (one negated clause) or ``contrast`` (two
clauses, each negated half the time).

A bag of words cannot read these rules: "good" is as common in negative reviews as in
positive ones once "not good" and "good but boring" are in the corpus, and "although A, B"
has the same words as "B although A". A bidirectional LSTM reads the order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .bag_of_words import BagOfWords
from .sequence_task import Batch, Task, check_count

__all__ = [
    "KINDS",
    "MAX_WORDS",
    "VOCAB",
    "Review",
    "SentimentTask",
    "accuracy_by_kind",
    "generate_reviews",
    "label_by_rules",
]

SUBJECTS = ("movie", "film", "plot", "acting", "story", "ending", "music", "cast")
VERBS = ("was", "is", "seemed", "felt")
POSITIVE = ("good", "great", "brilliant", "fun", "moving", "clever", "charming", "superb")
NEGATIVE = ("bad", "boring", "dull", "awful", "weak", "silly", "bland", "terrible")
INTENSIFIERS = ("very", "really", "truly", "quite", "so")
NEGATORS = ("not", "never")
PAD = "<pad>"
VOCAB = (PAD, "the", ",", "but", "although") + (
    SUBJECTS + VERBS + POSITIVE + NEGATIVE + INTENSIFIERS + NEGATORS
)
# The share of each kind of review in a generated corpus: plain reviews are the commonest,
# as in real ones.
KINDS = {"plain": 0.4, "negation": 0.25, "contrast": 0.35}
MAX_WORDS = 14  # "although" + two clauses of 6 words + ","


@dataclass(frozen=True)
class Review:
    """One generated review: its words, its label (1 positive, 0 negative) and its kind."""

    words: tuple[str, ...]
    label: int
    kind: str

    @property
    def text(self) -> str:
        """The words joined by spaces."""
        return " ".join(self.words)


def _clause(rng: np.random.Generator, positive: bool, negated: bool) -> list[str]:
    words = ["the", SUBJECTS[rng.integers(len(SUBJECTS))], VERBS[rng.integers(len(VERBS))]]
    if negated:
        words.append(NEGATORS[rng.integers(len(NEGATORS))])
    if rng.random() < 0.4:
        words.append(INTENSIFIERS[rng.integers(len(INTENSIFIERS))])
    adjectives = POSITIVE if positive != negated else NEGATIVE
    return words + [adjectives[rng.integers(len(adjectives))]]


def _review(rng: np.random.Generator) -> Review:
    label = int(rng.integers(2))
    kind = str(rng.choice(list(KINDS), p=list(KINDS.values())))
    if kind != "contrast":
        return Review(tuple(_clause(rng, bool(label), kind == "negation")), label, kind)
    decisive = _clause(rng, bool(label), rng.random() < 0.5)
    other = _clause(rng, not label, rng.random() < 0.5)
    form = rng.integers(3)
    if form == 0:
        words = other + ["but"] + decisive
    elif form == 1:
        words = ["although"] + other + [","] + decisive
    else:
        words = decisive + ["although"] + other
    return Review(tuple(words), label, kind)


def generate_reviews(rng: np.random.Generator, count: int) -> list[Review]:
    """``count`` reviews drawn from the grammar, labels balanced in expectation."""
    check_count("generate_reviews", "count", count, low=0)
    return [_review(rng) for _ in range(count)]


def _clause_polarity(words: list[str]) -> int:
    """+1 or -1 for one clause: the adjective's sign, flipped by a negator."""
    middle = words[3:-1]
    negated = bool(middle) and middle[0] in NEGATORS
    if negated:
        middle = middle[1:]
    grammatical = (
        len(words) >= 4
        and words[0] == "the"
        and words[1] in SUBJECTS
        and words[2] in VERBS
        and words[-1] in POSITIVE + NEGATIVE
        and (not middle or (len(middle) == 1 and middle[0] in INTENSIFIERS))
    )
    if not grammatical:
        raise ValueError(
            f"sentiment: {' '.join(words)!r} is not a clause of the grammar "
            f"(the SUBJECT VERB [NEGATOR] [INTENSIFIER] ADJECTIVE)"
        )
    sign = 1 if words[-1] in POSITIVE else -1
    return -sign if negated else sign


def label_by_rules(words: list[str] | tuple[str, ...]) -> int:
    """The grammar's label (1 positive, 0 negative) of a review given as words, read by its
    rules: the clause after "but", or the clause not introduced by "although", decides."""
    words = list(words)
    if "but" in words:
        cut = words.index("but")
        return int(_clause_polarity(words[cut + 1 :]) > 0)
    if words and words[0] == "although":
        if "," not in words:
            raise ValueError(f"sentiment: {' '.join(words)!r} needs ',' after its first clause")
        return int(_clause_polarity(words[words.index(",") + 1 :]) > 0)
    if "although" in words:
        return int(_clause_polarity(words[: words.index("although")]) > 0)
    return int(_clause_polarity(words) > 0)


def accuracy_by_kind(reviews: list[Review], predicted: np.ndarray) -> dict[str, float]:
    """Accuracy of ``predicted`` labels (N,) overall (``"all"``) and on each kind of review
    (NaN for a kind with no review)."""
    predicted = np.asarray(predicted)
    if predicted.shape != (len(reviews),):
        raise ValueError(
            f"accuracy_by_kind: expected {len(reviews)} predictions, got shape {predicted.shape}"
        )
    right = predicted == np.array([r.label for r in reviews])
    kinds = np.array([r.kind for r in reviews])
    scores = {"all": float(right.mean()) if len(right) else float("nan")}
    for kind in KINDS:
        chosen = right[kinds == kind]
        scores[kind] = float(chosen.mean()) if chosen.size else float("nan")
    return scores


class SentimentTask(Task):
    """Classify a generated review as negative (0) or positive (1).

    x (T, B) word indices into ``VOCAB``, each review padded at its end with ``PAD`` (index
    0) to the batch's longest, T <= ``MAX_WORDS``; y (B,) labels. The model reads the
    padding's positions as the reviews' lengths (``pad_index``). ``seq_len`` is the longest
    review the model must take; the grammar's longest has ``MAX_WORDS`` words.
    ``baseline()`` is a bag-of-words logistic regression's accuracy on fresh reviews.
    """

    name, readout, causal = "sentiment", "last", False
    output_size = 2
    vocab = VOCAB
    input_size = vocab_size = len(VOCAB)
    pad_index = 0
    baseline_label = "accuracy of a bag-of-words logistic regression"

    def __init__(self, seq_len: int):
        super().__init__(seq_len)
        if seq_len < MAX_WORDS:
            raise ValueError(
                f"sentiment: seq_len must be at least {MAX_WORDS} (the grammar's longest "
                f"review), got {seq_len}"
            )
        self.index = {w: i for i, w in enumerate(VOCAB)}

    def encode(self, reviews: list[list[str] | tuple[str, ...]]) -> np.ndarray:
        """(T, B) word indices of word lists, padded with index 0 to the longest;
        ``ValueError`` naming any unknown word."""
        if not reviews or not all(reviews):
            raise ValueError("sentiment: encode needs one or more non-empty word lists")
        unknown = sorted({w for words in reviews for w in words if w == PAD or w not in self.index})
        if unknown:
            raise ValueError(f"sentiment: {unknown} not in the vocabulary: {' '.join(VOCAB[1:])}")
        x = np.zeros((max(len(w) for w in reviews), len(reviews)), dtype=np.int64)
        for b, words in enumerate(reviews):
            x[: len(words), b] = [self.index[w] for w in words]
        return x

    def batch_of(self, reviews: list[Review]) -> Batch:
        """``(x, y)`` for given reviews."""
        x = self.encode([r.words for r in reviews])
        return x, np.array([r.label for r in reviews], dtype=np.int64)

    def _batch(self, rng: np.random.Generator, batch_size: int) -> Batch:
        return self.batch_of(generate_reviews(rng, batch_size))

    def baseline(self) -> float:
        train = generate_reviews(np.random.default_rng(0), 4000)
        test = generate_reviews(np.random.default_rng(1), 2000)
        model = BagOfWords(VOCAB[1:]).fit([r.words for r in train], [r.label for r in train])
        return accuracy_by_kind(test, model.predict([r.words for r in test]))["all"]
