"""The bag-of-words baseline: word counts and logistic regression, fitted to its optimum
(NumPy only).

A document becomes its vector of word counts ``c`` (V,), order thrown away, and
``P(positive) = sigmoid(w . c + b)``. The loss, the mean cross-entropy plus
``l2/2 (|w|^2 + b^2)``, is convex, and Newton's method (iteratively reweighted least
squares) reaches its minimum in a few steps, so whatever this baseline gets wrong is the
bag's limit, not an optimiser's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["BagOfWords"]

Document = Sequence[str]


class BagOfWords:
    """Logistic regression on word counts over ``vocab`` (words outside it are refused).

    ``fit(documents, labels)`` (labels 0/1) sets ``weights`` (V,) and ``bias``;
    ``probability`` gives P(label 1) per document, ``predict`` the label.
    """

    def __init__(self, vocab: Sequence[str]):
        if not vocab or len(set(vocab)) != len(vocab):
            raise ValueError("BagOfWords: vocab must be a non-empty sequence of distinct words")
        self.vocab = tuple(vocab)
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.weights = np.zeros(len(self.vocab))
        self.bias = 0.0

    def counts(self, documents: Sequence[Document]) -> np.ndarray:
        """(N, V) how often each word occurs in each document."""
        out = np.zeros((len(documents), len(self.vocab)))
        for n, words in enumerate(documents):
            unknown = sorted({w for w in words if w not in self.index})
            if unknown:
                raise ValueError(f"BagOfWords: words {unknown} are not in the vocabulary")
            np.add.at(out[n], [self.index[w] for w in words], 1.0)
        return out

    def fit(
        self,
        documents: Sequence[Document],
        labels: Sequence[int],
        l2: float = 1e-3,
        iterations: int = 50,
    ) -> BagOfWords:
        """Newton steps on the regularised mean cross-entropy until the gradient's largest
        entry is below 1e-10 (or ``iterations`` steps); returns self."""
        if not documents:
            raise ValueError("BagOfWords.fit: needs at least one document")
        y = np.asarray(labels, dtype=np.float64)
        if y.shape != (len(documents),) or not np.isin(y, (0.0, 1.0)).all():
            raise ValueError(
                f"BagOfWords.fit: labels must be {len(documents)} values of 0 or 1, "
                f"got shape {y.shape}"
            )
        if not l2 > 0:
            raise ValueError(
                f"BagOfWords.fit: l2 must be > 0 (it keeps Newton's steps finite), got {l2!r}"
            )
        features = np.hstack([self.counts(documents), np.ones((len(documents), 1))])
        theta = np.zeros(features.shape[1])
        for _ in range(iterations):
            p = 1.0 / (1.0 + np.exp(-features @ theta))
            gradient = features.T @ (p - y) / len(y) + l2 * theta
            if np.abs(gradient).max() < 1e-10:
                break
            hessian = (features * (p * (1 - p))[:, None]).T @ features / len(y)
            theta -= np.linalg.solve(hessian + l2 * np.eye(len(theta)), gradient)
        self.weights, self.bias = theta[:-1], float(theta[-1])
        return self

    def probability(self, documents: Sequence[Document]) -> np.ndarray:
        """(N,) P(label 1) = sigmoid(weights . counts + bias)."""
        return 1.0 / (1.0 + np.exp(-(self.counts(documents) @ self.weights + self.bias)))

    def predict(self, documents: Sequence[Document]) -> np.ndarray:
        """(N,) the more probable label of each document."""
        return (self.probability(documents) > 0.5).astype(np.int64)
