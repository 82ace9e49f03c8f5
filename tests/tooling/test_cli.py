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
    return subprocess.run(
        [*command, *args], check=False, capture_output=True, text=True, timeout=120
    )


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


# ---- --import: a cell written in a script is visible to every command ---------------------
CUSTOM_CELL = Path(__file__).resolve().parents[2] / "examples" / "custom_cell.py"


def test_unknown_cell_says_how_to_make_a_script_cell_visible():
    result = run("train", "--task", "adding", "--cell", "mgu", "--steps", "1")
    assert result.returncode == 2
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert "unknown cell 'mgu'" in err and "--import" in err and "docs/plugins.md" in err, err


def test_train_sees_a_cell_registered_by_an_imported_script(tmp_path):
    result = run(
        "train",
        "--import",
        str(CUSTOM_CELL),
        "--task",
        "adding",
        "--cell",
        "mgu",
        "--steps",
        "2",
        "--seq-len",
        "5",
        "--hidden",
        "4",
        "--batch",
        "4",
        "--out",
        str(tmp_path / "run"),
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "run" / "checkpoint.npz").exists()
    assert "predicting y[t]" not in result.stdout, "importing the example ran its training"


def test_import_by_module_name_and_repeated(tmp_path, capsys, registry_restored):
    from tinygrad_lstm.tooling.cli import main

    (tmp_path / "my_cells.py").write_text(
        "import tinygrad_lstm as tg\n"
        "from tinygrad_lstm.layers import RNNCell\n"
        "tg.register_cell('elman2')(type('Elman2', (RNNCell,), {}))\n"
    )
    (tmp_path / "my_ops.py").write_text("IMPORTED = True\n")
    sys.path.insert(0, str(tmp_path))
    try:
        argv = ["ops", "--import", "my_cells", "--import", str(tmp_path / "my_ops.py")]
        assert main(argv) == 0
        assert main(argv) == 0, "a second import of the same script must not register twice"
    finally:
        sys.path.remove(str(tmp_path))
    out = capsys.readouterr().out
    assert "elman2" in out and sys.modules["my_ops"].IMPORTED


def test_importing_the_example_registers_mgu_without_training(capsys, registry_restored):
    from tinygrad_lstm.tooling.cli import main

    assert main(["ops", "--import", str(CUSTOM_CELL)]) == 0
    out = capsys.readouterr().out
    assert any(line.startswith("mgu ") for line in out.splitlines()), out
    assert "predicting y[t]" not in out and "gradient check of 'mgu'" not in out, (
        "importing examples/custom_cell.py ran its main()"
    )


@pytest.mark.parametrize(
    "spec, message",
    [
        ("no_such_file.py", "--import no_such_file.py: no such file"),
        ("no_such.module", "--import no_such.module: ModuleNotFoundError: No module named"),
    ],
)
def test_failed_import_is_one_line(spec, message, capsys):
    from tinygrad_lstm.tooling.cli import main

    assert main(["ops", "--import", spec]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_an_import_that_raises_is_reported_with_its_error(tmp_path, capsys):
    from tinygrad_lstm.tooling.cli import main

    bad = tmp_path / "broken_cell.py"
    bad.write_text("raise ValueError('half-written cell')\n")
    assert main(["gradcheck", "--import", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"--import {bad}: ValueError: half-written cell" in err, err
    assert "broken_cell" not in sys.modules


def test_registry_lookups_say_how_to_make_a_name_visible():
    for lookup, name in ((tg.cell, "janet"), (tg.op, "softplus2")):
        with pytest.raises(tg.RegistryError, match=r"--import path/to/script.py.*docs/plugins.md"):
            lookup(name)
