"""The ``tinygrad-lstm`` command, run as a user runs it: in a subprocess."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import tinygrad_lstm as tg

SCRIPT = shutil.which("tinygrad-lstm", path=str(Path(sys.executable).parent))


def run(*args: str) -> subprocess.CompletedProcess:
    command = [SCRIPT] if SCRIPT else [sys.executable, "-m", "tinygrad_lstm"]
    return subprocess.run([*command, *args], check=False, capture_output=True, text=True,
                          timeout=120)


def test_console_script_is_installed():
    assert SCRIPT, "pip install -e . should put tinygrad-lstm next to the interpreter"


def test_ops_lists_every_op_with_kind_arity_and_origin():
    result = run("ops")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    for info in tg.list_ops():
        row = rows.get(info.name)
        assert row is not None, f"op {info.name} is not listed"
        kind, arity = row.split()[1:3]
        assert (kind, arity) == (info.kind, "n" if info.arity is None else str(info.arity))
        assert info.origin in row
    assert f"{len(tg.list_ops())} ops" in result.stdout


def test_ops_filters_by_kind():
    result = run("ops", "--kind", "linalg")
    listed = [line.split()[0] for line in result.stdout.splitlines()[1:] if line.strip()]
    assert "matmul" in listed and "sigmoid" not in listed


@pytest.mark.parametrize("args", [("frobnicate",), ("ops", "--no-such-flag")])
def test_bad_command_line_is_one_line_and_exit_2(args):
    result = run(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
