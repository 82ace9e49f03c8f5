"""The largest disagreement with PyTorch over the parity test matrix, in float64.

Runs every (kind, configuration) pair of ``tests/layers/test_parity_torch.py`` (RNN tanh and
relu, LSTM with and without proj_size, GRU; layers, directions, batch_first, bias, initial
state, lengths, unbatched input) and reports, over every compared tensor (outputs, final
states, gradients of every parameter, the input and the initial state), the largest
``max|ours - torch| / max|torch|``. The tests assert 1e-10; this prints what is reached.

    python benchmarks/parity_error.py           (needs torch)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "layers"))
import test_parity_torch as parity


def main() -> None:
    worst, where, compared = 0.0, "", 0
    for kind in parity.KINDS:
        for cfg in parity.CONFIGS:
            for name, (ours, theirs) in parity.run_both(kind, cfg, np.float64).items():
                compared += 1
                error = parity.rel_error(ours, theirs)
                if error > worst:
                    worst, where = error, f"{kind}, {cfg}, {name}"
    print(f"{compared} tensors compared; largest relative error {worst:.2e} ({where})")


if __name__ == "__main__":
    main()
