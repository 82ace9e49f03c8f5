"""The examples that train compiled cells run from the command line and learn."""

import os
import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(script, *args) -> str:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_custom_cell_mgu_trains_compiled():
    out = _run("custom_cell.py", "--steps", "50")
    assert "gradient check of 'mgu'" in out and "passed" in out
    assert "Recurrent('mgu'" in out
    losses = [float(v) for v in re.findall(r"mse (\S+)", out)]
    assert losses[-1] < losses[0] / 3, out


def test_lstm_variants_train_compiled():
    out = _run("lstm_variants.py", "--steps", "100")
    for name in ("peephole_lstm", "cifg_lstm"):
        losses = [float(v) for v in re.findall(rf"{name}\s+step\s+\d+\s+mse (\S+)", out)]
        assert losses[-1] < losses[0] / 5, out
