"""ops/lazy_numba.py: kernels are built on first use, never at import; ``kernels.compile_all``
builds every kernel of both kernel modules; helpers are rebound where they were imported."""

import json
import subprocess
import sys

import numba
import pytest
from tinygrad_lstm.ops import recurrent_kernels, scalar_math

UFUNCS = ["sigmoid", "sigmoid_grad", "tanh_grad", "relu", "relu_grad", "pow_grad",
          "div_grad_denominator", "sigmoid_row"]
RECURRENT = ["lstm_step", "lstm_step_back", "gru_step", "gru_step_back", "rnn_step",
             "rnn_step_back", "lstm_forward", "lstm_backward", "rnn_forward", "rnn_backward"]

_SCRIPT = f"""
import json, sys
import tinygrad_lstm
from tinygrad_lstm.ops import kernels, recurrent_kernels
mods = {{"kernels": (kernels, {UFUNCS!r}), "recurrent_kernels": (recurrent_kernels, {RECURRENT!r})}}
def built():
    return sorted(f"{{m}}.{{n}}" for m, (mod, names) in mods.items() for n in names
                  if n in vars(mod))
report = {{"numba_at_import": "numba" in sys.modules, "built_at_import": built()}}
kernels.compile_all()
report["built_by_compile_all"] = built()
print(json.dumps(report))
"""


def test_import_builds_nothing_and_compile_all_builds_every_kernel():
    out = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True,
                         check=True, timeout=300).stdout
    report = json.loads(out)
    assert not report["numba_at_import"], "import tinygrad_lstm imported numba"
    assert report["built_at_import"] == [], f"built at import: {report['built_at_import']}"
    want = sorted([f"kernels.{n}" for n in UFUNCS] + [f"recurrent_kernels.{n}" for n in RECURRENT])
    assert report["built_by_compile_all"] == want


def test_building_a_kernel_rebinds_its_helpers_in_the_modules_that_import_them():
    recurrent_kernels.lstm_step  # noqa: B018
    assert recurrent_kernels._sigmoid_fast is scalar_math.sigmoid_fast
    assert isinstance(scalar_math.sigmoid_fast, numba.core.dispatcher.Dispatcher)


def test_unknown_recurrent_kernel_is_an_attribute_error():
    with pytest.raises(AttributeError, match="recurrent_kernels' has no kernel 'elman_step'"):
        recurrent_kernels.elman_step  # noqa: B018


def test_cached_kernels_are_dropped_when_any_kernel_source_changes(tmp_path):
    """Numba checks a cached kernel against its own file only; an edit to a helper in
    another file (scalar_math.py) must still invalidate it: the cache is keyed on all."""
    from tinygrad_lstm.ops.lazy_numba import STAMP, drop_stale_cache

    helper, kernels = tmp_path / "scalar_math.py", tmp_path / "kernels.py"
    helper.write_text("def sigmoid(x): return 1 / (1 + exp(-x))\n")
    kernels.write_text("from .scalar_math import sigmoid\n")
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    cached = [cache / "kernels.sigmoid_row-40.py311.nbi",
              cache / "kernels.sigmoid_row-40.py311.1.nbc"]
    other = cache / "elementwise.cpython-311.pyc"
    for f in (*cached, other):
        f.write_bytes(b"machine code")
    assert drop_stale_cache(cache, [helper, kernels]) == 2  # no stamp yet: unknown sources
    assert (cache / STAMP).exists() and other.exists()
    for f in cached:
        f.write_bytes(b"machine code")
    assert drop_stale_cache(cache, [helper, kernels]) == 0, "unchanged sources, kept"
    assert all(f.exists() for f in cached)
    helper.write_text("def sigmoid(x): return 0.5 * (1 + tanh(x / 2))\n")
    assert drop_stale_cache(cache, [helper, kernels]) == 2, "a changed helper drops them"
    assert not any(f.exists() for f in cached) and other.exists()
