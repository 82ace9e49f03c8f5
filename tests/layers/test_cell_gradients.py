"""Every registered cell, unrolled as a 2-layer bidirectional sequence layer over T=5 steps,
has correct gradients w.r.t. every parameter, the input and the initial state (float64
central differences; ``testing.OP_RTOL``/``OP_ATOL`` = 1e-6/1e-8). A user's cell is covered
by registering it."""

import pytest
from tinygrad_lstm.tooling.testing import assert_cell_gradients

import tinygrad_lstm as tg


@pytest.mark.parametrize("name", [info.name for info in tg.list_cells()])
def test_registered_cell_gradients(name):
    assert assert_cell_gradients(name, seq_len=5, num_layers=2, bidirectional=True).ok


@pytest.mark.parametrize(
    ("name", "options"), [("rnn", {"nonlinearity": "relu"}), ("lstm", {"proj_size": 2})]
)
def test_cell_option_gradients(name, options):
    assert assert_cell_gradients(name, seq_len=5, num_layers=2, bidirectional=True, **options).ok
