"""The built-in layer plugin: layers, and the recurrent cells it registers by name.

Loaded through the ``tinygrad_lstm.plugins`` entry point, like any third-party plugin.
"""

from .cells import AffineCell, GRUCell, LSTMCell, RNNCell
from .linear import Dropout, Embedding, Linear
from .losses import cross_entropy, mse_loss, nll_loss
from .recurrent import Recurrent
from .rnn_lstm_gru import GRU, LSTM, RNN

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "AffineCell",
    "Dropout",
    "Embedding",
    "GRUCell",
    "LSTMCell",
    "Linear",
    "RNNCell",
    "Recurrent",
    "cross_entropy",
    "mse_loss",
    "nll_loss",
]
