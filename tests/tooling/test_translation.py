"""The date translator: its whole teacher-forced loss gradchecked in float64, greedy decoding
agreeing with teacher forcing on the model's own tokens, exact match counted as whole
strings, the baseline without attention, and errors."""

import numpy as np
import pytest
from tinygrad_lstm.tooling import dates
from tinygrad_lstm.tooling.translation import (
    ATTENTION,
    DateTranslator,
    exact_match,
    greedy_decode,
    teacher_forced_loss,
)

from tinygrad_lstm.gradcheck import gradcheck
from tinygrad_lstm.testing import OP_ATOL, OP_RTOL

EXAMPLES = dates.DateCorpus(seed=0, held_out=40).test_examples()


def tiny(attention, seed=0):
    return DateTranslator(
        hidden=3,
        embedding=2,
        attention=attention,
        dtype=np.float64,
        rng=np.random.default_rng(seed),
        fused_encoder=False,
    )


@pytest.mark.parametrize("attention", ATTENTION)
def test_the_whole_loss_gradchecks(attention):
    model = tiny(attention)
    named = list(model.named_parameters())
    # Every parameter along 3 random directions (max_elements=0): the embeddings, the
    # encoder over padded sources of different lengths, the decoder and the read-out.
    result = gradcheck(
        lambda *_: teacher_forced_loss(model, EXAMPLES[:3]),
        *(p for _, p in named),
        rtol=OP_RTOL,
        atol=OP_ATOL,
        max_elements=0,
        n_directions=3,
        names=[n for n, _ in named],
    )
    assert len(result.inputs) == len(named)


@pytest.mark.parametrize("attention", ATTENTION)
def test_greedy_decoding_is_teacher_forcing_on_its_own_tokens(attention):
    model = tiny(attention, seed=1)
    sources = [e[0] for e in EXAMPLES[:6]]
    result = greedy_decode(model, sources)
    assert result.tokens.shape == (6, dates.TARGET_LEN)
    # Fed its own previous tokens, the teacher-forced pass (Recurrent over the whole
    # sequence) picks the same tokens the step-by-step decoder picked.
    indices, lengths = dates.encode_sources(sources)
    sos = np.full((1, 6), dates.TARGET_TOKENS.index(dates.SOS))
    inputs = np.concatenate([sos, result.tokens.T[:-1]])
    logits = model(indices, lengths, inputs).data
    np.testing.assert_array_equal(logits.argmax(-1).T, result.tokens)
    if attention == "none":
        assert result.weights is None
    else:
        assert result.weights.shape == (6, dates.TARGET_LEN, dates.MAX_SOURCE_LEN)
        np.testing.assert_allclose(result.weights.sum(-1), 1.0, rtol=1e-12)
        beyond = np.arange(dates.MAX_SOURCE_LEN)[None, :] >= lengths[:, None]
        assert np.all(result.weights.transpose(1, 0, 2)[:, beyond] == 0)


def test_exact_match_counts_whole_strings(monkeypatch):
    model = tiny("dot")
    examples = EXAMPLES[:5]
    # Right, one character off, right, truncated, right.
    answers = [examples[0][1], examples[1][1][:-1] + "x", examples[2][1], "2021", examples[4][1]]
    decoded = type("Decoded", (), {"texts": answers})
    monkeypatch.setattr(
        "tinygrad_lstm.tooling.translation.greedy_decode", lambda _model, sources: decoded
    )
    score = exact_match(model, examples)
    assert score.accuracy == 3 / 5
    assert score.errors == [
        (examples[1][0], answers[1], examples[1][1]),
        (examples[3][0], "2021", examples[3][1]),
    ]
    per_format = {}
    for (_, target, fmt), answer in zip(examples, answers):
        per_format.setdefault(fmt, []).append(answer == target)
    assert score.per_format == {fmt: np.mean(v) for fmt, v in per_format.items()}


def test_an_unknown_attention_is_refused():
    with pytest.raises(ValueError, match="DateTranslator: attention must be one of"):
        DateTranslator(attention="cosine")
