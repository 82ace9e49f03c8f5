"""ops/kernels.py: importing tinygrad_lstm builds no kernel (nor imports numba), and
``compile_all`` builds every kernel the built-in ops run: the rule ufuncs of the elementwise
ops in both dtypes and the recurrent kernels."""

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
# What ops/elementwise.py runs as generated ufuncs (the rest is NumPy's own loops).
RULE_UFUNCS = [
    ("sigmoid", "y", True),
    ("sigmoid", "dx", False),
    ("tanh", "dx", False),
    ("relu", "y", False),
    ("relu", "dx", False),
    ("pow", "dx", False),
    ("div", "db", False),
]

_SCRIPT = f"""
import json, sys
import tinygrad_lstm
from tinygrad_lstm.ops import kernels, recurrent_kernels, rule_ufuncs
def built():
    recurrent = sorted(n for n in {RECURRENT!r} if n in vars(recurrent_kernels))
    ufuncs = sorted([op, key, str(dtype), fast] for op, key, dtype, fast in rule_ufuncs._BOUND)
    return {{"recurrent": recurrent, "ufuncs": ufuncs}}
report = {{"numba_at_import": "numba" in sys.modules, "built_at_import": built()}}
kernels.compile_all()
report["built_by_compile_all"] = built()
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
    want = sorted(
        [op, key, dtype, fast] for op, key, fast in RULE_UFUNCS for dtype in ("float32", "float64")
    )
    assert built["ufuncs"] == want
