"""Translation with attention: an encoder-decoder turns human-written dates into ISO 8601.

"3rd of March 2021", "Mar 3, '21", "Wed 3 Mar 2021" or "03/03/2021" all become "2021-03-03"
(twelve formats, generated with Python's datetime; nothing to download). The encoder is a
bidirectional LSTM over the characters; the decoder an LSTM cell that, at every step, attends
to the encoder's outputs (additive, Bahdanau's, or dot attention) and writes one character.
Training uses teacher forcing (the decoder reads the true previous character); translation
is greedy (it reads its own). The score is exact match on held-out dates: dates never seen in
training, each in one of the formats; a date counts only when all ten characters are right.

Before training, the decoder's step is gradient-checked like every cell, by
``assert_cell_gradients``: a sequence layer of it, against central differences in float64,
with respect to every parameter, the input and the initial state, the encoder's memory
included. After, the attention weights of one translation are drawn (a PNG with matplotlib,
and as text).

    python examples/translate_dates.py                       # additive attention, < 1 min
    python examples/translate_dates.py --attention none      # the baseline: no attention
    python examples/translate_dates.py --compare             # additive, dot and none, a table
    python examples/translate_dates.py --translate "the 1st of May, 1999"
"""

import argparse
import time

import numpy as np
from tinygrad_lstm.layers.attention import AttentionLSTMCell
from tinygrad_lstm.tooling import dates
from tinygrad_lstm.tooling.attention_heatmap import heatmap_png, heatmap_text
from tinygrad_lstm.tooling.translation import (
    ATTENTION,
    DateTranslator,
    exact_match,
    greedy_decode,
    teacher_forced_loss,
)

from tinygrad_lstm.grad_clipping import clip_grad_norm_
from tinygrad_lstm.optim import Adam
from tinygrad_lstm.testing import OP_ATOL, OP_RTOL, assert_cell_gradients


def check_decoder_cell(attention: str) -> None:
    """The gradient check every registered cell gets, on the decoder's cell (class form)."""
    report = assert_cell_gradients(
        AttentionLSTMCell,
        input_size=3,
        hidden_size=4,
        seq_len=4,
        num_layers=1,
        bidirectional=False,
        memory_size=3,
        memory_len=5,
        attention=attention,
    )
    print(
        f"gradient check of the {attention} attention decoder cell (T=4, float64, every "
        f"parameter, input, state and memory): passed at rtol={OP_RTOL:g}, atol={OP_ATOL:g} "
        f"(worst relative error {report.worst_rel_error:.1e})"
    )


def train(attention: str, corpus: dates.DateCorpus, args) -> tuple[DateTranslator, float, float]:
    """Train one model; returns (model, last loss, seconds). Batch i comes from (seed, i)."""
    model = DateTranslator(
        args.hidden, args.embedding, attention, rng=np.random.default_rng(args.seed)
    )
    optimizer = Adam(model.parameters(), lr=args.lr)
    start, loss = time.perf_counter(), float("nan")
    for step in range(1, args.steps + 1):
        # Decayed linearly to 0: at a constant rate Adam's late updates kick an almost
        # trained model out of its minimum now and then (a loss spike that costs accuracy).
        optimizer.lr = args.lr * (1 - (step - 1) / args.steps)
        examples = corpus.batch(np.random.default_rng([args.seed, step]), args.batch)
        total = teacher_forced_loss(model, examples)
        optimizer.zero_grad()
        total.backward()
        clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        loss = total.item()
        if step == 1 or step % args.log_every == 0 or step == args.steps:
            print(f"  {attention:>8}  step {step:4d}  loss {loss:.4f}", flush=True)
    return model, loss, time.perf_counter() - start


def report(model: DateTranslator, corpus: dates.DateCorpus) -> float:
    """Exact match on the held-out dates, per format, and a few of the mistakes."""
    score = exact_match(model, corpus.test_examples())
    print(f"exact match on {corpus.held_out} held-out dates: {score.accuracy:.1%}")
    for fmt in (f for f in dates.FORMATS if f in score.per_format):
        example = dates.render(dates.dt.date(2021, 3, 3), fmt)
        print(f"  {fmt:<16} {score.per_format[fmt]:7.1%}   e.g. {example!r}")
    for source, got, expected in score.errors[:5]:
        print(f"  wrong: {source!r} -> {got!r} (expected {expected})")
    return score.accuracy


def show_attention(model: DateTranslator, source: str, args) -> None:
    """Translate ``source`` and draw where each output character looked."""
    result = greedy_decode(model, [source])
    text = result.texts[0]
    print(f"\n{source!r} -> {text!r}")
    if result.weights is None:
        print("(the baseline has no attention to draw)")
        return
    rows = [dates.TARGET_TOKENS[t] for t in result.tokens[0]]
    steps = rows.index(dates.EOS) + 1 if dates.EOS in rows else len(rows)  # up to <eos>
    rows, weights = rows[:steps], result.weights[0, :steps]
    print(heatmap_text(list(source), rows, weights))
    if args.png and heatmap_png(args.png, list(source), rows, weights, f"{source!r} -> {text!r}"):
        print(f"wrote {args.png}")


def compare(corpus: dates.DateCorpus, args) -> None:
    """The same batches, steps and seed for each decoder; one table."""
    rows = []
    for attention in ATTENTION:
        model, loss, seconds = train(attention, corpus, args)
        score = exact_match(model, corpus.test_examples())
        params = sum(p.size for p in model.parameters())
        rows.append((attention, params, loss, score.accuracy, seconds))
    setup = f"{args.steps} steps of {args.batch}, hidden {args.hidden}"
    print(f"\n{setup}, exact match on {corpus.held_out} held-out dates")
    print(f"{'attention':<10} {'params':>7} {'final loss':>11} {'exact match':>12} {'time':>7}")
    for attention, params, loss, accuracy, seconds in rows:
        print(f"{attention:<10} {params:>7} {loss:>11.4f} {accuracy:>12.1%} {seconds:>6.1f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attention", choices=ATTENTION, default="additive")
    parser.add_argument("--compare", action="store_true", help="train all three, print a table")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=32, help="encoder size per direction")
    parser.add_argument("--embedding", type=int, default=16)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--clip", type=float, default=5.0, help="gradient norm clipping")
    parser.add_argument("--held-out", type=int, default=2000, help="test dates never trained on")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-every", type=int, default=100)
    parser.add_argument("--translate", help="a date of your own to translate and draw")
    parser.add_argument("--png", default="attention.png", help="heatmap PNG ('' for none)")
    args = parser.parse_args()
    if args.translate is not None:
        try:
            dates.encode_sources([args.translate])
        except ValueError as exc:
            parser.error(f"--translate: {exc}")
    corpus = dates.DateCorpus(seed=args.seed, held_out=args.held_out)
    if args.compare:
        compare(corpus, args)
        return
    if args.attention != "none":
        check_decoder_cell(args.attention)
    model, _, seconds = train(args.attention, corpus, args)
    print(f"trained in {seconds:.1f}s")
    report(model, corpus)
    source = args.translate or dates.render(
        dates.FIRST_DATE + dates.dt.timedelta(days=int(corpus.test_days[0])), "weekday"
    )
    show_attention(model, source, args)


if __name__ == "__main__":
    main()
