"""This package's own tests: the fixtures come from tinygrad-lstm's pytest plugin.

The op and the cell are also checked by tinygrad-lstm's generic property tests and by
``tinygrad-lstm gradcheck``, with no code here; these tests add the closed forms.
"""

import numpy as np
from tinygrad_lstm_indrnn import IndRNNCell, softsign

import tinygrad_lstm as tg


def test_registers_one_op_and_one_cell(registered_by):
    assert registered_by("tinygrad-lstm-indrnn") == (["softsign"], ["indrnn"])


def test_softsign_values_and_dtypes():
    x = np.array([-3.0, -1.0, 0.0, 0.5, 1e6])
    for dtype in (np.float32, np.float64):
        y = softsign(tg.Tensor(x.astype(dtype)))
        assert y.dtype == dtype
        np.testing.assert_allclose(y.data, [-0.75, -0.5, 0.0, 1 / 3, 1e6 / (1e6 + 1)], rtol=1e-6)


def test_softsign_gradients(assert_op_gradients):
    report = assert_op_gradients("softsign", max_examples=15)
    assert report.cases == 15


def test_indrnn_gradients(assert_cell_gradients):
    assert_cell_gradients("indrnn")
    assert_cell_gradients("indrnn", activation="tanh", num_layers=1, bidirectional=False)


def test_indrnn_step_is_the_formula():
    rng = np.random.default_rng(0)
    cell = IndRNNCell(3, 4, dtype=np.float64, rng=rng)
    x, h = rng.standard_normal((2, 3)), rng.standard_normal((2, 4))
    out, new = cell(tg.Tensor(x), tg.Tensor(h))
    pre = x @ cell.weight_ih.data.T + cell.bias_ih.data + cell.weight_hh.data * h
    np.testing.assert_allclose(new.data, pre / (1 + np.abs(pre)), rtol=1e-12)
    assert out is new
