"""Long sequences: an LSTM backpropagates through T = 10,000 steps without recursion, and the
memory its graph takes grows linearly in T. (Time is measured in benchmarks, not here.)"""

import sys
import tracemalloc

import numpy as np
from tinygrad_lstm.layers import LSTM, RNN

import tinygrad_lstm as tg


def _sequence(steps, batch=2, features=2, requires_grad=True):
    data = np.random.default_rng(steps).standard_normal((steps, batch, features))
    return tg.Tensor(data.astype(np.float32), requires_grad=requires_grad)


def test_lstm_backpropagates_through_ten_thousand_steps():
    lstm = LSTM(2, 4, rng=np.random.default_rng(0))
    x = _sequence(10_000)
    limit = sys.getrecursionlimit()
    out, (_, c_n) = lstm(x)
    (out.sum() + c_n.sum()).backward()
    assert sys.getrecursionlimit() == limit
    assert x.grad.shape == x.shape and np.isfinite(x.grad).all()
    for name, p in lstm.named_parameters():
        assert p.grad is not None and np.isfinite(p.grad).all() and p.grad.any(), name


def test_dropping_a_long_graph_without_backward_does_not_recurse():
    rnn = RNN(2, 2, rng=np.random.default_rng(1))
    out, _ = rnn(_sequence(10_000))
    del out  # frees 10,000 chained nodes by reference counting


def _peak_bytes(lstm, steps):
    x = _sequence(steps)
    tracemalloc.start()
    try:
        out, (h_n, _) = lstm(x)
        (out.sum() + h_n.sum()).backward()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_grows_linearly_in_the_number_of_steps():
    lstm = LSTM(2, 4, rng=np.random.default_rng(2))
    _peak_bytes(lstm, 10)  # build the kernels before measuring
    small, large = _peak_bytes(lstm, 250), _peak_bytes(lstm, 1_000)
    # Linear memory gives a ratio of 4 for 4x the steps; anything quadratic gives ~16.
    assert 3.0 < large / small < 5.0, (small, large)
