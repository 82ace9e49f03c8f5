"""``tinygrad_lstm.ops.compile_all``: importing tinygrad_lstm builds no kernel (nor imports
numba), and ``compile_all`` builds every kernel the built-in ops run: running each
elementwise op forward and backward in float32 and float64 afterwards builds none, and every
recurrent kernel is there."""

import json
import subprocess
import sys

RECURRENT = [
    "lstm_step",
    "lstm_step_back",
    "gru_step",
    "gru_step_back",
    "rnn_step",
    "rnn_step_back",
    "lstm_forward",
    "lstm_backward",
    "rnn_forward",
    "rnn_backward",
]

_SCRIPT = f"""
import json, sys
import numpy as np
import tinygrad_lstm as tg
from tinygrad_lstm.ops import compile_all, recurrent_kernels, rule_ufuncs
def built():
    recurrent = sorted(n for n in {RECURRENT!r} if n in vars(recurrent_kernels))
    ufuncs = sorted([op, key, str(dtype), fast] for op, key, dtype, fast in rule_ufuncs._BOUND)
    return {{"recurrent": recurrent, "ufuncs": ufuncs}}
report = {{"numba_at_import": "numba" in sys.modules, "built_at_import": built()}}
compile_all()
report["built_by_compile_all"] = built()
for info in tg.list_ops():
    if info.kind != "elementwise" or not info.fn.__module__.startswith("tinygrad_lstm.ops"):
        continue
    for dtype in (np.float32, np.float64):
        inputs = [tg.Tensor(np.full(2, 0.5, dtype), requires_grad=True) for _ in range(info.arity)]
        attrs = {{name: choices[0] for name, choices in info.attrs.items()}}
        out = info.fn.apply(*inputs, **attrs)
        out.backward(np.ones(out.shape, dtype))
report["built_by_running_the_ops"] = built()
print(json.dumps(report))
"""


def test_import_builds_nothing_and_compile_all_builds_every_kernel():
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, check=True, timeout=300
    ).stdout
    report = json.loads(out)
    assert not report["numba_at_import"], "import tinygrad_lstm imported numba"
    assert report["built_at_import"] == {"recurrent": [], "ufuncs": []}, (
        f"built at import: {report['built_at_import']}"
    )
    built = report["built_by_compile_all"]
    assert built["recurrent"] == sorted(RECURRENT)
    assert built["ufuncs"], "compile_all built no rule ufunc"
    assert report["built_by_running_the_ops"] == built, "an op built a kernel compile_all missed"
