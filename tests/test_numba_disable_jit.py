"""With NUMBA_DISABLE_JIT=1 the kernels run as plain Python and give the jitted results.

The parent computes fused and composed forward/backward passes with the jitted kernels and
saves them; a subprocess with NUMBA_DISABLE_JIT=1 recomputes them (this file run as a
script), checks that the kernels really are plain Python functions there, and compares.
"""

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from tinygrad_lstm.layers import GRU, LSTM, RNN

import tinygrad_lstm as tg

CASES = {"lstm": LSTM, "gru": GRU, "rnn": RNN}
DTYPES = (np.float64, np.float32)


def results() -> dict[str, np.ndarray]:
    """Outputs and gradients of every layer, composed and fused, in float64 and float32
    (whose fused kernels take their own sigmoid/tanh path), on fixed data."""
    out = {}
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    for (name, cls), dtype, fused in itertools.product(CASES.items(), DTYPES, (False, True)):
        model = cls(
            3,
            4,
            num_layers=2,
            bidirectional=True,
            dtype=dtype,
            fused=fused,
            rng=np.random.default_rng(1),
        )
        xt = tg.Tensor(x.astype(dtype), requires_grad=True)
        y, _ = model(xt)
        (y * y).sum().backward()
        key = f"{name}_{np.dtype(dtype).name}_{'fused' if fused else 'composed'}"
        out[f"{key}_y"] = y.data
        out[f"{key}_dx"] = xt.grad
        out.update({f"{key}_d{n}": p.grad for n, p in model.named_parameters()})
    return out


def test_results_without_jit_equal_the_jitted_ones(tmp_path):
    saved = tmp_path / "jitted.npz"
    np.savez(saved, **results())
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    proc = subprocess.run(
        [sys.executable, __file__, str(saved)],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"without JIT:\n{proc.stdout}\n{proc.stderr}"
    assert proc.stdout.count("compared") == 2, proc.stdout


def _compare_without_jit(path: str) -> None:
    import numba
    from tinygrad_lstm.ops import recurrent_kernels

    assert numba.config.DISABLE_JIT, "NUMBA_DISABLE_JIT=1 did not reach numba"
    assert not isinstance(recurrent_kernels.lstm_step, numba.core.dispatcher.Dispatcher), (
        "recurrent_kernels.lstm_step is still jitted"
    )
    jitted = np.load(path)
    plain = results()
    assert sorted(plain) == sorted(jitted.files)
    for dtype, limit in (("float64", 1e-13), ("float32", 1e-6)):
        keys = [k for k in plain if f"_{dtype}_" in k]
        worst = max(
            float(np.max(np.abs(plain[k] - jitted[k])) / np.max(np.abs(jitted[k]))) for k in keys
        )
        assert worst < limit, (
            f"{dtype}: plain-Python kernels differ from the jitted ones by {worst:.2e} (relative)"
        )
        print(f"{dtype}: compared {len(keys)} arrays, worst relative difference {worst:.1e}")


if __name__ == "__main__":
    _compare_without_jit(sys.argv[1])


# Ops whose ufuncs call functions of ours when jitted (the float32 fast sigmoid, the quiet
# compares) or Numba's min/max: with NUMBA_DISABLE_JIT=1 nothing can be compiled for a ufunc
# to call, and numba.vectorize still compiles.
def rule_op_results() -> dict:
    out = {}
    for name in ("sigmoid", "relu", "hardsigmoid", "maximum"):
        for dtype in (np.float32, np.float64):
            x = [tg.Tensor(np.array([-2.0, 0.5, 3.0], dtype), requires_grad=True) for _ in "ab"]
            y = tg.op(name).apply(*x[: tg.op_info(name).arity])
            y.backward(np.ones(3, dtype))
            out[f"{name} {np.dtype(dtype).name}"] = [y.data.tolist(), x[0].grad.tolist()]
    return out


def test_ufuncs_build_without_jit_and_without_a_cache(tmp_path):
    """A first run with NUMBA_DISABLE_JIT=1 (empty caches) builds every rule ufunc (the
    float32 sigmoid's failed: it called sigmoid_fast, plain Python there) and gives the
    jitted results: exactly, but for float32 sigmoid, whose exact rule runs there."""
    script = (
        f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
        "from test_numba_disable_jit import rule_op_results; "
        "print(json.dumps(rule_op_results()))"
    )
    env = dict(
        os.environ,
        NUMBA_DISABLE_JIT="1",
        NUMBA_CACHE_DIR=str(tmp_path / "numba"),
        TINYGRAD_LSTM_KERNEL_CACHE=str(tmp_path / "kernels"),
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    plain = json.loads(proc.stdout)
    for key, values in rule_op_results().items():
        tol = 1e-6 if key == "sigmoid float32" else 0
        np.testing.assert_allclose(plain[key], values, rtol=tol, atol=0, err_msg=key)
