"""Generated kernels: kept on disk, so a second process loads instead of compiling; and
plain Python under NUMBA_DISABLE_JIT=1, with the same results.

Each test runs this file as a script in a subprocess (its own process, environment and
kernel cache directory) and reads what it prints.
"""

import json
import os
import subprocess
import sys

import numpy as np
from tinygrad_lstm.compiler import compiled_cell
from tinygrad_lstm.layers import Recurrent

import tinygrad_lstm as tg


def results() -> dict[str, np.ndarray]:
    """Outputs and gradients of compiled LSTM and GRU layers (float64, float32), fixed data."""
    out = {}
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    for name in ("lstm", "gru"):
        for dtype in (np.float64, np.float32):
            layer = Recurrent(
                name,
                3,
                4,
                num_layers=2,
                bidirectional=True,
                dtype=dtype,
                fused="compiled",
                rng=np.random.default_rng(1),
            )
            xt = tg.Tensor(x.astype(dtype), requires_grad=True)
            y, _ = layer(xt)
            (y * y).sum().backward()
            key = f"{name}_{np.dtype(dtype).name}"
            out[f"{key}_y"], out[f"{key}_dx"] = y.data, xt.grad
            out.update({f"{key}_d{n}": p.grad for n, p in layer.named_parameters()})
            out[f"{key}_functions"] = layer
    return out


def _stats(layers) -> dict[str, int]:
    hits = misses = 0
    modules = {}
    for layer in layers:
        for cell in layer._cells:
            compiled = compiled_cell(cell, cell.weight_ih.shape[1], cell.weight_ih.dtype)
            module = compiled.step().module()
            modules[module.__name__] = module
    for module in modules.values():
        for function in vars(module).values():
            if getattr(function, "__module__", None) == module.__name__ and hasattr(
                function, "stats"
            ):
                hits += sum(function.stats.cache_hits.values())
                misses += sum(function.stats.cache_misses.values())
    return {"hits": hits, "misses": misses}


def _run(mode: str, env_extra: dict, *args) -> subprocess.CompletedProcess:
    env = dict(os.environ, **env_extra)
    return subprocess.run(
        [sys.executable, __file__, mode, *args],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_second_process_loads_the_kernels_from_disk(tmp_path):
    env = {"TINYGRAD_LSTM_KERNEL_CACHE": str(tmp_path / "kernels")}
    first = _run("stats", env)
    assert first.returncode == 0, first.stderr
    compiled = json.loads(first.stdout.splitlines()[-1])
    assert compiled["misses"] > 0, f"the first process should compile: {compiled}"
    second = _run("stats", env)
    assert second.returncode == 0, second.stderr
    loaded = json.loads(second.stdout.splitlines()[-1])
    # Functions the drivers call are compiled into them: only the drivers load as such.
    assert loaded["misses"] == 0 and loaded["hits"] > 0, (
        f"the second process compiled again: first {compiled}, second {loaded}"
    )
    assert list((tmp_path / "kernels").glob("*.py")), "no generated module on disk"


def test_results_without_jit_equal_the_jitted_ones(tmp_path):
    saved = tmp_path / "jitted.npz"
    np.savez(saved, **{k: v for k, v in results().items() if not k.endswith("_functions")})
    proc = _run("nojit", {"NUMBA_DISABLE_JIT": "1"}, str(saved))
    assert proc.returncode == 0, f"without JIT:\n{proc.stdout}\n{proc.stderr}"
    assert proc.stdout.count("compared") == 2, proc.stdout


def _compare_without_jit(path: str) -> None:
    import numba

    assert numba.config.DISABLE_JIT, "NUMBA_DISABLE_JIT=1 did not reach numba"
    jitted = np.load(path)
    plain = {k: v for k, v in results().items() if not k.endswith("_functions")}
    layer = Recurrent("gru", 3, 4, fused="compiled")
    forward = compiled_cell(layer._cells[0], 3, np.float32).step().functions()["stage1_forward"]
    assert not isinstance(forward, numba.core.dispatcher.Dispatcher), "still jitted"
    assert sorted(plain) == sorted(jitted.files)
    for dtype, limit in (("float64", 1e-13), ("float32", 1e-6)):
        keys = [k for k in plain if f"_{dtype}_" in k]
        worst = max(
            float(np.max(np.abs(plain[k] - jitted[k])) / np.max(np.abs(jitted[k]))) for k in keys
        )
        assert worst < limit, f"{dtype}: plain-Python kernels differ by {worst:.2e}"
        print(f"{dtype}: compared {len(keys)} arrays, worst relative difference {worst:.1e}")


if __name__ == "__main__":
    if sys.argv[1] == "stats":
        layers = [v for k, v in results().items() if k.endswith("_functions")]
        print(json.dumps(_stats(layers)))
    else:
        _compare_without_jit(sys.argv[2])
