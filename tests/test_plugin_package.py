"""The example third-party plugin (examples/plugin_package) once installed: discovered with its
origin, trained through the CLI, gradient-checked by the generic tests with no code of its own,
and its own test suite runs on the fixtures of tinygrad-lstm's pytest plugin.

These tests need ``pip install ./examples/plugin_package`` (CI does it) and skip without it.
"""

from __future__ import annotations

import csv
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tinygrad_lstm.tooling.cli import main

import tinygrad_lstm as tg

DIST = "tinygrad-lstm-indrnn"
ROOT = Path(__file__).resolve().parents[1]

try:
    importlib.metadata.distribution(DIST)
except importlib.metadata.PackageNotFoundError:
    pytest.skip(
        f"the example plugin {DIST} is not installed; run "
        "`pip install ./examples/plugin_package` (CI does)",
        allow_module_level=True,
    )


def test_import_registers_the_op_and_the_cell_with_their_origin():
    origin = tg.op_info("softsign").origin
    assert origin == f"{DIST}:indrnn: tinygrad_lstm_indrnn.op", origin
    assert tg.cell_info("indrnn").origin == f"{DIST}:indrnn: tinygrad_lstm_indrnn.cell"
    assert tg.op_info("softsign").kind == "elementwise"


def test_ops_command_lists_them_with_origin(capsys):
    assert main(["ops"]) == 0
    lines = capsys.readouterr().out.splitlines()
    softsign = [line for line in lines if line.startswith("softsign ")]
    indrnn = [line for line in lines if line.startswith("indrnn ")]
    assert len(softsign) == 1 and f"{DIST}:indrnn" in softsign[0], lines
    assert len(indrnn) == 1 and f"{DIST}:indrnn" in indrnn[0], lines


def test_gradcheck_command_covers_them(capsys):
    assert main(["gradcheck", "--ops", "softsign", "--cells", "indrnn", "--max-examples", "5"]) == 0
    rows = {
        line.split()[0]: line.split()
        for line in capsys.readouterr().out.splitlines()
        if line.startswith(("softsign ", "indrnn "))
    }
    assert rows["softsign"][2] == rows["indrnn"][2] == DIST
    assert rows["softsign"][-1] == rows["indrnn"][-1] == "ok"


def test_train_command_trains_the_plugin_cell(tmp_path):
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--cell",
                "indrnn",
                "--steps",
                "3",
                "--hidden",
                "8",
                "--seq-len",
                "10",
                "--batch",
                "4",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    with open(out / "metrics.csv") as f:
        losses = [float(row["loss"]) for row in csv.DictReader(f)]
    assert len(losses) == 3 and np.all(np.isfinite(losses)), losses
    assert (out / "checkpoint.npz").exists()


def test_generic_property_tests_pick_them_up_without_code_of_their_own():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/ops/test_all_ops.py",
            "tests/layers/test_cell_gradients.py",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    collected = proc.stdout.split()
    assert "tests/ops/test_all_ops.py::test_op_passes_generic_checks[softsign]" in collected
    assert (
        "tests/layers/test_cell_gradients.py::test_registered_cell_gradients[indrnn]" in collected
    )


def test_the_plugin_package_own_suite_passes_on_the_pytest_plugin_fixtures():
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT / "examples" / "plugin_package",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "5 passed" in proc.stdout, proc.stdout
