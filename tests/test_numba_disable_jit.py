"""With NUMBA_DISABLE_JIT=1 the kernels run as plain Python and give the jitted results.

The parent computes fused and composed forward/backward passes with the jitted kernels and
saves them; a subprocess with NUMBA_DISABLE_JIT=1 recomputes them (this file run as a
script), checks that the kernels really are plain Python functions there, and compares.
"""

import os
import subprocess
import sys

import numpy as np
from tinygrad_lstm.layers import GRU, LSTM, RNN

import tinygrad_lstm as tg

CASES = {"lstm": LSTM, "gru": GRU, "rnn": RNN}


def results() -> dict[str, np.ndarray]:
    """Outputs and gradients of every layer, composed and fused, on fixed float64 data."""
    out = {}
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 2, 3))
    for name, cls in CASES.items():
        for fused in (False, True):
            model = cls(3, 4, num_layers=2, bidirectional=True, dtype=np.float64, fused=fused,
                        rng=np.random.default_rng(1))
            xt = tg.Tensor(x, requires_grad=True)
            y, _ = model(xt)
            (y * y).sum().backward()
            key = f"{name}_{'fused' if fused else 'composed'}"
            out[f"{key}_y"] = y.data
            out[f"{key}_dx"] = xt.grad
            out.update({f"{key}_d{n}": p.grad for n, p in model.named_parameters()})
    return out


def test_results_without_jit_equal_the_jitted_ones(tmp_path):
    saved = tmp_path / "jitted.npz"
    np.savez(saved, **results())
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    proc = subprocess.run([sys.executable, __file__, str(saved)], env=env, check=False,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"without JIT:\n{proc.stdout}\n{proc.stderr}"
    assert "compared" in proc.stdout, proc.stdout


def _compare_without_jit(path: str) -> None:
    import numba
    from tinygrad_lstm.ops import kernels

    assert numba.config.DISABLE_JIT, "NUMBA_DISABLE_JIT=1 did not reach numba"
    assert not isinstance(kernels.lstm_forward, numba.core.dispatcher.Dispatcher), \
        "kernels.lstm_forward is still jitted"
    jitted = np.load(path)
    plain = results()
    assert sorted(plain) == sorted(jitted.files)
    worst = max(float(np.max(np.abs(plain[k] - jitted[k])) / (np.max(np.abs(jitted[k])) + 1e-300))
                for k in plain)
    assert worst < 1e-13, f"plain-Python kernels differ from the jitted ones by {worst:.2e}"
    print(f"compared {len(plain)} arrays, worst relative difference {worst:.1e}")


if __name__ == "__main__":
    _compare_without_jit(sys.argv[1])
