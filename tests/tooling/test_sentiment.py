"""The sentiment grammar: its labels follow its rules (checked by a reading of the rules
written here, independently of the generator), each kind of review is what it says, and
the batches are padded at the end only. The bag-of-words baseline is checked in
test_bag_of_words.py."""

import re

import numpy as np
import pytest
from tinygrad_lstm.tooling import sentiment, tasks
from tinygrad_lstm.tooling.sentiment import (
    KINDS,
    MAX_WORDS,
    VOCAB,
    Review,
    SentimentTask,
    accuracy_by_kind,
    generate_reviews,
    label_by_rules,
)

POSITIVE = {"good", "great", "brilliant", "fun", "moving", "clever", "charming", "superb"}
NEGATIVE = {"bad", "boring", "dull", "awful", "weak", "silly", "bland", "terrible"}
CLAUSE = re.compile(r"the \w+ (was|is|seemed|felt)( (?P<neg>not|never))?( \w+)? (?P<adj>\w+)")


def _sign(clause):
    m = CLAUSE.fullmatch(clause)
    assert m and m["adj"] in POSITIVE | NEGATIVE, clause
    sign = 1 if m["adj"] in POSITIVE else -1
    return -sign if m["neg"] else sign


def _expected(text):
    """(label, the two clauses' signs or None), read with regular expressions."""
    for pattern, decisive in (
        (r"(.+) but (.+)", 2),
        (r"although (.+) , (.+)", 2),
        (r"(.+) although (.+)", 1),
    ):
        m = re.fullmatch(pattern, text)
        if m:
            return int(_sign(m[decisive]) > 0), (_sign(m[1]), _sign(m[2]))
    return int(_sign(text) > 0), None


@pytest.mark.parametrize(
    "text, label",
    [
        ("the plot was good", 1),
        ("the plot was really good", 1),
        ("the plot was very bad", 0),
        ("the plot was not good", 0),
        ("the plot was not very good", 0),
        ("the acting was never boring", 1),
        ("the plot was good but the acting was boring", 0),
        ("the plot was bad but the acting was not boring", 1),
        ("although the plot was good , the acting was bad", 0),
        ("although the plot was not good , the acting was not bad", 1),
        ("the plot was good although the acting was bad", 1),
        ("the plot was never dull although the acting was not great", 1),
    ],
)
def test_rule_labels_by_hand(text, label):
    assert label_by_rules(text.split()) == label


@pytest.mark.parametrize(
    "text",
    [
        "the plot good",
        "plot was good",
        "the plot was good but",
        "the plot was very not good",
        "the plot was fine",
        "although the plot was good the acting was bad",
    ],
)
def test_sentences_outside_the_grammar_are_refused(text):
    with pytest.raises(ValueError, match="sentiment: .* (is not a clause|needs ',')"):
        label_by_rules(text.split())


def test_generated_reviews_follow_the_rules_and_their_kinds():
    reviews = generate_reviews(np.random.default_rng(0), 3000)
    for review in reviews:
        label, signs = _expected(review.text)
        assert review.label == label == label_by_rules(review.words), review
        assert len(review.words) <= MAX_WORDS
        negators = sum(w in ("not", "never") for w in review.words)
        if review.kind == "contrast":
            assert signs is not None and signs[0] == -signs[1], review  # opposite clauses
        else:
            assert signs is None and negators == (review.kind == "negation"), review
    kinds = np.array([r.kind for r in reviews])
    for kind, share in KINDS.items():  # within four standard deviations of the design
        assert abs(np.mean(kinds == kind) - share) < 4 * np.sqrt(share * (1 - share) / 3000)
    assert abs(np.mean([r.label for r in reviews]) - 0.5) < 4 * np.sqrt(0.25 / 3000)
    assert {w for r in reviews for w in r.words} == set(VOCAB[1:])  # every word is used


def test_batches_are_padded_at_the_end_and_labelled_by_the_rules():
    task = tasks.make_task({"name": "sentiment", "seq_len": 20})
    x, y = task.batch(np.random.default_rng(3), 50)
    assert x.dtype == np.int64 and y.shape == (50,) and set(np.unique(y)) == {0, 1}
    lengths = (x != 0).sum(0)
    assert x.shape[0] == lengths.max() <= MAX_WORDS
    for b in range(50):
        words = [VOCAB[i] for i in x[: lengths[b], b]]
        assert np.all(x[lengths[b] :, b] == 0) and y[b] == label_by_rules(words)


def test_encode_refuses_unknown_words_and_the_padding_word():
    task = SentimentTask(MAX_WORDS)
    np.testing.assert_array_equal(
        task.encode([["the", "plot"], ["never"]]),
        [[VOCAB.index("the"), VOCAB.index("never")], [VOCAB.index("plot"), 0]],
    )
    with pytest.raises(ValueError, match=r"sentiment: \['<pad>', 'superbly'\] not in the vocab"):
        task.encode([["the", "plot", "was", "superbly"], ["<pad>"]])
    with pytest.raises(ValueError, match="needs one or more non-empty word lists"):
        task.encode([["the"], []])
    with pytest.raises(ValueError, match="sentiment: seq_len must be at least 14"):
        SentimentTask(13)


def test_accuracy_by_kind_hand_values():
    reviews = [
        Review(("a",), 1, "plain"),
        Review(("b",), 0, "plain"),
        Review(("c",), 1, "negation"),
        Review(("d",), 0, "contrast"),
    ]
    scores = accuracy_by_kind(reviews, np.array([1, 1, 0, 0]))
    assert scores == {"all": 0.5, "plain": 0.5, "negation": 0.0, "contrast": 1.0}
    assert np.isnan(accuracy_by_kind(reviews[:1], np.array([1]))["contrast"])
    with pytest.raises(ValueError, match="expected 4 predictions, got shape"):
        accuracy_by_kind(reviews, np.array([1, 0]))


def test_baseline_is_the_bag_of_words_accuracy_on_fresh_reviews():
    # The bag can read plain reviews but not the rest; the share of plain reviews bounds it.
    accuracy = SentimentTask(MAX_WORDS).baseline()
    assert 0.45 < accuracy < KINDS["plain"] + 0.5 * (1 - KINDS["plain"]) + 0.05
    assert sentiment.SentimentTask.baseline_label.startswith("accuracy of a bag-of-words")
