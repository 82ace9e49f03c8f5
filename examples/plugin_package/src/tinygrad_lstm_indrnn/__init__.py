"""An example third-party tinygrad-lstm plugin.

- op ``softsign``: y = x / (1 + |x|), forward and backward as Numba ufuncs;
- cell ``indrnn``: the Independently Recurrent Neural Network of Li et al. (2018).

Installing this distribution is enough: its entry point in the ``tinygrad_lstm.plugins``
group makes ``import tinygrad_lstm`` import this package, and the decorators below register
both. Nothing here imports tinygrad-lstm's own ops or layers: only its public API.
"""

from .cell import IndRNNCell
from .op import Softsign, softsign

__all__ = ["IndRNNCell", "Softsign", "softsign"]
