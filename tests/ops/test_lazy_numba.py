"""ops/lazy_numba.py (the hand-written recurrent kernels' machinery): helpers are rebound to
their jitted forms where they were imported; an unknown kernel is an
AttributeError; a changed kernel source drops the cached kernels. (That import builds no
kernel and ``compile_all`` builds them all: tests/ops/test_kernels.py.)"""

import numba
import pytest
from tinygrad_lstm.ops import recurrent_kernels, scalar_math


def test_building_a_kernel_rebinds_its_helpers_in_the_modules_that_import_them():
    recurrent_kernels.lstm_step  # noqa: B018
    assert recurrent_kernels._sigmoid_fast is scalar_math.sigmoid_fast  # callable as it is
    assert isinstance(recurrent_kernels._matmul_rows, numba.core.dispatcher.Dispatcher)


def test_unknown_recurrent_kernel_is_an_attribute_error():
    with pytest.raises(AttributeError, match="recurrent_kernels' has no kernel 'elman_step'"):
        recurrent_kernels.elman_step  # noqa: B018


def test_cached_kernels_are_dropped_when_any_kernel_source_changes(tmp_path):
    """Numba checks a cached kernel against its own file only; an edit to a helper in
    another file (scalar_math.py) must still invalidate it: the cache is keyed on all."""
    from tinygrad_lstm.ops.lazy_numba import STAMP, drop_stale_cache

    helper, kernels = tmp_path / "scalar_math.py", tmp_path / "recurrent_kernels.py"
    helper.write_text("def sigmoid(x): return 1 / (1 + exp(-x))\n")
    kernels.write_text("from .scalar_math import sigmoid\n")
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    cached = [
        cache / "recurrent_kernels.lstm_step-40.py311.nbi",
        cache / "recurrent_kernels.lstm_step-40.py311.1.nbc",
    ]
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
