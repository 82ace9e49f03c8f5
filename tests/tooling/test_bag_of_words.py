"""The bag-of-words baseline: counts by hand, the fit reaches the optimum of its convex loss
(zero gradient, checked here from the formula), and no bag separates negation (the XOR of
"not" and the adjective)."""

import numpy as np
import pytest
from tinygrad_lstm.tooling.bag_of_words import BagOfWords

VOCAB = ("not", "good", "bad", "film")


def test_counts_by_hand():
    bag = BagOfWords(VOCAB)
    np.testing.assert_array_equal(
        bag.counts([["good", "good", "film"], ["not", "bad"]]), [[0, 2, 0, 1], [1, 0, 1, 0]]
    )
    with pytest.raises(ValueError, match=r"BagOfWords: words \['great'\] are not in the vocab"):
        bag.counts([["great"]])


def test_fit_reaches_the_optimum_of_the_regularised_loss():
    rng = np.random.default_rng(0)
    documents = [list(rng.choice(VOCAB, size=rng.integers(1, 6))) for _ in range(300)]
    labels = [int(("good" in d) != ("not" in d)) for d in documents]
    bag = BagOfWords(VOCAB).fit(documents, labels, l2=1e-2)
    features = np.hstack([bag.counts(documents), np.ones((300, 1))])
    theta = np.append(bag.weights, bag.bias)
    p = 1 / (1 + np.exp(-features @ theta))
    gradient = features.T @ (p - np.array(labels)) / 300 + 1e-2 * theta
    assert np.abs(gradient).max() < 1e-10
    np.testing.assert_allclose(bag.probability(documents), p, rtol=1e-12)


def test_a_bag_reads_words_but_not_negation():
    plain = [["good", "film"], ["bad", "film"]]
    negated = [["not", "good", "film"], ["not", "bad", "film"]]
    bag = BagOfWords(VOCAB).fit(plain, [1, 0])
    np.testing.assert_array_equal(bag.predict(plain), [1, 0])
    # good -> 1, bad -> 0, not good -> 0, not bad -> 1: w_good > w_bad and
    # w_not + w_good < w_not + w_bad cannot both hold, so one of the four is always wrong.
    bag = BagOfWords(VOCAB).fit(plain + negated, [1, 0, 0, 1], l2=1e-6)
    assert np.mean(bag.predict(plain + negated) == [1, 0, 0, 1]) <= 0.75


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="vocab must be a non-empty sequence of distinct"):
        BagOfWords(["a", "a"])
    with pytest.raises(ValueError, match="labels must be 2 values of 0 or 1"):
        BagOfWords(VOCAB).fit([["good"], ["bad"]], [1, 2])
    with pytest.raises(ValueError, match="needs at least one document"):
        BagOfWords(VOCAB).fit([], [])
    with pytest.raises(ValueError, match="l2 must be > 0"):
        BagOfWords(VOCAB).fit([["good"], ["bad"]], [1, 0], l2=0)
