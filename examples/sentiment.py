"""Sentiment where word order matters: a bidirectional LSTM against a bag of words.

The reviews come from a small grammar with negation ("the plot was not good"), intensifiers
("really dull") and contrast ("the plot was good but the acting was boring", "although
the cast was weak , the music was superb"), labelled by its rules (see
tinygrad_lstm/tooling/sentiment.py). The test reviews are drawn apart from the training
ones and none of them occurs in the training corpus.

- Bag of words: word counts and logistic regression, fitted to its optimum. It cannot see
  order, so it cannot tell "not good" from "good ... not ..." or "A but B" from "B but A".
- Bidirectional LSTM: Embedding, a bidirectional LSTM over the padded batch (each review's
  length passed as ``lengths=``), the two directions' final states into a Linear layer.

The table gives the test accuracy overall and on each kind of review; then, for a few
reviews (and any given with --sentence), the model's running prediction after each word.

    python examples/sentiment.py                                      # under 10 s
    python examples/sentiment.py --sentence "the plot was not bad but the music was dull"
    python examples/sentiment.py --steps 5 --train 64 --test 64       # a smoke test
"""

import argparse
import time

import numpy as np
from tinygrad_lstm.tooling.bag_of_words import BagOfWords
from tinygrad_lstm.tooling.sentiment import (
    KINDS,
    MAX_WORDS,
    VOCAB,
    SentimentTask,
    accuracy_by_kind,
    generate_reviews,
)
from tinygrad_lstm.tooling.sentiment_view import running_prediction, running_prediction_text

from tinygrad_lstm import tasks
from tinygrad_lstm.optim import Adam
from tinygrad_lstm.training import Trainer

EXAMPLES = (
    "the plot was not good",
    "the acting was never boring",
    "the music was superb but the ending was really dull",
    "although the story was weak , the cast was brilliant",
)


def corpora(count_train: int, count_test: int, seed: int):
    """Training reviews, and test reviews drawn apart of which none is a training review."""
    train = generate_reviews(np.random.default_rng([seed, 0]), count_train)
    seen = {r.words for r in train}
    rng, test = np.random.default_rng([seed, 1]), []
    while len(test) < count_test:
        test += [r for r in generate_reviews(rng, count_test) if r.words not in seen]
    return train, test[:count_test]


def train_lstm(task: SentimentTask, train: list, args):
    config = tasks.model_config(task, "lstm", args.hidden, bidirectional=True, fused=args.fused)
    model = tasks.build_model(config, rng=np.random.default_rng(args.seed))
    trainer = Trainer(
        model,
        Adam(model.parameters(), lr=args.lr),
        lambda p, y: tasks.task_loss(task, p, y),
        clip=1.0,
        per_step_targets=False,
    )
    rng = np.random.default_rng([args.seed, 2])
    for step in range(1, args.steps + 1):
        chosen = rng.integers(0, len(train), args.batch)
        result = trainer.step(*task.batch_of([train[i] for i in chosen]))
        if step % max(1, args.steps // 5) == 0:
            print(f"  step {step}: loss {result.loss:.4f}", flush=True)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=4000, help="training reviews")
    parser.add_argument("--test", type=int, default=2000, help="test reviews")
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--composed", dest="fused", action="store_false", help="not fused")
    parser.add_argument(
        "--sentence", action="append", default=[], help="a review of your own (repeatable)"
    )
    args = parser.parse_args()

    task = SentimentTask(MAX_WORDS)
    for sentence in args.sentence:  # checked before a minute of training, not after
        try:
            task.encode([sentence.split()])
        except ValueError as exc:
            parser.error(str(exc))
    train, test = corpora(args.train, args.test, args.seed)

    def shares(reviews: list) -> str:
        return ", ".join(f"{k} {np.mean([r.kind == k for r in reviews]):.0%}" for k in KINDS)

    print(f"{len(train)} training reviews ({shares(train)})")
    print(f"{len(test)} test reviews, none of them a training review ({shares(test)})")
    for kind in KINDS:
        example = next((r for r in train if r.kind == kind), None)
        if example is not None:
            print(f"  {kind:<9} {'+' if example.label else '-'}  {example.text}")

    bag = BagOfWords(VOCAB[1:]).fit([r.words for r in train], [r.label for r in train])
    print(f"\ntraining the bidirectional LSTM (hidden {args.hidden}, {args.steps} steps)")
    started = time.perf_counter()
    model = train_lstm(task, train, args)
    seconds = time.perf_counter() - started
    results = {
        "bag of words + logistic regression": bag.predict([r.words for r in test]),
        f"bidirectional LSTM ({seconds:.0f}s)": tasks.predict(
            model, task.batch_of(test)[0]
        ).data.argmax(-1),
    }

    print(f"\ntest accuracy, {len(test)} reviews none of which is in the training corpus")
    print(f"{'model':<36}{'all':>8}" + "".join(f"{k:>10}" for k in KINDS))
    for name, predicted in results.items():
        scores = accuracy_by_kind(test, predicted)
        print(f"{name:<36}{scores['all']:>8.3f}" + "".join(f"{scores[k]:>10.3f}" for k in KINDS))

    for sentence in (*EXAMPLES, *args.sentence):
        words = sentence.split()
        print(f"\n{sentence}")
        print(running_prediction_text(words, running_prediction(model, task, words)))


if __name__ == "__main__":
    main()
