"""docs/bptt_walkthrough.ipynb: saved with its outputs, and it runs from top to bottom.

The suite executes a copy in a temporary directory (the committed notebook is left as it is)
with a Jupyter kernel running this very interpreter, and checks what each part claims.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "bptt_walkthrough.ipynb"
nbformat = pytest.importorskip("nbformat")


def outputs_of(nb) -> list[str]:
    """Each code cell's printed text, joined."""
    return [
        "".join(o.get("text", "") for o in cell.outputs)
        for cell in nb.cells
        if cell.cell_type == "code"
    ]


def test_committed_notebook_reads_without_running():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code), "a code cell was saved unexecuted"
    assert not [o for cell in code for o in cell.outputs if o.output_type == "error"]
    images = sum("image/png" in o.get("data", {}) for cell in code for o in cell.outputs)
    assert images >= 3, "the graph and the two plots should be saved as images"
    assert NOTEBOOK.stat().st_size < 300_000, "keep the notebook small enough to read on GitHub"
    headings = [
        cell.source.splitlines()[0]
        for cell in nb.cells
        if cell.cell_type == "markdown" and cell.source.startswith("## ")
    ]
    assert [h.split(".")[0] for h in headings] == [f"## {k}" for k in range(1, 6)], headings


def test_notebook_runs_and_shows_what_it_says(tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    copy = tmp_path / NOTEBOOK.name
    shutil.copy(NOTEBOOK, copy)
    before = NOTEBOOK.stat().st_mtime_ns
    # A kernel spec of our own: whatever "python3" means on this machine, the notebook must
    # run with the interpreter (and the tinygrad_lstm) the tests run with.
    spec = tmp_path / "jupyter" / "kernels" / "tinygrad-lstm-tests"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "tinygrad-lstm tests",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    nb = nbformat.read(copy, as_version=4)
    nbclient.NotebookClient(
        nb,
        timeout=300,
        kernel_name="tinygrad-lstm-tests",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    text = "\n".join(outputs_of(nb))
    assert "the three agree" in text, "part 2: the ledger disagrees with autograd"
    assert "sum over t equals the ledger's and autograd's gradient: True" in text
    assert "step 300  loss" in text and "outputs: [-0.5  0.2  0.1 -0.5]" in text, (
        "part 1: the toy LSTM did not learn its sequence"
    )
    assert "no clipping" in text and "last loss inf" in text.split("clip_grad_norm_(1)")[0]
    clipped = [line for line in text.splitlines() if line.startswith("clip_grad_norm_(1) ")]
    assert clipped and "100 steps" in clipped[0] and "inf" not in clipped[0], clipped
    assert "K = 40: cosine to the full gradient 1.0000" in text
    assert "gradient check of 'leaky': passed" in text and "step 200  mse" in text
    assert NOTEBOOK.stat().st_mtime_ns == before, "the committed notebook was rewritten"
